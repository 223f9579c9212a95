"""KnativeBackend: Knative Eventing (KafkaSource, Kafka Broker, Triggers) and Serving (KPA), emulated locally.

The real Kafka broker carries the broker topic; Trigger dispatchers deliver over real HTTP to stage
replica processes; the KPA decides how many replicas run. Names and groups are those the manifests
give on a cluster (`pipeline.knative.manifests`), so lag reads alike in both places.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from collections.abc import Callable
from typing import Any


from pipeline.backends import LagSource, StageStatus, capacity_in_force
from pipeline.delivery import HttpSender, RecordProducer, Supervised
from pipeline.emulation import CpuMeter, await_started, measured_data_plane
from pipeline.kafka import KafkaSettings, create_topics
from pipeline.knative.manifests import kpa_annotations, source_group, trigger_group, trigger_name
from pipeline.knative.revision import Revision
from pipeline.knative.source import KafkaSourceDispatcher
from pipeline.knative.transport import ServingRouter
from pipeline.knative.trigger import TriggerDispatcher, TriggerStats
from pipeline.replicas import python_module
from pipeline.autoscale.kpa import KpaSettings
from pipeline.topology import Stage, Topology

_RATE_WINDOW_S = 5.0


def lag_sources(t: Topology, namespace: str) -> list[LagSource]:
    """The Trigger groups of the stages (each reads the whole broker topic, §2.3), then the KafkaSource group
    on the input topic and the output Trigger's group: every group a Knative Broker pipeline runs, here and
    on a cluster."""
    return [*(LagSource(st.name, trigger_group(namespace, trigger_name(t, st)), t.broker_topic) for st in t.stages),
            LagSource("source", source_group(namespace, t), t.input.topic, role="source"),
            LagSource("output", trigger_group(namespace, trigger_name(t, None)), t.broker_topic, role="sink")]


class KnativeBackend:
    name = "knative"

    def __init__(self, topology: Topology, settings: KafkaSettings, namespace: str | None = None,
                 log_level: str = "warning", scale_to_zero_grace_period_s: float | None = None, **_: Any) -> None:
        self.topology = topology
        self.settings = settings
        self.namespace = namespace or topology.namespace
        self._log_level = log_level
        emu = topology.emulation.knative
        self._grace_s = emu.scale_to_zero_grace_period_s if scale_to_zero_grace_period_s is None \
            else scale_to_zero_grace_period_s
        self._dir = Path(tempfile.mkdtemp(prefix="lagduel-knative-"))
        self.revisions: dict[str, Revision] = {}
        self.triggers: dict[str, Supervised[TriggerDispatcher]] = {}
        self.trigger_stats: dict[str, TriggerStats] = {}
        self.source: Supervised[KafkaSourceDispatcher] | None = None
        self._sender: HttpSender | None = None
        self._ingress: RecordProducer | None = None
        self._rate: dict[str, deque[tuple[float, int]]] = {}
        self._cpu = CpuMeter()

    async def __aenter__(self) -> KnativeBackend:
        t = self.topology
        await asyncio.to_thread(create_topics, self.settings, (*t.topics, t.broker_topic), t.partitions,
                                t.replication_factor)
        spec = self._dir / "topology.json"
        spec.write_text(t.model_dump_json())
        try:
            for st in t.stages:
                def argv(_name: str, stage: str = st.name) -> list[str]:
                    return python_module("pipeline.knative.service", "--stage", stage, "--topology", str(spec),
                                         "--host", "127.0.0.1", "--log-level", self._log_level,
                                         "--log-file", str(self.log_path))

                kpa = replace(KpaSettings.for_stage(st), scale_to_zero_grace_period_s=self._grace_s)
                rev = Revision(st, argv, t.emulation.pod_start_delay_s, kpa, emulation=t.emulation.knative,
                               hops=t.emulation.hops)
                self.revisions[st.name] = rev
                await rev.start()
            self._sender = HttpSender(route=ServingRouter(self.revisions))
            # The broker ingress (and the KafkaSink receiver it folds in): one producer for every write (§2.1).
            self._ingress = RecordProducer(self.settings.with_client_id(f"kafka-broker-receiver-{self.namespace}"),
                                           {"linger.ms": t.emulation.producer_linger_ms})
            for st in (*t.stages, None):
                key = st.name if st else "output"
                self.trigger_stats[key] = TriggerStats()
                self.triggers[key] = Supervised(f"trigger {trigger_name(t, st)}", self._trigger_factory(st))
            self.source = Supervised(f"kafkasource {t.pipeline}",
                                     lambda: KafkaSourceDispatcher(t, self.settings, self.namespace,
                                                                   producer=self._ingress))
            for sup in (self.source, *self.triggers.values()):
                sup.start()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    def _trigger_factory(self, st: Stage | None) -> Callable[[], TriggerDispatcher]:
        t, key = self.topology, st.name if st else "output"
        name = trigger_name(t, st)
        last = t.stages[-1]

        def make() -> TriggerDispatcher:
            assert self._sender is not None
            return TriggerDispatcher(
                t, self.settings, name, trigger_group(self.namespace, name), st.input.type if st else t.output.type,
                st, self._sender if st else None,
                f"http://{st.name}.{self.namespace}.svc.cluster.local/" if st else None, self.namespace,
                st or last, (st or last).delivery.ordering, stats=self.trigger_stats[key], producer=self._ingress)
        return make

    def _supervised(self) -> list[Supervised[Any]]:
        return [s for s in (self.source, *self.triggers.values()) if s is not None]

    async def __aexit__(self, *exc: object) -> None:
        for sup in self._supervised():
            sup.stop()
        await asyncio.gather(*(sup.wait() for sup in self._supervised()), return_exceptions=True)
        if self._ingress is not None:
            await asyncio.to_thread(self._ingress.close)
        await asyncio.gather(*(r.stop() for r in self.revisions.values()), return_exceptions=True)
        if self._sender:
            await self._sender.aclose()
        if not any(exc):  # keep the replicas' log when something went wrong
            shutil.rmtree(self._dir, ignore_errors=True)

    @property
    def log_path(self) -> Path:
        return self._dir / "replicas.log"

    def lag_sources(self) -> list[LagSource]:
        return lag_sources(self.topology, self.namespace)

    async def wait_started(self, timeout_s: float) -> None:
        """Returns once every revision has its starting replicas ready and every consumer group (KafkaSource,
        stage Triggers, output Trigger) has joined with partitions assigned; TimeoutError names what is missing."""
        def missing() -> list[str]:
            out = [f"{name}: {rev.ready}/{rev.starting_replicas} replicas ready" for name, rev in self.revisions.items()
                   if rev.ready < rev.starting_replicas]
            return out + [f"{sup.name}: no partitions assigned" for sup in self._supervised()
                          if not sup.current.dispatcher.assignment]
        await await_started(missing, timeout_s, self.name)

    def calibration(self) -> dict[str, float]:
        """Measured emulator overhead: CPU of the dispatchers and control plane (this process's event-loop thread
        and the dispatchers' delivery-report threads; not the replica processes) per event per stage hop."""
        threads = [*(self._ingress.thread_ids if self._ingress else ()),
                   *(tid for sup in self._supervised() for w in sup.workers for tid in w.dispatcher.thread_ids)]
        stage_events = sum(s.processed for k, s in self.trigger_stats.items() if k != "output")
        revs = self.revisions.values()
        return {**self._cpu.calibration(threads, stage_events, len(self.topology.stages)),
                **measured_data_plane([s for r in revs for s in r.stats.cold_start_s],
                                      {n: (r.stats.hop_s, r.stats.hops) for n, r in self.revisions.items()})}

    def status(self) -> list[StageStatus]:
        out = []
        now = time.monotonic()
        unrouted = self.trigger_stats["output"].unrouted if "output" in self.trigger_stats else 0
        for st in self.topology.stages:
            rev, tr = self.revisions[st.name], self.triggers[st.name]
            stats = self.trigger_stats[st.name]
            last = rev.stats.last
            rate = self._dispatch_rate(st.name, now, stats.matched)
            out.append(StageStatus(
                stage=st.name, desired=rev.kpa.replicas, ready=rev.ready, in_flight=rev.in_flight, queued=rev.queued,
                retries=stats.retries, dead_lettered=stats.dead_lettered,
                errors=stats.errors + rev.stats.overloaded, cold_starts=rev.stats.cold_starts,
                processed=stats.processed,
                extra={"dispatcher_restarts": float(tr.restarts), "replica_crashes": float(rev.stats.crashed),
                       "panic": float(bool(last and last.panic)), "dispatch_rate": round(rate, 2),
                       "activator_in_path": float(rev.activator_in_path),
                       "excess_burst_capacity": float(last.excess_burst_capacity if last else 0),
                       "cold_start_s": round(rev.stats.cold_start_s[-1], 3) if rev.stats.cold_start_s else 0.0,
                       # Filtered by every Trigger (no type matches; upstream drops them uncounted), counted once.
                       **({"unrouted_events": float(unrouted)} if st is self.topology.stages[0] else {})},
            ))
        return out

    def _dispatch_rate(self, stage: str, now: float, matched: int) -> float:
        """Events/s the stage's Trigger took over the last few seconds, whoever calls status() how often."""
        samples = self._rate.setdefault(stage, deque())
        samples.append((now, matched))
        while len(samples) > 1 and now - samples[1][0] >= _RATE_WINDOW_S:
            samples.popleft()
        t0, n0 = samples[0]
        return (matched - n0) / (now - t0) if now - t0 > 0.2 else 0.0

    def control_clock(self, at: float) -> dict[str, dict[str, float]]:
        """Each stage's KPA clock at monotonic time `at` (the load's start), for the run's starting line."""
        return {name: rev.control_clock(at) for name, rev in self.revisions.items()}

    def kill_replica(self, stage: str) -> str | None:
        """SIGKILL one ready replica of the stage (a fault scenario); it is reaped and replaced like any crash."""
        victim = self.revisions[stage].kill_one()
        return victim.name if victim else None

    def settings_in_force(self) -> dict[str, Any]:
        t, emu = self.topology, self.topology.emulation
        return {
            "backend": self.name, "namespace": self.namespace, "broker_topic": t.broker_topic,
            "source": {"ordering": "ordered", "group": source_group(self.namespace, t)},
            "pod_start_delay_s": emu.pod_start_delay_s, "commit_interval_s": emu.commit_interval_s,
            "fetch_wait_ms": emu.fetch_wait_ms, "producer_linger_ms": emu.producer_linger_ms,
            "hops_ms": {"broker_ingress": emu.hops.broker_ingress_ms, "activator": emu.hops.activator_ms,
                        "queue_proxy": emu.hops.queue_proxy_ms},
            "real_http_hops_per_stage": 1,
            "activator_queue_depth": emu.knative.activator_queue_depth,
            "stages": {st.name: {"containerConcurrency": st.concurrency,
                                 "queue_depth": emu.knative.queue_depth_per_slot * st.concurrency,
                                 "annotations": kpa_annotations(st), "delivery": st.delivery.model_dump(),
                                 "timeout_s": st.timeout_s, "latency_ms": st.latency_ms,
                                 "max_in_flight": emu.knative.trigger_max_in_flight,
                                 "initial_scale": self.revisions[st.name].starting_replicas if self.revisions
                                 else st.knative.initial_scale,
                                 "min_replicas": st.min_replicas, "max_replicas": st.max_replicas,
                                 "scale_to_zero_grace_period_s": self._grace_s, "tick_s": emu.knative.tick_s}
                       for st in t.stages},
            "capacity": {st.name: capacity_in_force(
                f"{st.min_replicas}..{st.max_replicas}, start {st.knative.initial_scale}", st.concurrency,
                emu.knative.trigger_max_in_flight, st.latency_ms) for st in t.stages},
        }

