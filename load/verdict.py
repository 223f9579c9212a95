"""Repeats, spread and winners: when lagduel declares that one backend beat the others (pure).

A single run is an anecdote; a difference is declared only where repeats separate it (ARCHITECTURE.md
"The instrument"). The rules, per headline metric (load.metrics):

1. Competitors. Backends listed in `excluded` (e.g. "instrument-bound": the instrument, not the system
   under test, limited the run) never win; they are reported with their reason. Fewer than two
   competitors: no winner.
2. Missing values. For a "loses" metric (time to recover, drain rate) a None is the worst possible value
   (+inf when lower is better, -inf when higher is better): a backend that never recovered loses to one that
   did. For a "skip" metric a None is dropped, and a backend with no known value does not compete.
3. Categorical win. On a "loses" metric, if exactly one competitor has a value in every run and every other
   competitor has none in any run ("recovered" vs "never recovered"), it wins whatever the number of runs.
   If no competitor has a value in any run, there is no winner.
4. One run. Otherwise, if any competitor has a single comparable value there is no winner: one run has no
   confidence interval.
5. Intervals. With two comparable values a backend's interval is its min–max range; with three or more it
   is the seeded bootstrap 95 % percentile interval of its median (see `spread`).
6. Winner. The backend whose interval lies strictly on the better side of every other competitor's interval
   (no overlap, not even touching). Otherwise no winner: the intervals overlap, or all are one identical
   point (a tie). So there is at most one winner per metric.

Run order for repeats (`interleaved_order`): every round runs each backend once; who goes first rotates
through the backends in a seeded order, and the rest of each round is shuffled, so drift in the machine
(warm caches, a busy neighbour) does not always favour the same backend.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from load.metrics import METRICS, Metric

Value = float | int | None
NO_EXCLUSIONS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Spread:
    n: int
    """Runs, including those with no value."""
    missing: int
    """Runs whose value was None."""
    median: float | None
    lo: float | None
    """Smallest known value."""
    hi: float | None
    """Largest known value."""
    ci_lo: float | None
    """Bootstrap 95 % interval of the median; None with fewer than 3 known values."""
    ci_hi: float | None
    values: tuple[Value, ...]
    """As given, None included, in run order."""

    @property
    def known(self) -> int:
        return self.n - self.missing

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "missing": self.missing, "median": self.median, "lo": self.lo, "hi": self.hi,
                "ci_lo": self.ci_lo, "ci_hi": self.ci_hi, "values": list(self.values)}


@dataclass(frozen=True)
class Decision:
    metric: str
    winners: tuple[str, ...]
    """Empty when no backend is declared better; at most one backend under these rules."""
    reason: str
    """One short sentence saying why."""
    spreads: dict[str, Spread]
    """Every backend's spread over its raw values (None counted as missing), excluded ones too."""
    excluded: dict[str, str] = field(default_factory=dict)
    """Backend -> why it did not compete."""
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    """The intervals compared (competitors with two or more values); may hold ±inf for missing "loses" values."""


def spread(values: Sequence[Value], seed: int = 0, resamples: int = 2000) -> Spread:
    """Median, range and (with >= 3 known values) the seeded bootstrap 95 % percentile interval of the median.

    The interval is widened, if need be, to include the sample median, so it always lies within [lo, hi] and
    contains the median. Values may be ±inf (a missing "loses" value, see `decide`).
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    known = sorted(float(v) for v in values if v is not None)
    n, missing = len(values), sum(v is None for v in values)
    if not known:
        return Spread(n, missing, None, None, None, None, None, tuple(values))
    med = _median(known)
    ci_lo = ci_hi = None
    if len(known) >= 3:
        ci_lo, ci_hi = _bootstrap_median(known, seed, resamples)
        ci_lo, ci_hi = min(ci_lo, med), max(ci_hi, med)
    return Spread(n, missing, med, known[0], known[-1], ci_lo, ci_hi, tuple(values))


def _median(ordered: Sequence[float]) -> float:
    k, mid = len(ordered), len(ordered) // 2
    return ordered[mid] if k % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _bootstrap_median(ordered: Sequence[float], seed: int, resamples: int) -> tuple[float, float]:
    data = np.asarray(ordered, dtype=float)
    k = len(data)
    picks = np.random.default_rng(seed).integers(0, k, size=(resamples, k))
    # Indices sorted per row select order statistics of the (already sorted) data. Values of one sign of
    # inf only (see decide), so the even-k mean of the two middle values never meets inf - inf.
    rows = data[np.sort(picks, axis=1)]
    mid = k // 2
    medians = rows[:, mid] if k % 2 else (rows[:, mid - 1] + rows[:, mid]) / 2
    medians.sort()
    # Percentile interval by order statistics (no interpolation, which would produce nan next to inf).
    lo = medians[int(math.floor(0.025 * resamples))]
    hi = medians[min(resamples - 1, int(math.ceil(0.975 * resamples)) - 1)]
    return float(lo), float(hi)


def decide(metric: str, per_backend: Mapping[str, Sequence[Value]], excluded: Mapping[str, str] = NO_EXCLUSIONS,
           seed: int = 0) -> Decision:
    """Which backend, if any, is better on `metric` across its runs; the rules are in the module docstring."""
    m = METRICS[metric]
    spreads = {b: spread(vs, seed) for b, vs in per_backend.items()}
    out = {b: r for b, r in excluded.items() if b in per_backend}

    def no_winner(reason: str, intervals: dict[str, tuple[float, float]] | None = None) -> Decision:
        return Decision(metric, (), reason, spreads, out, intervals or {})

    if per_backend and len(out) == len(per_backend):
        reasons = set(out.values())
        return no_winner(f"all backends {reasons.pop()}" if len(reasons) == 1 else "all backends excluded")
    comparable = {b: _comparable(m, vs) for b, vs in per_backend.items() if b not in out}
    comparable = {b: vs for b, vs in comparable.items() if vs}
    if len(comparable) < 2:
        return no_winner("fewer than two comparable backends")

    if m.missing == "loses":
        always = [b for b in comparable if all(v is not None for v in per_backend[b])]
        never = [b for b in comparable if all(v is None for v in per_backend[b])]
        if len(never) == len(comparable):
            return no_winner(f"no backend {m.reached}")
        if len(always) == 1 and len(always) + len(never) == len(comparable):
            (w,) = always
            return Decision(metric, (w,), f"categorical: {w} {m.reached} in every run, {_join(never)} "
                            f"{m.missing_note}", spreads, out)

    single = [b for b, vs in comparable.items() if len(vs) == 1]
    if len(single) == len(comparable):
        return no_winner("1 run: no confidence interval")
    if single:
        return no_winner(f"1 measured run for {_join(single)}: no confidence interval")

    intervals = {b: _interval(vs, spreads[b], seed) for b, vs in comparable.items()}
    if len({x for iv in intervals.values() for x in iv}) == 1:  # one identical point everywhere
        return no_winner("tie: every run of every backend measured the same", intervals)
    for b, (lo, hi) in intervals.items():
        others = [o for o in intervals if o != b]
        if m.better == "lower":
            wins = all(hi < intervals[o][0] for o in others)
        else:
            wins = all(lo > intervals[o][1] for o in others)
        if wins:
            bootstrapped = {len(comparable[x]) >= 3 for x in intervals}
            kind = {frozenset({True}): "95 % interval", frozenset({False}): "range"}.get(frozenset(bootstrapped),
                                                                                         "interval")
            side = "below" if m.better == "lower" else "above"
            whose = f"{others[0]}'s" if len(others) == 1 else f"those of {_join(others)}"
            return Decision(metric, (b,), f"{b}'s {kind} lies entirely {side} {whose}", spreads, out, intervals)
    return no_winner("intervals overlap", intervals)


def _comparable(m: Metric, values: Sequence[Value]) -> list[float]:
    """The values a comparison uses: missing "loses" values as the worst value, missing "skip" values dropped."""
    if m.missing == "skip":
        return [float(v) for v in values if v is not None]
    worst = math.inf if m.better == "lower" else -math.inf
    return [worst if v is None else float(v) for v in values]


def _interval(comparable: Sequence[float], raw: Spread, seed: int) -> tuple[float, float]:
    if len(comparable) == 2:
        return min(comparable), max(comparable)
    if len(comparable) == raw.known and raw.ci_lo is not None and raw.ci_hi is not None:
        return raw.ci_lo, raw.ci_hi  # no missing value was replaced: the same values, the same interval
    s = spread(comparable, seed)
    assert s.ci_lo is not None and s.ci_hi is not None
    return s.ci_lo, s.ci_hi


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def interleaved_order(backends: Sequence[str], repeats: int, seed: int) -> list[tuple[int, str]]:
    """The seeded run order for `--repeat N`: (repeat index, backend), each round running every backend once.

    Within each block of len(backends) rounds every backend goes first exactly once (in a seeded order);
    the rest of each round is a seeded shuffle. The same seed gives the same order.
    """
    if repeats < 0:
        raise ValueError(f"repeats must be >= 0, got {repeats}")
    if len(set(backends)) != len(backends):
        raise ValueError(f"backends must be distinct, got {list(backends)}")
    rng = random.Random(seed)
    order: list[tuple[int, str]] = []
    firsts: list[str] = []
    for r in range(repeats):
        if not firsts:
            firsts = list(backends)
            rng.shuffle(firsts)
        if not firsts:
            break
        first = firsts.pop()
        rest = [b for b in backends if b != first]
        rng.shuffle(rest)
        order.extend((r, b) for b in [first, *rest])
    return order
