"""The sampler's CPU time per sample, on topics of 100 and 1,000 partitions with committing groups.

Measured in steady state, as during a run: every partition's log end moves between samples, each
group's commits trail LAG_ROUNDS behind, and the time-lag tables are full (TABLE_SIZE points each),
so the interpolation searches real tables. Offsets are moved by a child process, so only the
sampler's own work is charged to the measured process (process_time covers all its threads).
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
import uuid
from multiprocessing.connection import Connection

from confluent_kafka import Consumer, Producer, TopicPartition

from pipeline.kafka.offsets import OffsetReader
from load.sampler import LagSampler
from load.timelag import TABLE_SIZE
from pipeline.backends import LagSource
from pipeline.kafka import KafkaSettings, create_topics, delete_topics

LAG_ROUNDS = 20
"""Commits trail the log end by this many rounds (one record per partition per round)."""


def cpu_per_sample_ms(settings: KafkaSettings, partitions: int, samples: int = 20) -> float:
    """Median process CPU time of one sample over three stage groups (as a 3-stage pipeline has)."""
    prefix = f"smp-{uuid.uuid4().hex[:6]}-"
    topics = [prefix + n for n in ("in", "s1", "s2", "out", "dlq")]
    sources = [LagSource(f"stage{i}", prefix + f"g{i}", topics[i]) for i in range(3)]
    create_topics(settings, topics, partitions)
    try:
        return steady_state_cpu_ms(settings, topics, sources, partitions, samples)
    finally:
        # 5 × 1,000 partitions per run: left behind, they exhaust the broker's open files within a few runs.
        delete_topics(settings, topics)


def steady_state_cpu_ms(settings: KafkaSettings, topics: list[str], sources: list[LagSource], partitions: int,
                        samples: int) -> float:
    """topics: input, two stage topics, output, dead letter; sources read the first three."""
    reader = OffsetReader(settings)
    # Commits trail from where the log ends stand now (0 on fresh topics).
    start = reader.read([s.topic for s in sources], []).log_ends
    base = [[start[s.topic][p] for p in range(partitions)] for s in sources]
    parent, child = mp.get_context("spawn").Pipe()
    mover = mp.get_context("spawn").Process(target=_move_offsets, args=(settings, sources, base, child), daemon=True)
    mover.start()
    try:
        sampler = LagSampler(reader, sources, topics[0], topics[3], topics[4])
        costs = []
        for i in range(TABLE_SIZE + samples):  # the first TABLE_SIZE samples fill the tables: not measured
            parent.send("advance")
            _await_reply(parent, mover)
            cpu = time.process_time()
            sample = sampler.take()
            if i >= TABLE_SIZE:
                costs.append((time.process_time() - cpu) * 1000)
        # What was measured is what it claims: lag on every partition, and a time-lag estimate from the tables.
        assert sample.stages[0].lag == LAG_ROUNDS * partitions and sample.stages[0].uncommitted == 0, sample.stages[0].lag
        assert sample.stages[0].time_lag_s is not None and sample.stages[0].time_lag_s > 0
        return statistics.median(costs)
    finally:
        if mover.is_alive():
            parent.send("stop")
        mover.join(30)
        if mover.is_alive():
            mover.kill()
        close = getattr(reader, "close", None)
        if close:
            close()


def _await_reply(conn: Connection, mover: mp.process.BaseProcess, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not conn.poll(0.1):
        if not mover.is_alive():
            raise RuntimeError(f"the offset mover exited with code {mover.exitcode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the offset mover did not answer within {timeout_s:.0f} s")
    conn.recv()


def _move_offsets(settings: KafkaSettings, sources: list[LagSource], base: list[list[int]], conn: Connection) -> None:
    """Per "advance": one record on every partition of the stage topics, then each group commits LAG_ROUNDS behind.

    Output and dead-letter topics stay still: the sampler reads their log ends the same way either way.
    """
    # One record per partition makes a batch per partition: acks=1 keeps 3,000 of them to ~0.5 s a round.
    # Fresh partitions answer their first produce slowly: requests may wait minutes, not fail.
    producer = Producer(settings.producer(**{"acks": 1, "enable.idempotence": False, "linger.ms": 50,
                                             "request.timeout.ms": 300_000, "message.timeout.ms": 0}))
    committers = [Consumer(settings.consumer(src.group)) for src in sources]
    partitions = len(base[0])
    rounds = 0
    try:
        while conn.recv() == "advance":
            for topic in {src.topic for src in sources}:
                for p in range(partitions):
                    producer.produce(topic, b"x", partition=p)
                    producer.poll(0)
            if producer.flush(300):
                raise RuntimeError("records still unacknowledged after 300 s")
            rounds += 1
            behind = max(rounds - LAG_ROUNDS, 0)
            for src, c, ends in zip(sources, committers, base):
                c.commit(offsets=[TopicPartition(src.topic, p, ends[p] + behind) for p in range(partitions)],
                         asynchronous=False)
            conn.send("done")
    finally:
        for c in committers:
            c.close()
