"""Replica processes for the local emulations: a real process per replica, started on a free port.

A new replica pays a real process start plus the topology's scheduling delay (the time a
cluster takes to place and start a pod), so cold starts in the emulation cost what they cost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from pipeline.broker.process import free_port


@dataclass
class ReplicaProcess:
    """One replica: `argv` is run with `{port}` substituted; ready once GET `ready_path` answers 200."""

    name: str
    argv: Sequence[str]
    ready_path: str = "/healthz"
    env: Mapping[str, str] = field(default_factory=dict)
    port: int = 0
    started_at: float = 0.0
    ready_at: float | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cold_start_s(self) -> float | None:
        return None if self.ready_at is None else self.ready_at - self.started_at

    def spawn(self) -> None:
        self.port = free_port()
        self.started_at = time.monotonic()
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        self._proc = subprocess.Popen(argv, env={**os.environ, **self.env, "PORT": str(self.port)},
                                      stdin=subprocess.DEVNULL, start_new_session=True)

    async def wait_ready(self, client: httpx.AsyncClient, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"replica {self.name} exited during start (code {self._proc.returncode})")
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
        return self._proc is not None and self._proc.poll() is None

    def terminate(self) -> None:
        if self._proc and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        if self._proc and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def stop(self, grace_s: float = 5.0) -> None:
        self.terminate()
        deadline = time.monotonic() + grace_s
        while self._proc and self._proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.kill()
        if self._proc:
            self._proc.wait()


def python_module(module: str, *args: str) -> list[str]:
    """argv running a module of this installation with the same interpreter."""
    return [sys.executable, "-m", module, *args]
