"""Time lag estimated from offsets, as kafka-lag-exporter does it (benchmarks.md §3.3).

Per partition, a sliding table of (log-end offset, time) points; a group's committed offset is
placed on the line through the two points around it, and the lag is now minus that time.
It is the cross-check: the measured time lag comes from intended send times at the sink.

PartitionTimeline states the rule for one partition; TopicTimeline applies the same rule to
every partition of a topic at once (arrays, one row per partition), and the tests hold the two equal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

TABLE_SIZE = 60  # lookup-table.memory.size default (benchmarks.md §3.3)
_PAD = np.iinfo(np.int64).max  # unused table cells: above every offset, so searches never land on them


@dataclass
class PartitionTimeline:
    size: int = TABLE_SIZE
    points: deque[tuple[int, float]] = field(default_factory=deque)

    def add(self, offset: int, t: float) -> None:
        pts = self.points
        if pts and (t <= pts[-1][1] or offset < pts[-1][0]):
            return  # OutOfOrder / NonMonotonic points are rejected
        if len(pts) >= 2 and pts[-1][0] == offset and pts[-2][0] == offset:
            pts[-1] = (offset, t)  # a flat run is compressed: the newest point's time moves
            return
        pts.append((offset, t))
        while len(pts) > self.size:
            pts.popleft()

    def lag_s(self, committed: int | None, now: float) -> float | None:
        """Seconds behind; 0 at the log end; None when it can't be estimated (no commit, < 2 points)."""
        pts = self.points
        if committed is None or not pts:
            return None
        if committed >= pts[-1][0]:
            return 0.0
        if len(pts) < 2:
            return None
        left, right = pts[0], pts[-1]  # extrapolation, unless a bracketing pair exists
        for a, b in zip(pts, list(pts)[1:]):
            if a[0] <= committed <= b[0] and b[0] > a[0]:
                left, right = a, b
                break
        if right[0] == left[0]:
            return None
        at = right[1] - (right[0] - committed) * (right[1] - left[1]) / (right[0] - left[0])
        return max(now - at, 0.0)


class TopicTimeline:
    """PartitionTimeline's rule over all partitions: row p holds partition p's points, oldest first."""

    def __init__(self, size: int = TABLE_SIZE) -> None:
        self.size = size
        self.offsets = np.full((0, size), _PAD, dtype=np.int64)
        self.times = np.zeros((0, size), dtype=np.float64)
        self.count = np.zeros(0, dtype=np.int64)

    def add(self, log_ends: np.ndarray | Mapping[int, int], t: float) -> None:
        """Add one (log-end, t) point per partition; an array is indexed by partition."""
        rows, ends = _rows_and_values(log_ends)
        if rows.size and rows.max() >= len(self.count):
            self._grow(int(rows.max()) + 1)
        n = self.count[rows]
        seen = n > 0
        last = np.maximum(n - 1, 0)
        last_off, last_t = self.offsets[rows, last], self.times[rows, last]
        rejected = seen & ((t <= last_t) | (ends < last_off))  # OutOfOrder / NonMonotonic
        flat = ~rejected & (n >= 2) & (last_off == ends) & (self.offsets[rows, np.maximum(n - 2, 0)] == ends)
        self.times[rows[flat], last[flat]] = t  # a flat run is compressed: the newest point's time moves
        append = ~rejected & ~flat
        full = append & (n >= self.size)
        if full.any():  # the oldest point drops out
            r = rows[full]
            self.offsets[r, :-1] = self.offsets[r, 1:]
            self.times[r, :-1] = self.times[r, 1:]
        at = np.where(full, self.size - 1, n)[append]
        self.offsets[rows[append], at] = ends[append]
        self.times[rows[append], at] = t
        self.count[rows[append & ~full]] += 1

    def lags_s(self, committed: np.ndarray, now: float) -> np.ndarray:
        """Per partition (index = partition), seconds behind; NaN where it can't be estimated.

        committed < 0 means no commit. Partitions beyond the table's rows are NaN.
        """
        lags = np.full(len(committed), np.nan)
        k = min(len(committed), len(self.count))
        c, n = np.asarray(committed[:k], dtype=np.int64), self.count[:k]
        rows = np.arange(k)
        known = (c >= 0) & (n > 0)
        last_off = self.offsets[rows, np.maximum(n - 1, 0)]
        at_end = known & (c >= last_off)
        lags[:k][at_end] = 0.0  # LagIsZero
        need = np.flatnonzero(known & ~at_end & (n >= 2))
        if need.size:
            lags[need] = self._interpolate(need, c[need], n[need], now)
        return lags

    def max_lag_s(self, committed: np.ndarray | Mapping[int, int | None], now: float) -> float | None:
        """The group's time lag: its worst partition (kafka_consumergroup_group_max_lag_seconds)."""
        if isinstance(committed, Mapping):
            dense = np.full(len(self.count), -1, dtype=np.int64)
            for p, c in committed.items():
                if 0 <= p < len(dense) and c is not None:
                    dense[p] = c
            committed = dense
        lags = self.lags_s(committed, now)
        return float(np.nanmax(lags)) if lags.size and not np.isnan(lags).all() else None

    def _interpolate(self, rows: np.ndarray, c: np.ndarray, n: np.ndarray, now: float) -> np.ndarray:
        offs, times = self.offsets[rows], self.times[rows]
        first = offs[:, 0]
        # The first pair (a, b) with a.offset <= c <= b.offset and b.offset > a.offset ends at the
        # first point above c when c sits on the oldest point, else at the first point at or above c.
        right = np.where(c == first, (offs <= c[:, None]).sum(axis=1), (offs < c[:, None]).sum(axis=1))
        left = right - 1
        outside = c < first  # no bracketing pair: extrapolate along the oldest and newest points
        left = np.where(outside, 0, left)
        right = np.where(outside, n - 1, right)
        i = np.arange(len(rows))
        lo, ro, lt, rt = offs[i, left], offs[i, right], times[i, left], times[i, right]
        span = ro - lo
        with np.errstate(divide="ignore", invalid="ignore"):
            at = rt - (ro - c) * (rt - lt) / span
        return np.where(span == 0, np.nan, np.maximum(now - at, 0.0))

    def _grow(self, rows: int) -> None:
        extra = rows - len(self.count)
        self.offsets = np.vstack([self.offsets, np.full((extra, self.size), _PAD, dtype=np.int64)])
        self.times = np.vstack([self.times, np.zeros((extra, self.size))])
        self.count = np.concatenate([self.count, np.zeros(extra, dtype=np.int64)])


def _rows_and_values(values: np.ndarray | Mapping[int, int]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(values, Mapping):
        return (np.fromiter(values.keys(), dtype=np.int64, count=len(values)),
                np.fromiter(values.values(), dtype=np.int64, count=len(values)))
    values = np.asarray(values, dtype=np.int64)
    return np.arange(len(values)), values
