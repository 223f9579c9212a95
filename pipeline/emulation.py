"""What both local serverless emulations share beyond the data path: the start barrier and the CPU meter."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import psutil


async def await_started(missing: Callable[[], list[str]], timeout_s: float, backend: str) -> None:
    """Wait until `missing()` is empty (checked every 50 ms); TimeoutError lists what still is missing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        gaps = missing()
        if not gaps:
            return
        if loop.time() >= deadline:
            raise TimeoutError(f"{backend} not started within {timeout_s:g} s: " + "; ".join(gaps))
        await asyncio.sleep(0.05)


def measured_data_plane(cold_starts_s: Sequence[float], hops: Mapping[str, tuple[float, int]]) -> dict[str, Any]:
    """What the emulation's data plane took beyond its modeled numbers, for the run's calibration (and for
    `lagduel simulate --like`, which runs the same): the median pod start (the modeled pod start delay plus the
    replica process's own start and readiness) and per stage the mean wall time of the one real HTTP hop to a
    replica beyond the stage's emulated latency, ms. `hops`: stage → (seconds beyond the latency, summed; hops)."""
    starts = sorted(cold_starts_s)
    return {"pod_start_s": round(starts[len(starts) // 2], 3) if starts else None,
            "replica_hop_ms": {name: round(max(s, 0.0) * 1000 / n, 3) for name, (s, n) in hops.items() if n}}


class CpuMeter:
    """CPU seconds of the emulator's own threads since it was made: the event-loop thread that made it (the
    dispatchers, connectors and control plane run there) plus given threads (delivery-report pumps).
    Replica processes are not counted: they run the stage function, the system under test."""

    def __init__(self) -> None:
        self._loop_tid = threading.get_native_id()
        self._proc = psutil.Process()
        self._start = self._thread_times()
        self._t0 = time.monotonic()

    def _thread_times(self) -> dict[int, float]:
        return {t.id: t.user_time + t.system_time for t in self._proc.threads()}

    def cpu_s(self, threads: Iterable[int]) -> float:
        now = self._thread_times()
        ids = {self._loop_tid, *threads}
        return sum(now.get(i, 0.0) - self._start.get(i, 0.0) for i in ids)

    def calibration(self, threads: Iterable[int], stage_events: int, hops: int) -> dict[str, float]:
        """`stage_events`: events finished summed over the `hops` stages."""
        cpu = self.cpu_s(threads)
        return {"emulator_cpu_s": round(cpu, 3), "elapsed_s": round(time.monotonic() - self._t0, 3),
                "stage_events": float(stage_events), "hops": float(hops),
                "cpu_us_per_event_per_hop": round(cpu * 1e6 / stage_events, 1) if stage_events else 0.0,
                "cpu_us_per_event": round(cpu * 1e6 * hops / stage_events, 1) if stage_events else 0.0}
