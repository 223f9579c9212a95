"""NativeBackend: Faust worker processes running every stage (the no-serverless baseline)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.backends import LagSource, StageStatus, capacity_in_force
from pipeline.broker.process import stop_process_group
from pipeline.kafka import GroupMembership, KafkaSettings
from pipeline.native.app import agent_concurrency, app_id
from pipeline.replicas import python_module
from pipeline.topology import Topology

log = logging.getLogger("lagduel.native")


class NativeBackend:
    name = "native"

    def __init__(self, topology: Topology, settings: KafkaSettings, workers: int = 1, start_timeout_s: float = 60.0,
                 **_: Any) -> None:
        self.topology = topology
        self.settings = settings
        self.workers = workers
        self.start_timeout_s = start_timeout_s
        self._dir = Path(tempfile.mkdtemp(prefix="lagduel-native-"))
        self._procs: list[subprocess.Popen[bytes]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def log_path(self) -> Path:
        return self._dir / "workers.log"

    async def __aenter__(self) -> NativeBackend:
        (self._dir / "topology.json").write_text(self.topology.model_dump_json())
        self._procs = [self._spawn(i) for i in range(self.workers)]
        try:
            await self._wait_ready()
        except BaseException:  # cancelled (an interrupted run) or failed: no worker outlives us
            await self._stop_workers()
            raise
        self._supervisor = asyncio.create_task(self._supervise())
        return self

    def _spawn(self, i: int) -> subprocess.Popen[bytes]:
        """Worker i; its Faust data directory lands in the backend's scratch folder, not the user's CWD."""
        ready = self._dir / f"ready-{i}"
        ready.unlink(missing_ok=True)  # a replacement is ready only once it says so itself
        argv = python_module("pipeline.native.worker", str(self._dir / "topology.json"), self.settings.bootstrap_servers,
                             str(ready))
        with self.log_path.open("ab") as log:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=self._dir)

    async def _supervise(self) -> None:
        """A crashed worker is replaced, as a Deployment replaces a crashed pod; its group redelivers what it
        had not committed."""
        while True:
            await asyncio.sleep(0.5)
            for i, proc in enumerate(self._procs):
                if proc.poll() is not None:
                    log.warning("native worker %d exited (code %s); starting a new one", i, proc.returncode)
                    self.restarts += 1
                    self._procs[i] = self._spawn(i)

    def kill_replica(self, stage: str) -> str | None:
        """SIGKILL a worker (it runs every stage); the supervisor starts a new one."""
        for i, proc in enumerate(self._procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                return f"native-worker-{i}"
        return None

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            dead = [p for p in self._procs if p.poll() is not None]
            if dead:
                await self._stop_workers()
                raise RuntimeError(f"a native worker exited during start (code {dead[0].returncode}); log: {self.log_path}")
            if all((self._dir / f"ready-{i}").exists() for i in range(self.workers)):
                return
            await asyncio.sleep(0.1)
        await self._stop_workers()
        raise TimeoutError(f"native workers not ready within {self.start_timeout_s:.0f} s; log: {self.log_path}")

    async def __aexit__(self, *exc: object) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
        await self._stop_workers()
        if not any(exc):  # keep the workers' log when something went wrong
            shutil.rmtree(self._dir, ignore_errors=True)

    async def _stop_workers(self) -> None:
        procs, self._procs = self._procs, []
        await asyncio.gather(*(asyncio.to_thread(stop_process_group, p.pid, 20.0, p) for p in procs))

    async def wait_started(self, timeout_s: float = 60.0) -> None:
        """Returns once the workers' consumer group is stable and owns every stage topic's partitions."""
        await asyncio.to_thread(GroupMembership(self.settings).wait_assigned,
                                [(s.group, s.topic) for s in self.lag_sources()], timeout_s)

    def lag_sources(self) -> list[LagSource]:
        group = app_id(self.topology)
        return [LagSource(s.name, group, s.input.topic) for s in self.topology.stages]

    def status(self) -> list[StageStatus]:
        alive = sum(1 for i, p in enumerate(self._procs) if p.poll() is None and (self._dir / f"ready-{i}").exists())
        return [StageStatus(s.name, self.workers, alive, slots=alive * agent_concurrency(s),
                            extra={"worker_restarts": float(self.restarts)}) for s in self.topology.stages]

    def settings_in_force(self) -> dict[str, Any]:
        return {"workers": self.workers, "agent_concurrency": {s.name: agent_concurrency(s) for s in self.topology.stages},
                "commit_interval_s": 1.0, "latency_ms": {s.name: s.latency_ms for s in self.topology.stages},
                "capacity": {s.name: capacity_in_force(f"{self.workers} worker(s)", agent_concurrency(s),
                                                       agent_concurrency(s), s.latency_ms) for s in self.topology.stages}}
