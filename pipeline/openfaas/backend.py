"""`lagduel run --backend openfaas`: OpenFaaS + KEDA emulated locally on the real broker.

Per stage: a connector process (own consumer group) → the emulated gateway → watchdog replica
processes. This process plays the cluster: the gateway with its provider, the Deployments, KEDA/HPA.
A control loop reads each connector group's real lag with OffsetReader and feeds the stage's
ScaledObjectPolicy (KEDA scale loop for 0↔1, HPA for 1↔N), whose decisions set the replica count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from prometheus_client import CollectorRegistry

from pipeline.autoscale.hpa import SYNC_PERIOD_S
from pipeline.autoscale.keda import ScaledObjectPolicy
from pipeline.backends import LagSource, StageStatus
from pipeline.broker.process import free_port
from pipeline.kafka import KafkaSettings, OffsetReader
from pipeline.openfaas.connector import ConnectorConfig
from pipeline.openfaas.connectors import ConnectorDeployment
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


class OpenFaasBackend:
    name = "openfaas"

    def __init__(self, topology: Topology, settings: KafkaSettings, *, hpa_sync_period_s: float = SYNC_PERIOD_S,
                 control_tick_s: float = 0.25, ce_cap: bool = False, max_in_flight: int | None = None,
                 commit_interval_s: float = 1.0, upstream_timeout_s: float = 60.0) -> None:
        self.topology = topology
        self.settings = settings
        self.hpa_sync_period_s = hpa_sync_period_s
        self.control_tick_s = control_tick_s
        self.ce_cap = ce_cap
        self.max_in_flight = max_in_flight
        self.commit_interval_s = commit_interval_s
        env = read_environment()
        self.registry = CollectorRegistry()
        self._gateway_config = GatewayConfig(upstream_timeout_s, user=env.gateway_user or "admin",
                                             password=env.gateway_password or "")
        self.replicas: dict[str, FunctionReplicas] = {}
        self.connectors: dict[str, ConnectorDeployment] = {}
        self.policies: dict[str, ScaledObjectPolicy] = {}
        self.gateway: Gateway | None = None
        self.gateway_url = ""
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._topology_file = Path()
        self._server: uvicorn.Server | None = None
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> OpenFaasBackend:
        self._workdir = tempfile.TemporaryDirectory(prefix="lagduel-openfaas-")
        topo_file = self._topology_file = write_topology(self.topology, Path(self._workdir.name) / "topology.yaml")
        self._client = httpx.AsyncClient()
        now = time.monotonic()
        for st in self.topology.stages:
            self.replicas[st.name] = FunctionReplicas(st, topo_file, self.topology.emulation.pod_start_delay_s,
                                                      client=self._client)
            self.replicas[st.name].scale(st.min_replicas)
            self.policies[st.name] = ScaledObjectPolicy.for_stage(st, now=now, hpa_sync_period_s=self.hpa_sync_period_s,
                                                                  ce_cap=self.ce_cap)
        self.gateway = Gateway(self.replicas, self._gateway_config, self.registry,
                               min_replicas=lambda name: self.topology.stage(name).min_replicas)
        port = free_port()
        self._server = _InProcessServer(uvicorn.Config(self.gateway.app(), host="127.0.0.1", port=port,
                                                       log_level="warning", access_log=False, lifespan="off"))
        self._tasks["gateway"] = asyncio.create_task(self._server.serve())
        self.gateway_url = f"http://127.0.0.1:{port}"
        await self._await_gateway()
        try:
            await asyncio.gather(*(self.start_connector(st.name) for st in self.topology.stages))
        except BaseException:
            await self.__aexit__()
            raise
        self._tasks["control"] = asyncio.create_task(self._control_loop())
        self._tasks["scrape"] = asyncio.create_task(self._scrape_loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in (self._tasks.pop("control", None), self._tasks.pop("scrape", None)):
            if task:
                task.cancel()
        await asyncio.gather(*(self.stop_connector(name) for name in list(self.connectors)))
        for r in self.replicas.values():
            await r.close()
        if self._server:
            self._server.should_exit = True
            await self._tasks.pop("gateway")
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

    async def start_connector(self, stage: str) -> ConnectorDeployment:
        """Start (or restart) the stage's connector process; returns once it serves its metrics."""
        assert self._client is not None and self._workdir is not None
        connector = self.connectors.get(stage)
        if connector is None:
            config = ConnectorConfig.for_stage(self.topology, stage, self.gateway_url, self.max_in_flight,
                                               self.commit_interval_s)
            connector = self.connectors[stage] = ConnectorDeployment(config, self.settings, self._topology_file,
                                                                     Path(self._workdir.name))
        await connector.start(self._client)
        return connector

    async def stop_connector(self, stage: str) -> None:
        """Graceful stop (SIGTERM): drain in-flight invocations, produce their results, commit."""
        await self.connectors[stage].stop()

    async def _scrape_loop(self) -> None:
        """Read each connector's counts from its /metrics, as Prometheus would; replace dead connectors."""
        assert self._client is not None
        while True:
            for connector in list(self.connectors.values()):
                if connector.died():
                    await connector.restart(self._client)
                await connector.scrape(self._client)
            await asyncio.sleep(self.control_tick_s)

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

    def connectors_group(self, stage: str) -> str:
        return ConnectorConfig.for_stage(self.topology, stage, "").group

    # -- Backend protocol ------------------------------------------------------------------------
    def lag_sources(self) -> list[LagSource]:
        return [LagSource(st.name, self.connectors_group(st.name), st.input.topic) for st in self.topology.stages]

    def status(self) -> list[StageStatus]:
        out = []
        for st in self.topology.stages:
            r = self.replicas[st.name]
            c = self.connectors[st.name].total if st.name in self.connectors else None
            codes = self.gateway.codes[st.name] if self.gateway else {}
            metric = self.policies[st.name].last_metric
            extra: dict[str, float] = {f"gateway_{code}": float(n) for code, n in codes.items()}
            if metric is not None:
                extra.update(keda_metric=float(metric.total_lag), keda_active=float(metric.active))
            out.append(StageStatus(
                stage=st.name, desired=r.desired, ready=r.ready,
                in_flight=c.in_flight if c else 0,
                queued=self.gateway.held[st.name] if self.gateway else 0,
                retries=c.retries if c else 0,
                dead_lettered=c.dead_lettered if c else 0,
                errors=sum(n for code, n in codes.items() if code.startswith("5")),
                cold_starts=r.cold_starts, extra=extra))
        return out

    def settings_in_force(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "hpa": {"sync_period_s": self.hpa_sync_period_s, "tolerance": 0.1,
                    "behavior": "defaulted (Pods 4/15s, Percent 100/15s, select Max)"},
            "ce_cap": self.ce_cap,
            "gateway": {"upstream_timeout_s": self._gateway_config.upstream_timeout_s, "scale_from_zero": True},
            "pod_start_delay_s": self.topology.emulation.pod_start_delay_s,
            "stages": {st.name: {"keda": st.keda.model_dump(), "min_replicas": st.min_replicas,
                                 "max_replicas": st.max_replicas, "max_inflight": st.concurrency,
                                 "exec_timeout_s": st.timeout_s, "delivery": st.delivery.model_dump(),
                                 "connector_in_flight": self.max_in_flight or st.concurrency * st.max_replicas}
                       for st in self.topology.stages},
        }
