"""Burrow-style consumer status, adapted to 1 s samples of committed offsets (benchmarks.md §3.2).

Burrow evaluates a window of commits per partition; here the window is the last `window` samples.
Burrow's STOP (no commits lately) cannot be told from STALL (same offset recommitted) by sampling
offsets, so STOP is STALL with no ready replica: nothing is consuming at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

OK, WARN, STALL, STOP, REWIND = "OK", "WARN", "STALL", "STOP", "REWIND"
_RANK = {OK: 0, WARN: 1, STALL: 2, REWIND: 3, STOP: 4}


def partition_status(committed: Sequence[int | None], lags: Sequence[int | None], ready: int,
                     allowed_lag: int = 0) -> str:
    """Status of one partition over a full window (oldest first)."""
    current = lags[-1]
    if current is None or current <= allowed_lag:
        return OK
    offsets = [c for c in committed if c is not None]
    if any(b < a for a, b in pairwise(offsets)):
        return REWIND  # a committed offset went down inside the window
    if any(lag is not None and lag <= allowed_lag for lag in lags):
        return OK  # caught up at some point in the window (Burrow rule 1)
    if offsets and len(set(offsets)) == 1 and len(offsets) == len(committed):
        return STOP if ready == 0 else STALL  # lag never zero and no progress
    known = [lag for lag in lags if lag is not None]
    if all(b >= a for a, b in pairwise(known)):
        return WARN  # progressing but never catching up: lag never decreased
    return OK


def group_status(partition_windows: Sequence[tuple[Sequence[int | None], Sequence[int | None]]], ready: int,
                 allowed_lag: int = 0) -> str:
    """The worst partition's status (Burrow's group status)."""
    worst = OK
    for committed, lags in partition_windows:
        s = partition_status(committed, lags, ready, allowed_lag)
        if _RANK[s] > _RANK[worst]:
            worst = s
    return worst


def timeline(ts: Sequence[float], committed: Sequence[Sequence[int | None]], lags: Sequence[Sequence[int | None]],
             ready: Sequence[int], window: int = 10, allowed_lag: int = 0) -> list[tuple[float, str]]:
    """Status at every sample once a full window exists: [(t, status)] per sample.

    `committed[i]` and `lags[i]` hold the per-partition values of sample i.
    """
    out: list[tuple[float, str]] = []
    n_parts = len(lags[0]) if lags else 0
    for i in range(window - 1, len(ts)):
        lo = i - window + 1
        windows = [([committed[k][p] for k in range(lo, i + 1)], [lags[k][p] for k in range(lo, i + 1)])
                   for p in range(n_parts)]
        out.append((ts[i], group_status(windows, ready[i], allowed_lag)))
    return out


def changes(tl: Sequence[tuple[float, str]]) -> list[tuple[float, str]]:
    """Only the points where the status changed."""
    return [(t, s) for k, (t, s) in enumerate(tl) if k == 0 or tl[k - 1][1] != s]


def time_in(tl: Sequence[tuple[float, str]]) -> dict[str, int]:
    """Samples spent in each status."""
    out = {s: 0 for s in _RANK}
    for _, s in tl:
        out[s] += 1
    return out
