"""Recovery metrics: pure functions over sampled series (times in seconds, one value per sample).

How fast a backend drains a lag spike, and what it spends doing it (benchmarks.md §7 items 6-7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RecoveryRules:
    recovered_lag: int = 10
    """Lag at or under this counts as recovered (events)."""
    breach_lag: int = 50
    """Lag over this counts as a breach (for the scale-out reaction time)."""
    throughput_window_s: float = 10.0


def peak(ts: Sequence[float], values: Sequence[float]) -> tuple[float | None, float]:
    """(time of the first maximum, maximum); (None, 0) for an empty series."""
    if not values:
        return None, 0.0
    i = max(range(len(values)), key=lambda k: (values[k], -k))
    return ts[i], values[i]


def time_to_recover(ts: Sequence[float], lags: Sequence[float], after: float, threshold: float) -> float | None:
    """Seconds from `after` until the lag is ≤ threshold and stays there to the end of the series."""
    recovered_at: float | None = None
    for t, lag in zip(ts, lags):
        if lag > threshold:
            recovered_at = None
        elif recovered_at is None and t >= after:
            recovered_at = t
        elif recovered_at is None and t < after:
            continue
    if recovered_at is None:
        return None
    return max(recovered_at - after, 0.0)


def area(ts: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoidal integral (lag: event-seconds; replicas: replica-seconds)."""
    return sum((ts[i] - ts[i - 1]) * (values[i] + values[i - 1]) / 2 for i in range(1, len(ts)))


def drain_rate(ts: Sequence[float], lags: Sequence[float], threshold: float) -> float | None:
    """Net events/s by which the lag shrank from its peak until it first reached the threshold."""
    t_peak, lag_peak = peak(ts, lags)
    if t_peak is None or lag_peak <= threshold:
        return None
    start = ts.index(t_peak)
    for t, lag in zip(ts[start:], lags[start:]):
        if lag <= threshold and t > t_peak:
            return (lag_peak - lag) / (t - t_peak)
    return None


def breach_to_scale_out(ts: Sequence[float], lags: Sequence[float], ready: Sequence[int], threshold: float) -> float | None:
    """Seconds from the first lag breach to the first added ready replica after it."""
    for i, lag in enumerate(lags):
        if lag > threshold:
            base = ready[i]
            for t, r in zip(ts[i:], ready[i:]):
                if r > base:
                    return t - ts[i]
            return None
    return None


def sustained_rate(ts: Sequence[float], rates: Sequence[float], window_s: float) -> float:
    """The highest rate held on average over any window of `window_s` seconds."""
    best, lo, acc = 0.0, 0, 0.0
    for hi in range(len(ts)):
        acc += rates[hi]
        while ts[hi] - ts[lo] >= window_s:
            acc -= rates[lo]
            lo += 1
        if ts[hi] - ts[0] >= window_s - 1e-9:
            best = max(best, acc / (hi - lo + 1))
    if not best and rates:
        best = sum(rates) / len(rates)
    return best


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty series: a value the series really took."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def cold_starts(counts: Sequence[int]) -> int:
    """Cold starts during the series, from a cumulative counter."""
    return max(counts[-1] - counts[0], 0) if counts else 0


def lag_metrics(ts: Sequence[float], lags: Sequence[float], time_lags: Sequence[float | None], ready: Sequence[int],
                disturbance_end: float, rules: RecoveryRules) -> dict[str, float | int | None]:
    """The recovery metrics of one lag series (a stage, or the whole pipeline)."""
    t_peak, lag_peak = peak(ts, lags)
    known = [x for x in time_lags if x is not None]
    ttr = time_to_recover(ts, lags, disturbance_end, rules.recovered_lag)
    return {
        "peak_lag": int(lag_peak),
        "peak_time_lag_s": round(max(known), 3) if known else None,
        "p99_time_lag_s": round(percentile(known, 0.99), 3) if known else None,
        "time_to_peak_s": round(t_peak - ts[0], 3) if t_peak is not None else None,
        "time_to_recover_s": round(ttr, 3) if ttr is not None else None,
        "drain_rate_eps": _r(drain_rate(ts, lags, rules.recovered_lag)),
        "lag_area": round(area(ts, lags), 1),
        "breach_to_scale_out_s": _r(breach_to_scale_out(ts, lags, ready, rules.breach_lag)),
        "replica_seconds": round(area(ts, ready), 1),
        "peak_ready": max(ready, default=0),
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
