"""The load generator: N producer processes on one shared schedule, histograms merged.

Workers start together at an agreed wall-clock instant (after every one has imported and
connected), so intended times are comparable across processes and with the sink's clock.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from load import histograms
from load.producer import ACKED, FAILED, LATE, SENT, SLOTS, LoadPlan, ShareSender, WorkerResult
from load.profiles import schedule_array
from pipeline.kafka import KafkaSettings


class GeneratorFailed(RuntimeError):
    pass


class GeneratorCancelled(GeneratorFailed):
    """The run was interrupted (SIGINT/SIGTERM): the workers were stopped."""


@dataclass(frozen=True)
class LoadProgress:
    elapsed_s: float
    scheduled: int
    """Events the schedule wants sent by now."""
    sent: int
    acked: int
    failed: int
    late: int


@dataclass
class LoadResult:
    run_id: str
    profile: dict[str, Any]
    workers: int
    start_wall: float
    scheduled: int
    sent: int
    acked: int
    failed: int
    valid: int
    invalid: int
    duration_s: float
    """Length of the schedule."""
    elapsed_s: float
    """From start until the last send (over duration_s when the generator fell behind)."""
    lateness_us: str
    late_threshold_ms: float
    late_share: float
    lateness_ms: dict[str, float | int | None]
    behind: bool
    verdict: str
    errors: list[str] = field(default_factory=list)

    @property
    def offered_rate(self) -> float:
        return self.scheduled / self.duration_s if self.duration_s else 0.0

    @property
    def achieved_rate(self) -> float:
        return self.sent / max(self.elapsed_s, self.duration_s, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "lateness_us"}
        out.update(offered_rate=round(self.offered_rate, 2), achieved_rate=round(self.achieved_rate, 2))
        return out


def per_second_schedule(plan: LoadPlan) -> list[int]:
    """Cumulative count of scheduled events at the end of each second (for progress and the report)."""
    per_second = np.bincount(schedule_array(plan.profile).astype(np.int64) + 1,
                             minlength=int(plan.profile.duration_s) + 2)
    return np.cumsum(per_second).tolist()


def _worker_main(plan: LoadPlan, settings: KafkaSettings, worker: int, ready: Any, start: Any, progress: Any,
                 results: Any, logs: Any) -> None:
    # The worker's log records (librdkafka's included) go to the parent's handlers: its log file, not the terminal.
    root = logging.getLogger()
    root.handlers = [logging.handlers.QueueHandler(logs)]
    root.setLevel(logging.INFO)
    try:
        sender = ShareSender(plan, settings, worker)  # encoding and connecting before the start signal
        ready.put(worker)
        start_wall = start.get()
        results.put(sender.run(start_wall, progress))
    except Exception as exc:  # reported to the parent, which fails the run with the cause
        results.put(WorkerResult(worker, errors=[f"worker {worker} crashed: {type(exc).__name__}: {exc}"]))


def run_load(plan: LoadPlan, settings: KafkaSettings,
             on_progress: Callable[[LoadProgress], None] | None = None, lead_in_s: float = 0.3,
             on_start: Callable[[float], None] | None = None,
             cancelled: threading.Event | None = None) -> LoadResult:
    """Run the plan to the end; calls `on_progress` about 4 times a second. Setting `cancelled` (an interrupted
    run) kills the workers and raises GeneratorCancelled."""
    ctx = mp.get_context("spawn")  # no fork: the parent runs librdkafka threads
    ready, results = ctx.Queue(), ctx.Queue()
    starts = [ctx.Queue() for _ in range(plan.workers)]
    progress = ctx.Array("d", plan.workers * SLOTS, lock=False)
    logs = ctx.Queue()
    forward = logging.handlers.QueueListener(logs, *logging.getLogger().handlers, respect_handler_level=True)
    forward.start()
    procs = [ctx.Process(target=_worker_main, args=(plan, settings, w, ready, starts[w], progress, results, logs),
                         name=f"lagduel-load-{w}", daemon=True) for w in range(plan.workers)]
    cumulative = per_second_schedule(plan)
    for p in procs:
        p.start()
    try:
        _await_ready(ready, procs, timeout_s=60.0)
        start_wall = time.time() + lead_in_s
        if on_start:
            on_start(start_wall)
        for q in starts:
            q.put(start_wall)
        done: list[WorkerResult] = []
        while len(done) < len(procs):
            if cancelled is not None and cancelled.is_set():
                raise GeneratorCancelled("the load was interrupted")
            try:
                done.append(results.get(timeout=0.25))
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and results.empty():
                    raise GeneratorFailed("a load worker exited without a result") from None
            if on_progress:
                on_progress(_progress(progress, plan.workers, start_wall, cumulative))
    finally:
        for p in procs:
            p.join(timeout=0 if cancelled is not None and cancelled.is_set() else 5)
            if p.is_alive():
                p.kill()
        forward.stop()
    crashed = [e for r in done for e in r.errors if "crashed" in e]
    if crashed:
        raise GeneratorFailed(crashed[0])
    return summarize(plan, start_wall, cumulative[-1], done)


def _await_ready(ready: Any, procs: list[Any], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = len(procs)
    while waiting:
        try:
            ready.get(timeout=0.2)
            waiting -= 1
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                raise GeneratorFailed("a load worker died while starting (run with -v for its output)") from None
            if time.monotonic() > deadline:
                raise GeneratorFailed(f"load workers did not start within {timeout_s:.0f} s") from None


def _progress(progress: Any, workers: int, start_wall: float, cumulative: list[int]) -> LoadProgress:
    elapsed = max(time.time() - start_wall, 0.0)
    sec = min(int(elapsed), len(cumulative) - 1)
    tot = [sum(progress[w * SLOTS + i] for w in range(workers)) for i in range(SLOTS)]
    return LoadProgress(elapsed, cumulative[sec], int(tot[SENT]), int(tot[ACKED]), int(tot[FAILED]), int(tot[LATE]))


def summarize(plan: LoadPlan, start_wall: float, scheduled: int, done: list[WorkerResult]) -> LoadResult:
    lateness = histograms.merged(r.lateness for r in done if r.lateness)
    late_share = histograms.share_above(lateness, int(plan.late_threshold_ms * 1000))
    stats = histograms.summary_ms(lateness)
    sent = sum(r.sent for r in done)
    acked = sum(r.acked for r in done)
    failed = sum(r.failed for r in done)
    p99 = stats["p99"] or 0.0
    reasons = []
    if late_share > plan.max_late_share:
        reasons.append(f"{late_share:.1%} of events sent more than {plan.late_threshold_ms:g} ms late "
                       f"(limit {plan.max_late_share:.1%})")
    if p99 > plan.max_p99_lateness_ms:
        reasons.append(f"p99 send lateness {p99:.1f} ms (limit {plan.max_p99_lateness_ms:g} ms)")
    if failed:
        reasons.append(f"{failed} records not acknowledged by the broker")
    if sent < scheduled:
        reasons.append(f"sent {sent} of {scheduled} scheduled events")
    behind = bool(reasons)
    verdict = ("BEHIND SCHEDULE: " + "; ".join(reasons)) if behind else \
        f"on schedule: p99 lateness {p99:.2f} ms, {late_share:.2%} late"
    last = max((r.last_send_offset_s for r in done), default=0.0)
    return LoadResult(
        run_id=plan.run_id, profile=plan.profile.describe(), workers=plan.workers, start_wall=start_wall,
        scheduled=scheduled, sent=sent, acked=acked, failed=failed, valid=sum(r.valid for r in done),
        invalid=sum(r.invalid for r in done), duration_s=plan.profile.duration_s,
        elapsed_s=last, lateness_us=histograms.encode(lateness),
        late_threshold_ms=plan.late_threshold_ms, late_share=late_share, lateness_ms=stats, behind=behind,
        verdict=verdict, errors=[e for r in done for e in r.errors][:10],
    )
