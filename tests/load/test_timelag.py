from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_topic_table_rolls_over_like_the_partition_table() -> None:
    topic, one = TopicTimeline(size=3), PartitionTimeline(size=3)
    for t, off in enumerate([0, 10, 10, 10, 20, 30, 40]):
        topic.add(np.array([off]), float(t))
        one.add(off, float(t))
    assert list(zip(topic.offsets[0, :topic.count[0]].tolist(), topic.times[0, :topic.count[0]].tolist())) \
        == list(one.points) == [(20, 4.0), (30, 5.0), (40, 6.0)]
    assert topic.lags_s(np.array([25]), now=6.0)[0] == one.lag_s(25, now=6.0) == 1.5
    assert topic.lags_s(np.array([10]), now=6.0)[0] == one.lag_s(10, now=6.0)  # extrapolated below the table


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.integers(2, 6),
       st.lists(st.tuples(st.sampled_from([-0.5, 0.0, 0.5, 1.0]), st.lists(st.integers(-2, 12), min_size=4, max_size=4),
                          st.lists(st.integers(-1, 80), min_size=4, max_size=4), st.floats(0, 5)), min_size=1, max_size=25))
def test_topic_timeline_equals_the_partition_rule(partitions: int, size: int, steps: list) -> None:
    """Every partition of the array table gives exactly PartitionTimeline's points and estimate."""
    topic, ref = TopicTimeline(size=size), [PartitionTimeline(size=size) for _ in range(partitions)]
    offsets, t = [0] * partitions, 0.0
    for dt, moves, commits, ahead in steps:
        t += dt
        offsets = [max(o + m, 0) for o, m in zip(offsets, moves)]
        topic.add(np.array(offsets), t)
        for p in range(partitions):
            ref[p].add(offsets[p], t)
        committed = np.array(commits[:partitions])
        got = topic.lags_s(committed, t + ahead)
        for p in range(partitions):
            n = int(topic.count[p])
            assert list(zip(topic.offsets[p, :n].tolist(), topic.times[p, :n].tolist())) == list(ref[p].points)
            want = ref[p].lag_s(None if committed[p] < 0 else int(committed[p]), t + ahead)
            assert (None if np.isnan(got[p]) else float(got[p])) == want
