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
from typing import Any


from pipeline.backends import LagSource, StageStatus
from pipeline.delivery import HttpSender
from pipeline.kafka import KafkaSettings, create_topics
from pipeline.knative.manifests import kpa_annotations, source_group, trigger_group, trigger_name
from pipeline.knative.revision import Revision
from pipeline.knative.source import KafkaSourceDispatcher
from pipeline.knative.transport import ServingRouter
from pipeline.knative.trigger import TriggerDispatcher
from pipeline.replicas import python_module
from pipeline.autoscale.kpa import KpaSettings
from pipeline.topology import Topology

_RATE_WINDOW_S = 5.0


class KnativeBackend:
    name = "knative"

    def __init__(self, topology: Topology, settings: KafkaSettings, namespace: str | None = None,
                 log_level: str = "warning", scale_to_zero_grace_period_s: float = 30.0, **_: Any) -> None:
        self.topology = topology
        self.settings = settings
        self.namespace = namespace or topology.namespace
        self._log_level = log_level
        self._grace_s = scale_to_zero_grace_period_s
        self._dir = Path(tempfile.mkdtemp(prefix="lagduel-knative-"))
        self.revisions: dict[str, Revision] = {}
        self.triggers: dict[str, TriggerDispatcher] = {}
        self.source: KafkaSourceDispatcher | None = None
        self._sender: HttpSender | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._rate: dict[str, deque[tuple[float, int]]] = {}

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
                rev = Revision(st, argv, t.emulation.pod_start_delay_s, kpa)
                self.revisions[st.name] = rev
                await rev.start()
            self._sender = HttpSender(route=ServingRouter(self.revisions))
            for st in (*t.stages, None):
                name = trigger_name(t, st)
                last = t.stages[-1]
                self.triggers[st.name if st else "output"] = TriggerDispatcher(
                    t, self.settings, name, trigger_group(self.namespace, name),
                    st.input.type if st else t.output.type, st, self._sender if st else None,
                    f"http://{st.name}.{self.namespace}.svc.cluster.local/" if st else None, self.namespace,
                    st or last, (st or last).delivery.ordering)
            self.source = KafkaSourceDispatcher(t, self.settings, self.namespace)
            dispatchers = [self.source.dispatcher, *(tr.dispatcher for tr in self.triggers.values())]
            self._tasks = [asyncio.create_task(d.run()) for d in dispatchers]
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.source:
            self.source.dispatcher.stop()
        for tr in self.triggers.values():
            tr.dispatcher.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(r.stop() for r in self.revisions.values()), return_exceptions=True)
        if self._sender:
            await self._sender.aclose()
        if not any(exc):  # keep the replicas' log when something went wrong
            shutil.rmtree(self._dir, ignore_errors=True)

    @property
    def log_path(self) -> Path:
        return self._dir / "replicas.log"

    def lag_sources(self) -> list[LagSource]:
        """The Trigger groups of the stages (each reads the whole broker topic, §2.3), then the KafkaSource group
        on the input topic and the output Trigger's group: every group a Knative Broker pipeline runs."""
        t = self.topology
        return [*(LagSource(st.name, trigger_group(self.namespace, trigger_name(t, st)), t.broker_topic) for st in t.stages),
                LagSource("source", source_group(self.namespace, t), t.input.topic, role="source"),
                LagSource("output", trigger_group(self.namespace, trigger_name(t, None)), t.broker_topic, role="sink")]

    def status(self) -> list[StageStatus]:
        out = []
        now = time.monotonic()
        for st in self.topology.stages:
            rev, tr = self.revisions[st.name], self.triggers[st.name]
            last = rev.stats.last
            rate = self._dispatch_rate(st.name, now, tr.stats.matched)
            out.append(StageStatus(
                stage=st.name, desired=rev.kpa.replicas, ready=rev.ready, in_flight=rev.in_flight, queued=rev.queued,
                retries=tr.stats.retries, dead_lettered=tr.stats.dead_lettered,
                errors=tr.stats.errors + rev.stats.overloaded, cold_starts=rev.stats.cold_starts,
                extra={"panic": float(bool(last and last.panic)), "dispatch_rate": round(rate, 2),
                       "activator_in_path": float(rev.activator_in_path),
                       "excess_burst_capacity": float(last.excess_burst_capacity if last else 0),
                       "cold_start_s": round(rev.stats.cold_start_s[-1], 3) if rev.stats.cold_start_s else 0.0},
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

    def settings_in_force(self) -> dict[str, Any]:
        t = self.topology
        return {
            "backend": self.name, "namespace": self.namespace, "broker_topic": t.broker_topic,
            "source": {"ordering": "ordered", "group": self.source.dispatcher.config.group if self.source else None},
            "pod_start_delay_s": t.emulation.pod_start_delay_s,
            "stages": {st.name: {"containerConcurrency": st.concurrency, "queue_depth": 10 * st.concurrency,
                                 "annotations": kpa_annotations(st), "delivery": st.delivery.model_dump(),
                                 "timeout_s": st.timeout_s, "max_in_flight": 50,
                                 "scale_to_zero_grace_period_s": self._grace_s, "tick_s": 2}
                       for st in t.stages},
        }

