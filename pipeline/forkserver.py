"""A warm parent for replica processes: it imports a replica's module once, then forks each new replica.

A replica started with `python -m <module>` spends ~0.6 s of CPU importing Starlette, uvicorn, pydantic
and the CloudEvents SDK before it serves. On 2 cores a scale-out of ten replicas then costs the machine
seconds of CPU in the middle of the burst it answers: the instrument's cost, not the platform's. A pod's
real start-up time is modeled by `emulation.pod_start_delay_s`, so the emulation pays that delay, and each
replica stays a process of its own (own port, own event loop, killed and crashed alone).

Protocol on the server's stdin/stdout, one JSON line each way: {"args": [...], "env": {...}} -> {"pid": N}.
The server reaps its children; it exits when its stdin closes (its parent is gone).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from types import ModuleType


class ForkServer:
    """The client side: one server per replica module while replicas of it run, in this process. The server
    starts with the first replica and stops once every replica it forked was released: no idle parent outlives
    the backend that needed it."""

    _servers: dict[str, ForkServer] = {}
    _lock = threading.Lock()

    def __init__(self, module: str) -> None:
        self.module = module
        self.children: set[int] = set()
        self._proc = subprocess.Popen([sys.executable, "-m", __name__, module], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, start_new_session=True)

    @classmethod
    def for_module(cls, module: str) -> ForkServer:
        with cls._lock:
            server = cls._servers.get(module)
            if server is None or server._proc.poll() is not None:
                server = cls._servers[module] = cls(module)
            return server

    def spawn(self, args: Sequence[str], env: Mapping[str, str]) -> int:
        """Fork a replica running `module.main(args)` with `env` added to the environment; its pid (it leads
        a process group of its own, so killpg reaches it)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            self._proc.stdin.write(json.dumps({"args": list(args), "env": dict(env)}).encode() + b"\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server of {self.module} exited (code {self._proc.poll()})")
        pid = int(json.loads(line)["pid"])
        self.children.add(pid)
        return pid

    @classmethod
    def release(cls, module: str, pid: int) -> None:
        """The replica `pid` is gone for good; the last one released stops its module's server."""
        with cls._lock:
            server = cls._servers.get(module)
            if server is None:
                return
            server.children.discard(pid)
            server.children = {p for p in server.children if alive(p)}
            if not server.children:
                del cls._servers[module]
                server._close()

    def _close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()  # its read loop ends: the server exits
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def alive(pid: int) -> bool:
    """A forked replica is alive until its server reaped it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a reused pid of someone else's
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"  # a zombie is dead, only not reaped yet
    except OSError:
        return False


def _reap(_signum: int, _frame: object) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _child(module: ModuleType, args: list[str], env: Mapping[str, str]) -> None:
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # the server's reply pipe is not the replica's
    os.environ.update(env)
    code = 1
    try:
        result = module.main(args)
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stderr.flush()
        os._exit(code)


def serve(module_name: str) -> None:
    module = importlib.import_module(module_name)
    signal.signal(signal.SIGCHLD, _reap)
    replies = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(module, request["args"], request["env"])
        replies.write(json.dumps({"pid": pid}).encode() + b"\n")
        replies.flush()


if __name__ == "__main__":
    serve(sys.argv[1])
