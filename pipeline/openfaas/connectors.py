"""The connector Deployment of each function in the local emulation: its own process, as deployed.

Upstream the Kafka connector is a Deployment of its own, talking to the gateway over the network
and exposing Prometheus metrics (openfaas-keda.md §4.2). Here each stage's connector is the
`lagduel connector` command in a child process, pointed at the emulated gateway's URL. The
supervisor reads its counts the way Prometheus does (GET /metrics), restarts it if it dies (a
Deployment replaces a crashed pod), and on a graceful stop (SIGTERM: drain, produce, commit) keeps
the final counts the process writes on its way out.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from pipeline.kafka import KafkaSettings
from pipeline.openfaas.connector import ConnectorConfig
from pipeline.replicas import ReplicaProcess

log = logging.getLogger("lagduel.openfaas")
STOP_GRACE_S = 45.0  # the dispatcher's drain timeout (30 s) plus the final commit and flush
_SERIES = {"lagduel_connector_consumed_total": "consumed", "lagduel_connector_handled_total": "handled",
           "lagduel_connector_in_flight": "in_flight", "lagduel_connector_retries_total": "retries",
           "lagduel_connector_dead_lettered_total": "dead_lettered"}


@dataclass(frozen=True)
class ConnectorStats:
    consumed: int = 0
    handled: int = 0
    in_flight: int = 0
    retries: int = 0
    dead_lettered: int = 0

    def __add__(self, other: ConnectorStats) -> ConnectorStats:
        return ConnectorStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


def parse_metrics(text: str) -> ConnectorStats:
    """The connector's Prometheus exposition → its counts (series summed over their other labels)."""
    counts = dict.fromkeys(_SERIES.values(), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = _SERIES.get(sample.name)
            if key is not None:
                counts[key] += sample.value
    return ConnectorStats(**{k: int(v) for k, v in counts.items()})


class ConnectorDeployment:
    """One stage's connector process; `stats` is the live process's last scrape, `retired` its predecessors'."""

    def __init__(self, config: ConnectorConfig, settings: KafkaSettings, topology_file: Path, workdir: Path) -> None:
        self.config = config
        self.stats = ConnectorStats()
        self.retired = ConnectorStats()
        self.restarts = 0
        self._totals = workdir / f"connector-{config.stage.name}.json"
        self._argv = [sys.executable, "-m", "lagduel", "connector", "--stage", config.stage.name,
                      "--topology", str(topology_file), "--bootstrap", settings.bootstrap_servers,
                      "--gateway", config.gateway_url, "--max-in-flight", str(config.max_in_flight),
                      "--commit-interval", f"{config.commit_interval_s:g}", "--metrics-port", "{port}",
                      "--totals-file", str(self._totals)]
        self._serial = 0
        self._stopping = False
        self.process: ReplicaProcess | None = None

    @property
    def total(self) -> ConnectorStats:
        return self.retired + self.stats

    async def start(self, client: httpx.AsyncClient, timeout_s: float = 60.0) -> None:
        self._serial += 1
        self._stopping = False
        self._totals.unlink(missing_ok=True)
        self.process = ReplicaProcess(f"connector-{self.config.stage.name}-{self._serial}", self._argv,
                                      ready_path="/metrics")
        self.process.spawn()
        try:
            await self.process.wait_ready(client, timeout_s)
        except BaseException:
            await self.process.stop(grace_s=1)
            raise

    async def scrape(self, client: httpx.AsyncClient) -> None:
        if self.process is None or not self.process.alive():
            return
        try:
            r = await client.get(self.process.url + "/metrics", timeout=2.0)
        except httpx.TransportError:
            return  # exiting or busy: keep the last scrape
        if r.status_code == 200:
            self.stats = parse_metrics(r.text)

    def died(self) -> bool:
        return self.process is not None and not self._stopping and not self.process.alive()

    async def restart(self, client: httpx.AsyncClient) -> None:
        """A crashed connector is replaced; what it counted up to its last scrape is kept."""
        log.warning("connector %s exited; restarting it", self.config.stage.name)
        self.restarts += 1
        self._retire()
        await self.start(client)

    async def stop(self) -> None:
        """SIGTERM: the connector drains its in-flight invocations, produces their results and commits."""
        if self.process is None:
            return
        self._stopping = True
        await self.process.stop(grace_s=STOP_GRACE_S)
        self.process = None
        self._retire()

    def _retire(self) -> None:
        final = self.stats
        if self._totals.exists():  # written on a graceful exit: exact
            final = ConnectorStats(**orjson.loads(self._totals.read_bytes()))
            self._totals.unlink()
        self.retired = self.retired + ConnectorStats(**{**final.__dict__, "in_flight": 0})
        self.stats = ConnectorStats()
