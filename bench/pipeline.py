"""The whole pipeline per backend.

`pipeline_rate`: sustained events/s end to end, replicas free to scale (cold start included).
`pinned_pipeline`: each serverless emulation with every stage pinned at 5 replicas and 0 ms service
time under a constant offered load, against a plain 3-stage confluent-kafka chain (consume → stage
function → produce, × 3, one process per stage) on the same broker: what the emulation itself costs.

    python -m bench.pipeline --bootstrap HOST:PORT [--rate 1000] [--duration 30] [--backends knative,openfaas]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import uvloop
from confluent_kafka import Producer

from load.batch import run_batch
from pipeline.backends import make_backend
from pipeline.kafka import KafkaSettings, OffsetReader, create_topics
from pipeline.orders import OrderFactory, order_event
from pipeline.topology import Topology, load_topology

from bench.harness import RECORD_BYTES, prefill, steady_rate
from bench.hop import raw_loop
from bench.memory import peak_of

PINNED_REPLICAS = 5


def pipeline_rate(name: str, settings: KafkaSettings, topology: Topology, latency_ms: float, events: int,
                  memory: dict[str, float] | None = None) -> float:
    """Events/s from the first order sent to the last one at its sink (cold start included)."""
    t = topology.with_topic_prefix(f"pl{name[:2]}-{uuid.uuid4().hex[:6]}-").with_stage_overrides(latency_ms=latency_ms)
    create_topics(settings, t.topics, t.partitions)

    async def go() -> float:
        async with make_backend(name, t, settings) as backend:
            result = await run_batch(backend, t, settings, events, OrderFactory(5, 0.0, RECORD_BYTES), timeout_s=900)
            if memory is not None:
                for label, pattern in (("stage replica (Knative service)", "pipeline.knative.service"),
                                       ("function replica (watchdog)", "pipeline.openfaas.watchdog"),
                                       ("native worker", "pipeline.native.worker")):
                    peak = peak_of(pattern)
                    if peak is not None:
                        memory[label] = max(memory.get(label, 0.0), peak)
        if result.report["lost"]:
            raise RuntimeError(f"{name}: {result.report['lost']} orders lost")
        return result.throughput

    return asyncio.run(go())


# -- pinned pipeline ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PinnedResult:
    backend: str
    offered: float
    """Events/s the load asked for."""
    sustained: float
    """Events/s that reached the output (and dead-letter) topics: 99 % of the events over the time from the first
    send until 99 % had arrived (a straggler's retry does not set the rate)."""
    drained_s: float
    """Seconds from the first send until every event had arrived (or the grace period ran out)."""
    sent: int
    lost: int
    """Sent events not on the output or dead-letter topic within the grace period (duplicates not subtracted)."""
    calibration: dict[str, float]


def pinned(topology: Topology, prefix: str) -> Topology:
    """Every stage pinned at 5 replicas from the start, 0 ms service time, on fresh topics."""
    return topology.with_topic_prefix(prefix).with_stage_overrides(
        latency_ms=0, min_replicas=PINNED_REPLICAS, initial_replicas=PINNED_REPLICAS, max_replicas=PINNED_REPLICAS)


def constant_load(bootstrap: str, topology_json: str, rate: float, duration_s: float, started: Any) -> None:
    """Produce `rate` orders/s for `duration_s` on a schedule of 5 ms ticks (a process of its own)."""
    topology = Topology.model_validate_json(topology_json)
    producer = Producer(KafkaSettings(bootstrap).producer())
    factory = OrderFactory(seed=3, invalid_share=0.0, record_bytes=RECORD_BYTES)
    orders = [factory.order(i)[0] for i in range(1000)]
    run_id = uuid.uuid4().hex[:8]
    total = int(rate * duration_s)
    t0 = time.monotonic()
    started.value = time.time()
    seq = 0
    while seq < total:
        due = min(int((time.monotonic() - t0) * rate) + 1, total)
        while seq < due:
            rec = order_event(topology, run_id, seq, time.time_ns() // 1000, orders[seq % 1000], RECORD_BYTES)
            try:
                producer.produce(topology.input.topic, rec.value, rec.key, headers=rec.headers)
                seq += 1
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(60)


def _arrived(reader: OffsetReader, topics: list[str]) -> int:
    return int(sum(a.sum() for a in reader.read(topics, []).ends.values()))


def pinned_pipeline(name: str, settings: KafkaSettings, topology: Topology, rate: float, duration_s: float,
                    grace_s: float = 30.0) -> PinnedResult:
    t = pinned(topology, f"pp{name[:2]}-{uuid.uuid4().hex[:6]}-")
    create_topics(settings, t.topics, t.partitions)
    sinks = [t.output.topic, t.dead_letter_topic]
    total = int(rate * duration_s)

    async def go() -> PinnedResult:
        async with make_backend(name, t, settings) as backend:
            await backend.wait_started(120)  # type: ignore[attr-defined]
            reader = OffsetReader(settings)
            started = mp.get_context("spawn").Value("d", 0.0)
            load = mp.get_context("spawn").Process(target=constant_load, daemon=True,
                                                  args=(settings.bootstrap_servers, t.model_dump_json(), rate,
                                                        duration_s, started))
            load.start()
            deadline = time.monotonic() + duration_s + grace_s + 60
            last_n, last_t, t99 = 0, time.time(), None
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)  # the offset read shares the backend's process: read seldom
                n = await asyncio.to_thread(_arrived, reader, sinks)
                if n != last_n:
                    last_n, last_t = n, time.time()
                if t99 is None and n >= 0.99 * total:
                    t99 = last_t
                if n >= total or (not load.is_alive() and time.time() - last_t > grace_s):
                    break
            load.join(5)
            first = started.value
            calibration = backend.calibration()  # type: ignore[attr-defined]
        delivered = min(last_n, total)
        sustained = 0.99 * total / max(t99 - first, 1e-3) if t99 is not None else delivered / max(last_t - first, 1e-3)
        return PinnedResult(name, rate, sustained, last_t - first, total, total - delivered, calibration)

    return uvloop.run(go())


def plain_chain_rate(settings: KafkaSettings, topology: Topology, count: int = 20_000) -> float:
    """Events/s through the plain 3-stage chain, read at its output (prefilled input, start-up excluded)."""
    t = topology.with_topic_prefix(f"pc-{uuid.uuid4().hex[:6]}-").with_stage_overrides(latency_ms=0)
    create_topics(settings, t.topics, t.partitions)
    prefill(settings, t, t.input.topic, count, t.partitions)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=raw_loop, args=(settings.bootstrap_servers, t.model_dump_json(), f"pc-{i}", i),
                         daemon=True) for i in range(len(t.stages))]
    for p in procs:
        p.start()
    try:
        return steady_rate(settings, [t.output.topic], count, alive=lambda: all(p.is_alive() for p in procs))
    finally:
        for p in procs:
            p.kill()
            p.join()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.pipeline", description="the pinned-pipeline benchmark")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--rate", type=float, default=1000)
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--backends", default="knative,openfaas")
    p.add_argument("--no-chain", action="store_true")
    args = p.parse_args()
    settings = KafkaSettings(args.bootstrap)
    topology = load_topology()
    chain = None if args.no_chain else plain_chain_rate(settings, topology)
    if chain is not None:
        print(f"plain 3-stage confluent-kafka chain: {chain:,.0f} ev/s", flush=True)
    for name in args.backends.split(","):
        r = pinned_pipeline(name, settings, topology, args.rate, args.duration)
        ratio = f", {r.sustained / chain:.3f} × the plain chain" if chain else ""
        print(f"{name}: offered {r.offered:,.0f} ev/s, sustained {r.sustained:,.0f} ev/s, all in after "
              f"{r.drained_s:.1f} s, lost {r.lost}{ratio}; "
              f"{asdict(r)['calibration']}", flush=True)


if __name__ == "__main__":
    main()
