"""Was a run bound by the instrument (the 2-core machine) rather than the system under test?

A pure classifier: CPU readings, the generator's own verdict and each stage's per-second figures in,
an `InstrumentVerdict` out. No clock, no psutil (load.cpu takes the readings); every threshold lives in
`InstrumentThresholds`. A backend run is instrument-bound when ANY of:

- the machine was saturated (busy share >= `busy_share`) for >= `saturated_share` of the disturbance's
  seconds (the whole run when the disturbance is shorter than 2 s);
- the generator fell behind its schedule (decided by the generator against its own limits, LoadPlan);
- some stage is bound: in >= `min_bound_seconds` seconds where its backlog grew, it finished fewer events
  than `capacity_shortfall` x its modeled capacity (ready x concurrency / service time). The model says
  such a stage should have kept up, so something outside the model (CPU, event loop, client) held it.
  Unbounded capacity (service time 0) with a growing backlog counts as short; 0 ready replicas is
  capacity 0 and never counts (scale-from-zero is the control plane's doing, i.e. the system under test).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

_UNBOUNDED = math.inf


@dataclass(frozen=True)
class InstrumentThresholds:
    """Every limit of the instrument check, in one place."""

    busy_share: float = 0.90
    """A second counts as saturated when the machine's busy share (all cores) is at least this. At 90 % of
    2 cores fewer than 0.2 cores are left over that second: runnable threads queue for a core, so latency
    and throughput then reflect the scheduler; below it there is still room on average."""

    saturated_share: float = 0.20
    """The run is bound when at least this share of the disturbance's seconds were saturated. A scale-out
    alone briefly saturates the machine (each new Python replica costs about a core-second of imports), so
    one or two seconds are expected; a fifth of the window (4 s of a 20 s burst) shapes the recovery."""

    capacity_shortfall: float = 0.8
    """A stage second is short when the stage finished fewer events than this fraction of its modeled
    capacity. The model counts only the service time; HTTP, CloudEvents and Kafka handling add a few
    hundred microseconds per event, so healthy stages reach 85-100 % of it at 10 ms service time. Under
    80 % with a growing backlog, something outside the model held the stage back."""

    min_bound_seconds: int = 3
    """A stage is bound only after this many short seconds while its backlog grew. One or two happen
    without the machine's help: a replica counted ready mid-second, a garbage collection, a rebalance."""

    min_backlog_growth: int = 50
    """Events: the backlog must grow by more than this (plus the commit allowance) over the growth window
    to count, so in-flight events (also counted in lag) and low-rate noise never make a growth second."""

    commit_allowance_s: float = 1.0
    """Seconds of the stage's own throughput allowed as noise in its backlog. Backlog is read as consumer
    lag, and the dispatchers, connector and Faust agents commit once a second (pipeline.delivery
    dispatcher, openfaas connector, native app: commit interval 1 s), so a reading between commits
    includes up to one interval of finished-but-uncommitted events."""

    growth_window_s: int = 3
    """A second counts as growth when the backlog rose over the trailing window of this many seconds.
    Commit aliasing does not accumulate while a real shortfall does, so over 3 s a stage falling behind
    by a fifth of its throughput already clears the commit allowance of one second."""

    min_window_s: float = 2.0
    """A disturbance window shorter than this is no window (a steady profile): the whole run is judged."""


@dataclass(frozen=True)
class CpuPoint:
    """One CPU reading: `t` in seconds since the load's start, covering the interval before it."""

    t: float
    busy_share: float
    """Machine CPU busy share 0..1, all cores."""
    groups: Mapping[str, float] = field(default_factory=dict)
    """Cores used by each process group (lagduel, generator, broker, replicas, connectors, native, other)."""


class CpuReading(Protocol):
    """Anything shaped like a CpuPoint (load.cpu.CpuSample after converting t to the load's axis)."""

    @property
    def t(self) -> float: ...

    @property
    def busy_share(self) -> float: ...

    @property
    def groups(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class StageSecond:
    """One stage at one sample, seconds since the load's start."""

    t: float
    ready: int
    capacity_eps: float | None
    """Modeled events/s (stage_capacity_eps); None when the model sets no limit."""
    achieved_eps: float
    """Events the stage finished per second over the second ending at t."""
    backlog: int
    """Events waiting at the stage (its consumer lag)."""
    consumed_eps: float = 0.0
    """Records its consumer group committed per second. A Knative Trigger reads the whole broker topic and
    filters: its lag, and the finished-but-uncommitted records in it, count every type, not only its own."""


@dataclass(frozen=True)
class StageVerdict:
    capacity_eps: float | None
    """Median modeled capacity over the seconds that decided the verdict (see `judge_stage`)."""
    achieved_eps: float
    """Median achieved events/s over the same seconds."""
    bound: bool
    growth_seconds: int
    """Seconds in which the backlog grew."""
    bound_seconds: int = 0
    """Growth seconds in which the stage fell short of its capacity."""


@dataclass(frozen=True)
class InstrumentVerdict:
    bound: bool
    reasons: tuple[str, ...]
    cpu_busy_p95: float | None
    """95th percentile of the machine's busy share over the run; None without CPU readings."""
    cpu_groups_mean: dict[str, float]
    """Mean cores per process group over the run."""
    stages: dict[str, StageVerdict]

    def to_dict(self) -> dict[str, Any]:
        return {
            "bound": self.bound,
            "reasons": list(self.reasons),
            "cpu_busy_p95": None if self.cpu_busy_p95 is None else round(self.cpu_busy_p95, 4),
            "cpu_groups": {g: round(c, 3) for g, c in self.cpu_groups_mean.items()},
            "stages": {name: {"capacity_eps": _rounded(v.capacity_eps), "achieved_eps": round(v.achieved_eps, 2),
                              "bound": v.bound} for name, v in self.stages.items()},
        }


def stage_capacity_eps(ready: int, concurrency: int, service_time_s: float,
                       in_flight_cap: int | None = None) -> float | None:
    """Modeled events/s: ready x concurrency / service time (Little's law at full concurrency).

    0 with no ready replica; None (the model sets no limit) when the service time is 0. `in_flight_cap`
    caps ready x concurrency where the platform dispatches fewer at once (e.g. a connector's max in flight).
    """
    if ready <= 0:
        return 0.0
    if service_time_s <= 0:
        return None
    slots = ready * concurrency if in_flight_cap is None else min(ready * concurrency, in_flight_cap)
    return slots / service_time_s


def classify(cpu: Sequence[CpuReading], disturbance: tuple[float, float], generator_behind: bool,
             generator_reason: str, stages: Mapping[str, Sequence[StageSecond]],
             thresholds: InstrumentThresholds = InstrumentThresholds()) -> InstrumentVerdict:
    """The verdict for one backend run; every time is seconds since the load's start."""
    th = thresholds
    reasons: list[str] = []
    saturation = machine_saturation(cpu, disturbance, th)
    if saturation is not None:
        reasons.append(saturation)
    if generator_behind:
        reasons.append(_generator_reason(generator_reason))
    verdicts = {name: judge_stage(seconds, th) for name, seconds in stages.items()}
    for name, v in verdicts.items():
        if v.bound:
            reasons.append(_stage_reason(name, v))
    busy = sorted(p.busy_share for p in cpu)
    return InstrumentVerdict(
        bound=bool(reasons), reasons=tuple(reasons),
        cpu_busy_p95=_nearest_rank(busy, 0.95) if busy else None,
        cpu_groups_mean=_groups_mean(cpu), stages=verdicts)


def machine_saturation(cpu: Sequence[CpuReading], disturbance: tuple[float, float],
                       th: InstrumentThresholds) -> str | None:
    """The reason when the machine was saturated for too much of the window, else None."""
    start, end = disturbance
    whole_run = end - start < th.min_window_s
    window = list(cpu) if whole_run else _within(cpu, start, end)
    if not window:
        return None
    saturated = [p for p in window if p.busy_share >= th.busy_share]
    if not saturated or len(saturated) / len(window) < th.saturated_share:
        return None
    where = "the run" if whole_run else "the disturbance"
    top = sorted(_groups_mean(saturated).items(), key=lambda kv: -kv[1])[:3]
    spent = ", ".join(f"{g} {c:.1f}" for g, c in top if c >= 0.05)
    return (f"machine CPU ≥ {th.busy_share:.0%} busy for {len(saturated)} of {len(window)} s of {where}"
            + (f" (cores: {spent})" if spent else ""))


def judge_stage(seconds: Sequence[StageSecond], th: InstrumentThresholds) -> StageVerdict:
    """Growth seconds, short seconds among them, and the figures that decided.

    The figures are medians over the short seconds when the stage is bound, else over its growth seconds,
    else over the whole run. A second is judged against the capacity present throughout it: the lower of
    its own and the previous sample's (a replica that became ready mid-second served only part of it).
    """
    ss = sorted(seconds, key=lambda s: s.t)
    growth: list[tuple[StageSecond, float]] = []
    short: list[tuple[StageSecond, float]] = []
    for i in range(1, len(ss)):
        j = max(0, i - th.growth_window_s)
        span = ss[j + 1:i + 1]
        rate = sum(max(s.achieved_eps, s.consumed_eps) for s in span) / len(span)  # records behind the lag
        allowance = th.min_backlog_growth + th.commit_allowance_s * rate
        if ss[i].backlog - ss[j].backlog <= allowance:
            continue
        capacity = min(_cap(ss[i].capacity_eps), _cap(ss[i - 1].capacity_eps))
        growth.append((ss[i], capacity))
        if capacity > 0 and ss[i].achieved_eps < th.capacity_shortfall * capacity:
            short.append((ss[i], capacity))
    bound = len(short) >= th.min_bound_seconds
    basis = short if bound else growth if growth else [(s, _cap(s.capacity_eps)) for s in ss]
    return StageVerdict(
        capacity_eps=_finite(_median([c for _, c in basis])) if basis else None,
        achieved_eps=_median([s.achieved_eps for s, _ in basis]) if basis else 0.0,
        bound=bound, growth_seconds=len(growth), bound_seconds=len(short))


def _generator_reason(reason: str) -> str:
    detail = reason.strip()
    prefix = "behind schedule:"
    if detail.lower().startswith(prefix):
        detail = detail[len(prefix):].strip()
    return f"generator behind schedule: {detail}" if detail else "generator behind schedule"


def _stage_reason(name: str, v: StageVerdict) -> str:
    if v.capacity_eps is None:
        return (f"stage {name} processed {v.achieved_eps:,.0f} ev/s while its backlog grew ({v.bound_seconds} s);"
                f" with zero service time the model keeps up with any rate")
    return (f"stage {name} processed {v.achieved_eps:,.0f} ev/s against a modeled capacity of "
            f"{v.capacity_eps:,.0f} ev/s while its backlog grew ({v.bound_seconds} s)")


def _within(cpu: Sequence[CpuReading], start: float, end: float) -> list[CpuReading]:
    """Readings whose interval's midpoint lies in [start, end] (a reading covers the time since the last)."""
    out: list[CpuReading] = []
    prev: float | None = None
    for p in sorted(cpu, key=lambda p: p.t):
        mid = p.t - 0.5 if prev is None else (prev + p.t) / 2
        if start <= mid <= end:
            out.append(p)
        prev = p.t
    return out


def _groups_mean(cpu: Sequence[CpuReading]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for p in cpu:
        for g, c in p.groups.items():
            totals[g] = totals.get(g, 0.0) + c
    return {g: c / len(cpu) for g, c in totals.items()}


def _nearest_rank(ordered: Sequence[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _median(values: Sequence[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    if len(s) % 2:
        return s[mid]
    lo, hi = s[mid - 1], s[mid]
    return hi if math.isinf(hi) else (lo + hi) / 2


def _cap(capacity: float | None) -> float:
    return _UNBOUNDED if capacity is None else capacity


def _finite(capacity: float) -> float | None:
    return None if math.isinf(capacity) else capacity


def _rounded(capacity: float | None) -> float | None:
    return None if capacity is None else round(capacity, 2)
