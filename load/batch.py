"""`lagduel run`: N seeded orders as fast as the broker takes them, then every one awaited at the sinks.

Valid orders must reach the output topic exactly once, invalid ones the dead-letter topic with a
reason. The sinks are read by the duel's own SinkReader (load.sink), so loss, duplication and
misrouting are counted by one mechanism everywhere.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer

from load.sink import SinkReader
from pipeline.backends import Backend, StageStatus
from pipeline.kafka import KafkaSettings
from pipeline.orders import OrderFactory, order_event
from pipeline.topology import Topology


@dataclass
class BatchResult:
    run_id: str
    events: int
    valid: int
    seconds: float
    report: dict[str, Any]
    """The sink's report (load.sink.SinkReader.report): delivered, dead_lettered, lost, misrouted, duplicated, ..."""
    replicas_seen: dict[str, int]

    @property
    def complete(self) -> bool:
        """Every order came out, and where it should."""
        return self.report["lost"] == 0 and self.report["misrouted"] == 0

    @property
    def throughput(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


Progress = Callable[[int, list[StageStatus]], None]
"""(distinct orders at the sinks, the backend's stage status)"""


def produce_orders(settings: KafkaSettings, topology: Topology, run_id: str, count: int, factory: OrderFactory) -> int:
    """`count` orders as fast as the broker takes them; returns how many were valid."""
    producer = Producer(settings.producer())
    valid = 0
    for seq in range(count):
        data, ok = factory.order(seq)
        valid += ok
        rec = order_event(topology, run_id, seq, time.time_ns() // 1000, data, factory.record_bytes)
        while True:
            try:
                producer.produce(topology.input.topic, rec.value, rec.key, headers=rec.headers)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60) != 0:
        raise RuntimeError("the broker did not acknowledge every order within 60 s")
    return valid


async def run_batch(backend: Backend, topology: Topology, settings: KafkaSettings, count: int, factory: OrderFactory,
                    timeout_s: float = 600.0, progress: Progress | None = None) -> BatchResult:
    """Produce `count` orders into a running backend and wait until every one reached a sink (or time out)."""
    run_id = uuid.uuid4().hex[:12]
    valid = getattr(factory, "valid", None) or (lambda seq: factory.order(seq)[1])
    peak: dict[str, int] = {}
    started = time.monotonic()
    with SinkReader(settings, topology.output.topic, topology.dead_letter_topic, run_id, group=f"lagduel-sink-{run_id}",
                    start=time.time(), valid=valid) as sink:
        producing = asyncio.create_task(asyncio.to_thread(produce_orders, settings, topology, run_id, count, factory))
        valid_count = 0
        try:
            while time.monotonic() - started < timeout_s:
                if producing.done():
                    valid_count = producing.result()
                    if sink.accounted >= count:
                        break
                statuses = backend.status()
                for s in statuses:
                    peak[s.stage] = max(peak.get(s.stage, 0), s.ready)
                if progress:
                    progress(sink.accounted, statuses)
                await asyncio.sleep(0.25)
            elapsed = time.monotonic() - started
            sink.close_drain_window()
            await asyncio.sleep(1.0)  # linger, so late duplicates are counted rather than missed
        finally:
            if not producing.done():
                await asyncio.wait([producing], timeout=60)
    return BatchResult(run_id, count, valid_count, elapsed, sink.report(count), peak)
