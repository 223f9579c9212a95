"""Replica processes for the local emulations: a real process per replica, started on a free port.

A new replica is a process of its own, forked warm from its module's fork server (pipeline.forkserver),
and pays the topology's scheduling delay (the time a cluster takes to place and start a pod): cold starts
cost what the model says, not what Python's imports cost this machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from pipeline.broker.process import free_port
from pipeline.forkserver import ForkServer, alive


@dataclass
class ReplicaProcess:
    """One replica: `argv` (a `python_module` command) is run with `{port}` substituted; ready once GET
    `ready_path` answers 200."""

    name: str
    argv: Sequence[str]
    ready_path: str = "/healthz"
    env: Mapping[str, str] = field(default_factory=dict)
    port: int = 0
    started_at: float = 0.0
    ready_at: float | None = None
    pid: int | None = None
    module: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cold_start_s(self) -> float | None:
        return None if self.ready_at is None else self.ready_at - self.started_at

    def spawn(self) -> None:
        self.port = free_port()
        self.started_at = time.monotonic()
        python, flag, module, *args = (a.replace("{port}", str(self.port)) for a in self.argv)
        assert (python, flag) == (sys.executable, "-m"), "replicas run a module of this installation"
        self.module = module
        self.pid = ForkServer.for_module(module).spawn(args, {**self.env, "PORT": str(self.port)})

    async def wait_ready(self, client: httpx.AsyncClient, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"replica {self.name} exited during start")
            try:
                r = await client.get(self.url + self.ready_path, timeout=1.0)
                if r.status_code == 200:
                    self.ready_at = time.monotonic()
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        raise TimeoutError(f"replica {self.name} not ready within {timeout_s:.0f} s")

    def alive(self) -> bool:
        return self.pid is not None and alive(self.pid)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.alive():
            assert self.pid is not None
            try:
                os.killpg(self.pid, signum)
            except ProcessLookupError:
                pass

    async def stop(self, grace_s: float = 5.0) -> None:
        self.terminate()
        deadline = time.monotonic() + grace_s
        while self.alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.kill()
        while self.alive():  # gone once its fork server reaped it
            await asyncio.sleep(0.01)
        if self.pid is not None:
            ForkServer.release(self.module, self.pid)


def python_module(module: str, *args: str) -> list[str]:
    """argv running a module of this installation with the same interpreter."""
    return [sys.executable, "-m", module, *args]
