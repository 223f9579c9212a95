"""Replica processes forked warm from their module's fork server: each its own process, port and group.
(The environment a replica gets is exercised by the watchdog tests: max_inflight, exec_timeout.)"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import psutil

from pipeline.replicas import ReplicaProcess, python_module
from pipeline.topology import load_topology


def _replica(name: str, spec: Path) -> ReplicaProcess:
    return ReplicaProcess(name, python_module("pipeline.knative.service", "--stage", "validate", "--topology", str(spec),
                                              "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"),
                          ready_path="/readyz")


async def test_forked_replicas_are_processes_of_their_own_and_die_alone(tmp_path: Path) -> None:
    spec = tmp_path / "topology.json"
    spec.write_text(load_topology().model_dump_json())
    replicas = [_replica(f"validate-{i}", spec) for i in range(2)]
    try:
        for r in replicas:
            r.spawn()
        async with httpx.AsyncClient() as client:
            for r in replicas:
                await r.wait_ready(client, timeout_s=30)
            a, b = replicas
            assert a.pid != b.pid and os.getpgid(a.pid) == a.pid and os.getpgid(b.pid) == b.pid
            # A warm fork: the replica did not import its module again (a cold start takes ~0.5 s of CPU).
            times = psutil.Process(b.pid).cpu_times()
            assert times.user + times.system < 0.3, times

            os.killpg(a.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while a.alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert not a.alive()  # reaped by its fork server: no zombie left counted as alive
            assert (await client.get(b.url + "/readyz")).status_code == 200
    finally:
        for r in replicas:
            await r.stop(grace_s=2)
    assert not any(r.alive() for r in replicas)
    # The last replica released stops its fork server: no idle parent outlives the replicas it served.
    assert not [p for p in psutil.Process().children(recursive=True) if "pipeline.forkserver" in p.cmdline()]
