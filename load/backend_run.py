"""One backend's run in a duel: fresh topics, the seeded load, 1 s sampling, sink, drain.

Every backend gets the identical plan (profile, seed, sizes), so the runs differ only by backend.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException, Producer

from load import histograms
from load.cluster import ClusterTarget, DeployedPipeline
from load.completeness import backlog, oldest_age_s
from load.cpu import CpuMonitor, CpuSample
from load.faults import Fault
from load.instrument import CpuPoint
from load.generator import LoadProgress, LoadResult, run_load
from load.producer import LoadPlan
from load.profiles import Profile, schedule_array
from load.sampler import LagSampler, PipelineBacklog, Sample
from load.sink import SinkReader
from pipeline.backends import Backend, make_backend
from pipeline.kafka import GroupMembership, KafkaSettings, OffsetReader, create_topics
from pipeline.keys import KeySpec
from pipeline.orders import OrderFactory
from pipeline.topology import Topology

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DuelPlan:
    profile: Profile
    seed: int = 42
    invalid_share: float = 0.1
    record_bytes: int | None = 512
    workers: int = 1
    late_threshold_ms: float = 25.0
    drain_timeout_s: float = 180.0
    """After the load: wait at most this long for the backend to deliver everything."""
    settle_s: float = 0.0
    """After the drain: keep sampling this long, to watch replicas scale back."""
    backend_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    cluster: ClusterTarget | None = None
    """Set for a cluster duel: no emulation runs; the deployed pipelines are driven and watched (load.cluster)."""
    start_timeout_s: float = 120.0
    """Before the load: wait at most this long for every consumer group and starting replica."""
    repeats: int = 1
    """How many times each backend runs (interleaved, see load.verdict.interleaved_order)."""
    faults: tuple[Fault, ...] = ()
    """Injected at the same moments of the load on every backend (load.faults)."""
    broker_restart: Callable[[], object] | None = None
    """Restarts the broker in place, for a broker-restart fault (only when lagduel runs the broker)."""
    keys: KeySpec = KeySpec()
    """How the orders' keys (customers) are drawn, hence how they spread over partitions."""


@dataclass
class Live:
    """What the terminal shows for one backend while it runs."""

    backend: str
    repeat: int = 0
    phase: str = "starting"
    elapsed_s: float = 0.0
    scheduled: int = 0
    sent: int = 0
    received: int = 0
    lag: int = 0
    ready: int = 0
    produce_rate: float = 0.0
    output_rate: float = 0.0


@dataclass
class BackendRun:
    backend: str
    repeat: int
    topology: Topology
    settings_in_force: dict[str, Any]
    load: LoadResult
    samples: list[Sample]
    cpu: list[CpuPoint]
    """Machine and process-group CPU, one per second, on the samples' clock (t = seconds since load start)."""
    start_line: dict[str, Any]
    """How the run reached its starting line: seconds waited, replicas per stage at the start."""
    sink: dict[str, Any]
    sink_series: list[dict[str, float]]
    e2e_us: str
    drained: bool
    drain_s: float
    faults: list[dict[str, Any]] = field(default_factory=list)
    """Each injected fault: what, when (s since load start), on what, and whether it took."""
    lost_intended_s: list[float] = field(default_factory=list)
    """The intended send times of lost orders, to charge each loss to the fault window it fell in."""




async def run_backend(name: str, base: Topology, settings: KafkaSettings, plan: DuelPlan, run_id: str,
                      on_live: Callable[[Live], None] = lambda _: None, repeat: int = 0) -> BackendRun:
    """Raises UnknownBackend when the backend is not installed (the caller reports it and goes on)."""
    backend: Backend
    if plan.cluster is not None:  # the deployed pipeline, on its own topics; the sink tells runs apart by run id
        topology = base
        backend = DeployedPipeline(name, topology, settings, plan.cluster)
    else:
        topology = base.with_topic_prefix(f"{run_id}-{name}-r{repeat}-")
        backend = make_backend(name, topology, settings, **plan.backend_options.get(name, {}))
        await asyncio.to_thread(create_topics, settings, topology.topics, topology.partitions,
                                topology.replication_factor)
    live = Live(name, repeat)
    on_live(live)
    offsets = schedule_array(plan.profile)  # each seq's intended send offset, as every generator worker has it
    factory = OrderFactory(plan.seed, plan.invalid_share, plan.record_bytes, keys=plan.keys)
    async with backend:
        start_line = await _starting_line(backend, settings, plan.start_timeout_s)
        sampler = LagSampler(OffsetReader(settings), backend.lag_sources(), topology.input.topic,
                             topology.output.topic, topology.dead_letter_topic)
        samples: list[Sample] = []
        cpu_samples: list[CpuSample] = []
        monitor = CpuMonitor()
        sink = SinkReader(settings, topology.output.topic, topology.dead_letter_topic, run_id,
                          group=f"{run_id}-{name}-r{repeat}-sink", start=time.time(), valid=_validity(factory))
        stop = asyncio.Event()
        acked = [0]

        injected: list[dict[str, Any]] = []
        injections: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()

        def started(wall: float) -> None:  # called from the load's thread
            sampler.start = sink.start = wall
            live.phase = "load"
            clock = getattr(backend, "control_clock", None)
            if clock is not None:  # the control planes' clocks at the load's start (`simulate --like` needs them)
                start_line["control_clock"] = clock(time.monotonic() + wall - time.time())
            for fault in plan.faults:
                loop.call_soon_threadsafe(lambda f=fault: injections.append(asyncio.create_task(
                    _inject(f, wall, backend, settings, topology, plan.broker_restart, injected))))

        def progressed(p: LoadProgress) -> None:
            live.elapsed_s, live.scheduled, live.sent = p.elapsed_s, p.scheduled, p.sent
            acked[0] = p.acked

        def intended_s(seq: int) -> float | None:
            return float(offsets[seq]) if 0 <= seq < len(offsets) else None

        def pipeline_backlog(at: float) -> PipelineBacklog:
            accounted, watermark = sink.accounted, sink.watermark
            orders = backlog(acked[0], accounted)
            age = oldest_age_s(watermark, intended_s, at - sampler.start) if orders else 0.0
            return PipelineBacklog(acked[0], accounted, orders, round(age, 3))

        async def sample_every_second() -> None:
            monitor.sample()  # primes the CPU counters: the first real sample covers one second
            next_at = time.monotonic()
            while not stop.is_set():
                cpu = time.process_time()
                try:
                    at, snap = await asyncio.to_thread(sampler.read_offsets)
                    s = sampler.sample(at, snap, backend.status(), cpu, pipeline_backlog(at))
                    samples.append(s)
                    c = await asyncio.to_thread(monitor.sample)
                    cpu_samples.append(c)
                    live.lag, live.ready, live.received = s.backlog.orders if s.backlog else 0, s.ready, sink.accounted
                    live.produce_rate, live.output_rate = s.produce_rate, s.output_rate
                    on_live(live)
                except (KafkaException, KeyError) as exc:  # a missed sample shows as a gap, not a crash
                    log.warning("sample skipped: %s", exc)
                next_at += 1.0
                await asyncio.sleep(max(next_at - time.monotonic(), 0.0))

        with sink:
            sampling = asyncio.create_task(sample_every_second())
            load_plan = LoadPlan(topology, run_id, plan.profile, plan.seed, plan.invalid_share, plan.record_bytes,
                                 plan.workers, plan.keys, late_threshold_ms=plan.late_threshold_ms,
                                 max_p99_lateness_ms=2 * plan.late_threshold_ms)
            cancelled = threading.Event()
            try:
                try:
                    result = await asyncio.to_thread(run_load, load_plan, settings, progressed, 0.3, started, cancelled)
                except asyncio.CancelledError:
                    cancelled.set()  # the load's thread cannot be cancelled: tell it to stop its workers
                    raise
                acked[0] = result.acked
                live.phase = "drain"
                on_live(live)  # each phase is shown as it starts, however short (a drain can take less than a sample)
                drained, drain_s = await _drain(sink, samples, result.acked, plan.drain_timeout_s)
                sink.close_drain_window()  # from here on, an order that still arrives is late, not lost
                live.phase = "settle" if plan.settle_s else "done"
                on_live(live)
                await asyncio.sleep(plan.settle_s)
            finally:
                stop.set()
                for task in injections:
                    task.cancel()
                await asyncio.gather(*injections, return_exceptions=True)
                await sampling
            live.phase = "done"
            on_live(live)
        cpu_rel = [c.since(sampler.start) for c in cpu_samples]
        in_force = backend.settings_in_force()
        calibration = getattr(backend, "calibration", None)
        if calibration is not None:  # the emulator's own CPU per event and hop, measured over this run
            in_force = {**in_force, "calibration": calibration()}
        lost_at = [float(offsets[seq]) for seq in sink.lost(result.sent) if seq < len(offsets)]
        return BackendRun(name, repeat, topology, in_force, result, samples, cpu_rel, start_line,
                          sink.report(result.sent), sink.series(), histograms.encode(sink.e2e), drained, drain_s,
                          sorted(injected, key=lambda f: f["at_s"]), lost_at)


POISON = (b"[]", [("content-type", b"application/cloudevents+json")])
"""A structured-mode CloudEvent whose JSON is not an object: no consumer can decode it."""


async def _inject(fault: Fault, start_wall: float, backend: Backend, settings: KafkaSettings, topology: Topology,
                  broker_restart: Callable[[], object] | None, record: list[dict[str, Any]]) -> None:
    """Wait for the fault's moment, then inject it; what happened goes into `record`."""
    await asyncio.sleep(max(start_wall + fault.at_s - time.time(), 0.0))
    at = round(time.time() - start_wall, 3)
    entry: dict[str, Any] = {"fault": fault.text, "kind": fault.kind, "stage": fault.stage, "at_s": at}
    try:
        if fault.kind == "poison":
            await asyncio.to_thread(_produce_poison, settings, topology.input.topic)
            entry.update(ok=True, note=f"undecodable record written to {topology.input.topic}")
        elif fault.kind == "kill-replica":
            assert fault.stage is not None
            victim = backend.kill_replica(fault.stage)
            entry.update(ok=victim is not None, note=f"SIGKILL {victim}" if victim else "no ready replica to kill")
        elif broker_restart is None:
            entry.update(ok=False, note="lagduel does not run this broker, so it cannot restart it")
        else:
            began = time.monotonic()
            await asyncio.to_thread(broker_restart)
            entry.update(ok=True, note=f"broker back in {time.monotonic() - began:.1f} s")
    except Exception as exc:  # a fault that could not be injected is reported, never the end of the run
        entry.update(ok=False, note=f"{type(exc).__name__}: {exc}")
    log.info("fault %s at %.1f s: %s", fault.text, at, entry["note"])
    record.append(entry)


def _produce_poison(settings: KafkaSettings, topic: str) -> None:
    producer = Producer(settings.producer())
    value, headers = POISON
    producer.produce(topic, value, b"poison", headers=headers)
    if producer.flush(30):
        raise RuntimeError("the broker did not take the poison record within 30 s")


def _validity(factory: OrderFactory) -> Callable[[int], bool]:
    valid = getattr(factory, "valid", None)
    return valid if valid is not None else (lambda seq: factory.order(seq)[1])


async def _starting_line(backend: Backend, settings: KafkaSettings, timeout_s: float) -> dict[str, Any]:
    """Load begins only when every consumer group of the backend has joined and been assigned, and its
    replicas are at the starting count: no backend loses the first seconds of the load to a join."""
    began = time.monotonic()
    wait_started = getattr(backend, "wait_started", None)
    if wait_started is not None:
        await wait_started(timeout_s)
    groups = [(s.group, s.topic) for s in backend.lag_sources()]
    await asyncio.to_thread(GroupMembership(settings).wait_assigned, groups, max(timeout_s - (time.monotonic() - began), 5))
    return {"waited_s": round(time.monotonic() - began, 2),
            "replicas": {s.stage: s.ready for s in backend.status()}, "groups": [g for g, _ in groups]}


async def _drain(sink: SinkReader, samples: list[Sample], acked: int, timeout_s: float) -> tuple[bool, float]:
    """Wait until every acknowledged order came out — distinct orders: duplicates do not count — and no
    stage group lags (or the bound passes)."""
    begin = time.monotonic()
    while time.monotonic() - begin < timeout_s:
        if sink.accounted >= acked and samples and samples[-1].platform_lag == 0:
            return True, time.monotonic() - begin
        await asyncio.sleep(0.25)
    return False, time.monotonic() - begin
