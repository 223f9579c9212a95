"""One backend's run in a duel: fresh topics, the seeded load, 1 s sampling, sink, drain.

Every backend gets the identical plan (profile, seed, sizes), so the runs differ only by backend.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException

from load import histograms
from load.generator import LoadProgress, LoadResult, run_load
from pipeline.kafka.offsets import OffsetReader
from load.producer import LoadPlan
from load.profiles import Profile
from load.sampler import LagSampler, Sample
from load.sink import SinkReader
from pipeline.backends import StageStatus, make_backend
from pipeline.kafka import KafkaSettings, create_topics
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
    kube_context: str | None = None
    """Set on a real cluster: replicas are read from the Kubernetes API (load.cluster)."""


@dataclass
class Live:
    """What the terminal shows for one backend while it runs."""

    backend: str
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
    topology: Topology
    settings_in_force: dict[str, Any]
    load: LoadResult
    samples: list[Sample]
    sink: dict[str, Any]
    sink_series: list[dict[str, float]]
    e2e_us: str
    drained: bool
    drain_s: float


async def run_backend(name: str, base: Topology, settings: KafkaSettings, plan: DuelPlan, run_id: str,
                      on_live: Callable[[Live], None] = lambda _: None) -> BackendRun:
    """Raises UnknownBackend when the backend is not installed (the caller reports it and goes on)."""
    topology = base.with_topic_prefix(f"{run_id}-{name}-")
    backend = make_backend(name, topology, settings, **plan.backend_options.get(name, {}))
    await asyncio.to_thread(create_topics, settings, topology.topics, topology.partitions, topology.replication_factor)
    live = Live(name)
    on_live(live)
    async with backend:
        sampler = LagSampler(OffsetReader(settings), backend.lag_sources(), topology.input.topic,
                             topology.output.topic, topology.dead_letter_topic)
        samples: list[Sample] = []
        sink = SinkReader(settings, topology.output.topic, topology.dead_letter_topic, run_id,
                          group=f"{run_id}-{name}-sink", start=time.time())
        stop = asyncio.Event()
        status = _status_source(name, topology, backend, plan.kube_context)

        def started(wall: float) -> None:
            sampler.start = sink.start = wall
            live.phase = "load"

        def progressed(p: LoadProgress) -> None:
            live.elapsed_s, live.scheduled, live.sent = p.elapsed_s, p.scheduled, p.sent

        async def sample_every_second() -> None:
            next_at = time.monotonic()
            while not stop.is_set():
                cpu = time.process_time()
                try:
                    at, snap = await asyncio.to_thread(sampler.read_offsets)
                    s = sampler.sample(at, snap, await status(), cpu)
                    samples.append(s)
                    live.lag, live.ready, live.received = s.total_lag, s.ready, sink.received
                    live.produce_rate, live.output_rate = s.produce_rate, s.output_rate
                    on_live(live)
                except (KafkaException, KeyError) as exc:  # a missed sample shows as a gap, not a crash
                    log.warning("sample skipped: %s", exc)
                next_at += 1.0
                await asyncio.sleep(max(next_at - time.monotonic(), 0.0))

        with sink:
            sampling = asyncio.create_task(sample_every_second())
            load_plan = LoadPlan(topology, run_id, plan.profile, plan.seed, plan.invalid_share, plan.record_bytes,
                                 plan.workers, late_threshold_ms=plan.late_threshold_ms,
                                 max_p99_lateness_ms=2 * plan.late_threshold_ms)
            try:
                result = await asyncio.to_thread(run_load, load_plan, settings, progressed, 0.3, started)
                live.phase = "drain"
                drained, drain_s = await _drain(sink, samples, result.sent, plan.drain_timeout_s)
                live.phase = "settle" if plan.settle_s else "done"
                await asyncio.sleep(plan.settle_s)
            finally:
                stop.set()
                await sampling
            live.phase = "done"
            on_live(live)
        return BackendRun(name, topology, backend.settings_in_force(), result, samples, sink.report(result.sent),
                          sink.series(), histograms.encode(sink.e2e), drained, drain_s)


def _status_source(name: str, topology: Topology, backend: Any, kube_context: str | None) -> Callable[[], Any]:
    if kube_context is None or name == "native":
        async def local() -> list[StageStatus]:
            return backend.status()
        return local
    from load.cluster import ClusterReplicas, with_cluster_replicas

    cluster = ClusterReplicas(name, topology, kube_context)

    async def from_cluster() -> list[StageStatus]:
        return with_cluster_replicas(backend.status(), await asyncio.to_thread(cluster.status))
    return from_cluster


async def _drain(sink: SinkReader, samples: list[Sample], sent: int, timeout_s: float) -> tuple[bool, float]:
    """Wait until every sent event came out and no stage lags (or the bound passes)."""
    begin = time.monotonic()
    while time.monotonic() - begin < timeout_s:
        if sink.received >= sent and samples and samples[-1].total_lag == 0:
            return True, time.monotonic() - begin
        await asyncio.sleep(0.25)
    return False, time.monotonic() - begin
