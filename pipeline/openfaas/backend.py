"""`lagduel run --backend openfaas`: OpenFaaS + KEDA emulated locally on the real broker.

Per stage: a connector (own consumer group) → the emulated gateway → watchdog replica processes.
This process plays the cluster: the connectors, the gateway with its provider, the Deployments,
KEDA/HPA. As the Knative emulation folds the activator and queue-proxy into its dispatchers' process,
this one folds the gateway into the connectors' process: each stage makes one real HTTP hop (connector
→ watchdog replica), and the folded hops cost what `emulation.hops` models. The gateway also serves its
HTTP API (system, metrics, `/function/...`) for callers outside.
A control loop reads each connector group's real lag with OffsetReader and feeds the stage's
ScaledObjectPolicy (KEDA scale loop for 0↔1, HPA for 1↔N), whose decisions set the replica count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from prometheus_client import CollectorRegistry

from pipeline.autoscale.hpa import TOLERANCE
from pipeline.autoscale.keda import ScaledObjectPolicy
from pipeline.backends import LagSource, StageStatus, capacity_in_force
from pipeline.broker.process import free_port
from pipeline.kafka import KafkaSettings, OffsetReader
from pipeline.delivery import HttpSender, RecordProducer, Supervised
from pipeline.emulation import CpuMeter, await_started, measured_data_plane
from pipeline.openfaas.connector import (
    THROTTLE_MAX_WAIT_S, ConnectorConfig, ConnectorMetrics, FunctionConnector, connector_group,
)
from pipeline.openfaas.connectors import ConnectorStats
from pipeline.openfaas.gateway import Gateway, GatewayConfig
from pipeline.openfaas.replicaset import FunctionReplicas, write_topology
from pipeline.settings import read_environment
from pipeline.topology import Topology

log = logging.getLogger("lagduel.openfaas")


class _InProcessServer(uvicorn.Server):
    """uvicorn inside the caller's loop: the caller owns the process signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def lag_sources(t: Topology) -> list[LagSource]:
    """Each connector's group on its stage's input topic: the lag KEDA scales the function on (§5.3)."""
    return [LagSource(st.name, connector_group(t, st), st.input.topic) for st in t.stages]


class OpenFaasBackend:
    name = "openfaas"

    def __init__(self, topology: Topology, settings: KafkaSettings, *, hpa_sync_period_s: float | None = None,
                 control_tick_s: float | None = None, ce_cap: bool | None = None, max_in_flight: int | None = None,
                 commit_interval_s: float | None = None, upstream_timeout_s: float | None = None) -> None:
        """Every setting comes from `topology.emulation`; a keyword given here overrides it."""
        self.topology = topology
        self.settings = settings
        emu = topology.emulation
        self.hpa_sync_period_s = emu.openfaas.hpa_sync_period_s if hpa_sync_period_s is None else hpa_sync_period_s
        self.control_tick_s = emu.openfaas.control_tick_s if control_tick_s is None else control_tick_s
        self.ce_cap = emu.openfaas.ce_cap if ce_cap is None else ce_cap
        self.max_in_flight = max_in_flight or emu.openfaas.connector_in_flight or None
        self.commit_interval_s = emu.commit_interval_s if commit_interval_s is None else commit_interval_s
        env = read_environment()
        self.registry = CollectorRegistry()
        self._gateway_config = GatewayConfig(
            emu.openfaas.upstream_timeout_s if upstream_timeout_s is None else upstream_timeout_s,
            user=env.gateway_user or "admin", password=env.gateway_password or "",
            hop_s=(emu.hops.gateway_ms + emu.hops.watchdog_ms) / 1000)
        self.replicas: dict[str, FunctionReplicas] = {}
        self.connectors: dict[str, Supervised[FunctionConnector]] = {}
        self.connector_metrics: dict[str, ConnectorMetrics] = {}
        self.policies: dict[str, ScaledObjectPolicy] = {}
        self.gateway: Gateway | None = None
        self.gateway_url = ""
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._topology_file = Path()
        self._server: uvicorn.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._sender: HttpSender | None = None
        self._producer: RecordProducer | None = None
        self._cpu = CpuMeter()

    def starting_replicas(self, stage: str) -> int:
        """The function Deployment's starting count: initial_replicas, at least min_replicas."""
        st = self.topology.stage(stage)
        return max(st.initial_replicas, st.min_replicas)

    # -- lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> OpenFaasBackend:
        self._workdir = tempfile.TemporaryDirectory(prefix="lagduel-openfaas-")
        topo_file = self._topology_file = write_topology(self.topology, Path(self._workdir.name) / "topology.yaml")
        self._client = httpx.AsyncClient()
        now = time.monotonic()
        for st in self.topology.stages:
            self.replicas[st.name] = FunctionReplicas(st, topo_file, self.topology.emulation.pod_start_delay_s,
                                                      client=self._client)
            self.replicas[st.name].scale(self.starting_replicas(st.name))
            self.policies[st.name] = policy = ScaledObjectPolicy.for_stage(
                st, now=now, hpa_sync_period_s=self.hpa_sync_period_s, ce_cap=self.ce_cap)
            policy.loop.initial_cooldown_period_s = st.keda.initial_cooldown_period_s
        self.gateway = gateway = Gateway(self.replicas, self._gateway_config, self.registry,
                                         min_replicas=lambda name: self.topology.stage(name).min_replicas)
        for name, r in self.replicas.items():
            r.on_ready = lambda slots, name=name: gateway.replica_ready(name, slots)
        self._sender = HttpSender(route=gateway.route)
        port = free_port()
        self._server = _InProcessServer(uvicorn.Config(gateway.app(), host="127.0.0.1", port=port,
                                                       log_level="warning", access_log=False, lifespan="off"))
        self._tasks["gateway"] = asyncio.create_task(self._server.serve())
        self.gateway_url = f"http://127.0.0.1:{port}"
        # The connectors are folded into this process, so they share one producer, as the Knative emulation's
        # dispatchers share the broker ingress's: both backends produce alike.
        self._producer = RecordProducer(self.settings.with_client_id(f"lagduel-connectors-{self.topology.pipeline}"),
                                        {"linger.ms": self.topology.emulation.producer_linger_ms})
        try:
            await self._await_gateway()
            for st in self.topology.stages:
                self.connector_metrics[st.name] = ConnectorMetrics(st.name)
                self.connectors[st.name] = Supervised(f"connector {st.name}", self._connector_factory(st.name))
                self.connectors[st.name].start()
        except BaseException:
            await self.__aexit__()
            raise
        self._tasks["control"] = asyncio.create_task(self._control_loop())
        return self

    def _connector_factory(self, stage: str) -> Callable[[], FunctionConnector]:
        config = ConnectorConfig.for_stage(self.topology, stage, self.gateway_url, self.max_in_flight,
                                           self.commit_interval_s)

        async def throttle() -> None:
            assert self.gateway is not None
            await self.gateway.slot(stage, THROTTLE_MAX_WAIT_S)

        def make() -> FunctionConnector:
            return FunctionConnector(self.settings, config, sender=self._sender, throttle=throttle,
                                     metrics=self.connector_metrics[stage], producer=self._producer)
        return make

    async def __aexit__(self, *exc: object) -> None:
        task = self._tasks.pop("control", None)
        if task:
            task.cancel()
        for sup in self.connectors.values():
            sup.stop()
        await asyncio.gather(*(sup.wait() for sup in self.connectors.values()), return_exceptions=True)
        if self._producer is not None:
            await asyncio.to_thread(self._producer.close)
        for r in self.replicas.values():
            await r.close()
        if self._server:
            self._server.should_exit = True
            await self._tasks.pop("gateway")
        if self._sender:
            await self._sender.aclose()
        if self.gateway:
            await self.gateway.aclose()
        if self._client:
            await self._client.aclose()
        if self._workdir:
            self._workdir.cleanup()

    async def _await_gateway(self) -> None:
        assert self._client is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if (await self._client.get(self.gateway_url + "/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("the emulated gateway did not start within 10 s")

    async def wait_started(self, timeout_s: float) -> None:
        """Returns once every function has its starting replicas ready and every connector group has joined
        with partitions assigned; TimeoutError names what is missing."""
        def missing() -> list[str]:
            out = [f"{name}: {r.ready}/{self.starting_replicas(name)} replicas ready"
                   for name, r in self.replicas.items() if r.ready < self.starting_replicas(name)]
            return out + [f"{sup.name}: no partitions assigned" for sup in self.connectors.values()
                          if not sup.current.dispatcher.assignment]
        await await_started(missing, timeout_s, self.name)

    def calibration(self) -> dict[str, float]:
        """Measured emulator overhead: CPU of the connectors, the gateway and the control plane (this process's
        event-loop thread and the connectors' delivery-report threads; not the replica processes) per event per
        stage hop."""
        threads = [*(self._producer.thread_ids if self._producer else ()),
                   *(tid for sup in self.connectors.values() for w in sup.workers for tid in w.dispatcher.thread_ids)]
        stage_events = sum(m.processed for m in self.connector_metrics.values())
        g = self.gateway
        hops = {st.name: (g.hop_s.get(st.name, 0.0) - g.hops.get(st.name, 0) * st.latency_s, g.hops.get(st.name, 0))
                for st in self.topology.stages} if g else {}
        return {**self._cpu.calibration(threads, stage_events, len(self.topology.stages)),
                **measured_data_plane([s for r in self.replicas.values() for s in r.cold_start_s], hops)}

    # -- control plane ---------------------------------------------------------------------------
    async def _control_loop(self) -> None:
        reader = OffsetReader(self.settings)
        while True:
            now = time.monotonic()
            for st in self.topology.stages:
                replicas = self.replicas[st.name]
                replicas.reap()
                policy = self.policies[st.name]
                current = replicas.desired
                if not policy.wants_offsets(now, current):
                    continue
                try:
                    lag = await asyncio.to_thread(reader.lag, self.connectors_group(st.name), st.input.topic)
                except Exception as exc:  # a failed read skips this round, as a scaler error would
                    log.warning("lag read for %s failed: %s", st.name, exc)
                    continue
                decision = policy.step(now, lag.partitions, current)
                if decision.replicas != current:
                    log.info("%s: %s scales %d -> %d", st.name, decision.by, current, decision.replicas)
                    replicas.scale(decision.replicas)
            await asyncio.sleep(self.control_tick_s)

    def control_clock(self, at: float) -> dict[str, dict[str, float | None]]:
        """Each stage's KEDA and HPA clocks at monotonic time `at` (the load's start), for the run's starting line:
        seconds since the ScaledObject was created, until KEDA's next poll and until the HPA's next sync. The
        HPA's 15 s sync phase against a burst changes the peak backlog severalfold, so `lagduel simulate --like`
        starts its policies exactly there."""
        out: dict[str, dict[str, float | None]] = {}
        for name, policy in self.policies.items():
            sync = policy.hpa.next_sync
            out[name] = {"created_s": round(at - policy.loop.created_at, 3),
                         "next_poll_s": round(policy.loop.next_poll - at, 3),
                         "next_sync_s": None if sync is None else round(sync - at, 3)}
        return out

    def connectors_group(self, stage: str) -> str:
        return connector_group(self.topology, self.topology.stage(stage))

    def connector_stats(self, stage: str) -> ConnectorStats:
        """The stage's connector counts, summed over its restarts."""
        sup, m = self.connectors.get(stage), self.connector_metrics.get(stage)
        if sup is None or m is None:
            return ConnectorStats()
        consumed = sum(w.dispatcher.stats.consumed for w in sup.workers)
        handled = sum(w.dispatcher.stats.handled for w in sup.workers)
        return ConnectorStats(consumed, handled, sup.current.dispatcher.stats.in_flight, m.retries, m.dead_lettered)

    # -- Backend protocol ------------------------------------------------------------------------
    def lag_sources(self) -> list[LagSource]:
        return lag_sources(self.topology)

    def status(self) -> list[StageStatus]:
        out = []
        for st in self.topology.stages:
            r = self.replicas[st.name]
            c = self.connector_stats(st.name)
            codes = self.gateway.codes[st.name] if self.gateway else {}
            metric = self.policies[st.name].last_metric
            extra: dict[str, float] = {f"gateway_{code}": float(n) for code, n in codes.items()}
            extra.update(connector_restarts=float(self.connectors[st.name].restarts) if st.name in self.connectors else 0.0,
                         replica_crashes=float(r.crashed))
            if metric is not None:
                extra.update(keda_metric=float(metric.total_lag), keda_active=float(metric.active))
            m = self.connector_metrics.get(st.name)
            out.append(StageStatus(
                stage=st.name, desired=r.desired, ready=r.ready, in_flight=c.in_flight,
                queued=self.gateway.held[st.name] if self.gateway else 0,
                retries=c.retries, dead_lettered=c.dead_lettered,
                errors=sum(n for code, n in codes.items() if code.startswith("5")),
                cold_starts=r.cold_starts, processed=m.processed if m else 0, extra=extra))
        return out

    def kill_replica(self, stage: str) -> str | None:
        """SIGKILL one ready replica of the stage (a fault scenario); it is reaped and replaced like any crash."""
        victim = self.replicas[stage].kill_one()
        return victim.name if victim else None

    def settings_in_force(self) -> dict[str, Any]:
        emu = self.topology.emulation
        return {
            "backend": self.name,
            # The controller's default tolerance; a stage's keda settings may override it per direction.
            "hpa": {"sync_period_s": self.hpa_sync_period_s, "tolerance": TOLERANCE,
                    "behavior": "defaulted (Pods 4/15s, Percent 100/15s, select Max)"},
            "ce_cap": self.ce_cap, "control_tick_s": self.control_tick_s,
            "gateway": {"upstream_timeout_s": self._gateway_config.upstream_timeout_s, "scale_from_zero": True,
                        "in_process": True},
            "hops_ms": {"gateway": emu.hops.gateway_ms, "watchdog": emu.hops.watchdog_ms},
            "real_http_hops_per_stage": 1,
            "throttle": "after a 429 wait for a slot to free (at most %g s), up to 100 times" % THROTTLE_MAX_WAIT_S,
            "pod_start_delay_s": emu.pod_start_delay_s, "commit_interval_s": self.commit_interval_s,
            "fetch_wait_ms": emu.fetch_wait_ms, "producer_linger_ms": emu.producer_linger_ms,
            "stages": {st.name: {"keda": st.keda.model_dump(), "min_replicas": st.min_replicas,
                                 "max_replicas": st.max_replicas, "initial_replicas": self.starting_replicas(st.name),
                                 "max_inflight": st.concurrency, "latency_ms": st.latency_ms,
                                 "exec_timeout_s": st.timeout_s, "delivery": st.delivery.model_dump(),
                                 "connector_in_flight": self.max_in_flight or st.concurrency * st.max_replicas}
                       for st in self.topology.stages},
            "capacity": {st.name: capacity_in_force(
                f"{st.min_replicas}..{st.max_replicas}, start {self.starting_replicas(st.name)}", st.concurrency,
                self.max_in_flight or st.concurrency * st.max_replicas, st.latency_ms) for st in self.topology.stages},
        }
