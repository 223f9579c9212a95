from __future__ import annotations

from load.timelag import PartitionTimeline, TopicTimeline


def test_interpolates_when_the_log_end_passed_the_commit() -> None:
    tl = PartitionTimeline()
    tl.add(0, 0.0)
    tl.add(100, 10.0)
    tl.add(300, 20.0)
    assert tl.lag_s(50, now=20.0) == 15.0  # the log end was at 50 at t=5
    assert tl.lag_s(200, now=21.0) == 6.0  # at 200 at t=15
    assert tl.lag_s(300, now=25.0) == 0.0  # at the log end: LagIsZero
    assert tl.lag_s(None, now=25.0) is None  # no commit: no estimate


def test_too_few_points_and_rejected_points() -> None:
    tl = PartitionTimeline()
    tl.add(10, 1.0)
    assert tl.lag_s(5, now=2.0) is None  # TooFewPoints
    tl.add(5, 2.0)  # NonMonotonic: ignored
    tl.add(20, 1.0)  # OutOfOrder: ignored
    assert list(tl.points) == [(10, 1.0)]


def test_flat_runs_are_compressed() -> None:
    tl = PartitionTimeline()
    for t in range(5):
        tl.add(100, float(t))
    assert list(tl.points) == [(100, 0.0), (100, 4.0)]


def test_group_lag_is_the_worst_partition() -> None:
    topic = TopicTimeline()
    topic.add({0: 0, 1: 0}, 0.0)
    topic.add({0: 100, 1: 100}, 10.0)
    assert topic.max_lag_s({0: 100, 1: 20, 2: 5}, now=10.0) == 8.0
