"""Function replicas for the local emulation: watchdog processes of one function, started and stopped
as the autoscaler decides, each paying a real process start plus the topology's pod start delay."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from pipeline.replicas import ReplicaProcess, python_module
from pipeline.topology import Stage, Topology

log = logging.getLogger("lagduel.openfaas")


def topology_document(topology: Topology) -> dict[str, Any]:
    """The topology as a loadable document (stage inputs are implied by the order, so left out)."""
    raw = topology.model_dump(mode="json")
    for st in raw["stages"]:
        st.pop("input", None)
    return raw


def write_topology(topology: Topology, path: Path) -> Path:
    path.write_text(yaml.safe_dump(topology_document(topology), sort_keys=False))
    return path


class FunctionReplicas:
    """The Deployment of one function: `scale(n)` sets the desired count; replicas start and stop to match.

    A new replica waits `pod_start_delay_s` (scheduling, image, container start) and then pays a
    real process start until the watchdog answers `/_/health` (the faas-netes probe path, §1.3).
    A removed replica leaves the endpoints at once and gets SIGTERM, so it drains what it has.
    """

    def __init__(self, stage: Stage, topology_file: Path, pod_start_delay_s: float,
                 env: Mapping[str, str] | None = None, client: httpx.AsyncClient | None = None) -> None:
        self.stage = stage
        self.desired = 0
        self.cold_starts = 0
        self.cold_start_s: list[float] = []
        """Each new replica's start: from being asked for to ready (the pod start delay plus the process's own)."""
        self._argv = python_module("pipeline.openfaas.watchdog", "--stage", stage.name,
                                   "--topology", str(topology_file), "--port", "{port}")
        self._delay = pod_start_delay_s
        self._env = {"healthcheck_interval": "100ms", "write_timeout": f"{stage.timeout_s:g}s", **(env or {})}
        self._client = client or httpx.AsyncClient()
        self._starting: dict[int, asyncio.Task[None]] = {}
        self._ready: list[ReplicaProcess] = []
        self._stopping: set[asyncio.Task[None]] = set()
        self._serial = 0
        self._rr = 0
        self.changed = asyncio.Event()
        self.crashed = 0
        self.on_ready: Callable[[int], None] | None = None
        """Called with the new replica's slots (max_inflight) when one becomes ready."""

    @property
    def ready(self) -> int:
        return len(self._ready)

    def ready_urls(self) -> list[str]:
        return [r.url for r in self._ready if r.alive()]

    def next_url(self) -> str | None:
        """Round-robin over ready replicas (faas-netes picks a random ready endpoint, §2)."""
        urls = self.ready_urls()
        if not urls:
            return None
        self._rr = (self._rr + 1) % len(urls)
        return urls[self._rr]

    def scale(self, replicas: int) -> None:
        self.desired = max(replicas, 0)
        while len(self._starting) + len(self._ready) < self.desired:
            self._serial += 1
            self._starting[self._serial] = asyncio.create_task(self._start(self._serial))
        while len(self._starting) + len(self._ready) > self.desired:
            if self._starting:  # a pod still starting goes first
                serial = max(self._starting)
                self._starting.pop(serial).cancel()
            else:
                self._retire(self._ready.pop())

    async def _start(self, serial: int) -> None:
        replica = ReplicaProcess(f"{self.stage.name}-{serial}", self._argv, ready_path="/_/health", env=self._env)
        began = time.monotonic()
        try:
            await asyncio.sleep(self._delay)
            replica.spawn()
            await replica.wait_ready(self._client)
        except asyncio.CancelledError:
            await replica.stop(grace_s=1)
            raise
        except (RuntimeError, TimeoutError) as exc:
            log.warning("replica %s failed to start: %s", replica.name, exc)
            await replica.stop(grace_s=1)
            self._starting.pop(serial, None)
            self.scale(self.desired)  # the Deployment controller replaces it
            return
        self._starting.pop(serial, None)
        self._ready.append(replica)
        self.cold_starts += 1
        self.cold_start_s.append(time.monotonic() - began)
        self.changed.set()
        if self.on_ready is not None:
            self.on_ready(self.stage.concurrency)

    def _retire(self, replica: ReplicaProcess) -> None:
        task = asyncio.create_task(replica.stop(grace_s=self.stage.timeout_s))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def reap(self) -> int:
        """Drop replicas that died (killed) and start replacements; returns how many died."""
        dead = [r for r in self._ready if not r.alive()]
        for r in dead:
            self._ready.remove(r)
            log.warning("replica %s died; replacing it", r.name)
        self.crashed += len(dead)
        if dead:
            self.scale(self.desired)
        return len(dead)

    def kill_one(self) -> ReplicaProcess | None:
        """SIGKILL one ready replica (a crashed pod), for failure tests."""
        if not self._ready:
            return None
        victim = self._ready[0]
        victim.kill()
        return victim

    async def close(self) -> None:
        self.scale(0)
        for task in list(self._stopping):
            await task
