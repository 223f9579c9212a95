"""Time lag estimated from offsets, as kafka-lag-exporter does it (benchmarks.md §3.3).

Per partition, a sliding table of (log-end offset, time) points; a group's committed offset is
placed on the line through the two points around it, and the lag is now minus that time.
It is the cross-check: the measured time lag comes from intended send times at the sink.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class PartitionTimeline:
    size: int = 60  # lookup-table.memory.size default (benchmarks.md §3.3)
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


@dataclass
class TopicTimeline:
    partitions: dict[int, PartitionTimeline] = field(default_factory=dict)

    def add(self, log_ends: dict[int, int], t: float) -> None:
        for p, off in log_ends.items():
            self.partitions.setdefault(p, PartitionTimeline()).add(off, t)

    def max_lag_s(self, committed: dict[int, int | None], now: float) -> float | None:
        """The group's time lag: its worst partition (kafka_consumergroup_group_max_lag_seconds)."""
        lags = [lag for p, c in committed.items() if p in self.partitions
                and (lag := self.partitions[p].lag_s(c, now)) is not None]
        return max(lags) if lags else None
