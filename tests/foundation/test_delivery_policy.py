"""Offset tracking and retry decisions: the pure parts of at-least-once delivery."""

from __future__ import annotations

import pytest

from pipeline.delivery import OffsetTracker, RetryPolicy
from pipeline.delivery.retry import CONNECTOR_RETRYABLE
from pipeline.topology import Delivery


def test_commit_position_never_passes_an_unfinished_record() -> None:
    t = OffsetTracker()
    for off in (10, 11, 12, 13):
        t.track(off)
    assert t.committable == 10
    t.done(12)
    t.done(11)
    assert t.committable == 10  # 10 still in flight
    t.done(10)
    assert t.committable == 13  # 10..12 handled
    t.done(13)
    assert t.committable == 14 and t.in_flight == 0


def test_tracking_out_of_order_is_a_bug() -> None:
    t = OffsetTracker()
    t.track(5)
    with pytest.raises(ValueError):
        t.track(5)


def test_knative_backoff_doubles_from_twice_the_delay() -> None:
    # knative.md §1.6 worked example: backoffDelay 0.3 s → 0.6, 1.2, 2.4 ... 307.2 s for 10 retries.
    p = RetryPolicy(10, "exponential", 0.3)
    assert [p.delay(n) for n in (1, 2, 3)] == pytest.approx([0.6, 1.2, 2.4])
    assert p.delay(10) == pytest.approx(307.2)
    assert sum(p.delay(n) for n in range(1, 11)) == pytest.approx(613.8)
    assert RetryPolicy(3, "linear", 0.2).delay(3) == pytest.approx(0.6)


@pytest.mark.parametrize(("status", "knative", "connector"), [
    (None, True, True), (500, True, True), (503, True, True), (404, True, False), (408, True, False),
    (409, True, False), (429, True, True), (400, False, False), (422, False, False), (413, False, False),
])
def test_which_statuses_are_retried(status: int | None, knative: bool, connector: bool) -> None:
    d = Delivery(retry=2)
    assert RetryPolicy.from_delivery(d).should_retry(status, 1) is knative
    assert RetryPolicy.from_delivery(d, CONNECTOR_RETRYABLE).should_retry(status, 1) is connector


def test_retries_stop_after_the_count() -> None:
    p = RetryPolicy(2)
    assert p.should_retry(500, 1) and p.should_retry(500, 2) and not p.should_retry(500, 3)
    assert not RetryPolicy(0).should_retry(500, 1)
