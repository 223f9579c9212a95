from __future__ import annotations

from load import burrow
from load.recovery import (RecoveryRules, area, breach_to_scale_out, drain_rate, lag_metrics, peak,
                           sustained_rate, time_to_recover)

# Lag climbs 100/s from t=9 to 1000 at t=19, then drains 200/s to 0 at t=24.
TS = [float(t) for t in range(0, 41)]
LAG = [0.0] * 10 + [100.0 * k for k in range(1, 11)] + [1000.0 - 200 * k for k in range(1, 6)] + [0.0] * 16
READY = [1] * 12 + [3] * 29


def test_peak_and_recovery() -> None:
    assert peak(TS, LAG) == (19.0, 1000.0)
    assert time_to_recover(TS, LAG, after=19.0, threshold=10) == 5.0
    assert drain_rate(TS, LAG, threshold=10) == 200.0
    assert area(TS, LAG) == 0.5 * 10 * 1000 + 0.5 * 5 * 1000  # the rise and fall triangles


def test_recovery_requires_staying_under() -> None:
    lags = [0, 50, 0, 50, 0, 0]
    assert time_to_recover(list(range(6)), lags, after=1, threshold=10) == 3  # the t=2 dip bounced back
    assert time_to_recover(list(range(4)), [0, 50, 60, 70], after=1, threshold=10) is None


def test_breach_to_scale_out() -> None:
    assert breach_to_scale_out(TS, LAG, READY, threshold=50) == 2.0  # breach at t=10, 3 ready at t=12
    assert breach_to_scale_out(TS, LAG, [1] * len(TS), threshold=50) is None


def test_sustained_rate_windows() -> None:
    ts = list(range(30))
    rates = [0] * 10 + [100] * 10 + [0] * 10
    assert sustained_rate(ts, rates, 10) == 100
    assert sustained_rate(ts, rates, 20) == 50


def test_lag_metrics_bundle() -> None:
    m = lag_metrics(TS, LAG, [None] * len(TS), READY, disturbance_end=19.0, rules=RecoveryRules())
    assert m["peak_lag"] == 1000 and m["time_to_peak_s"] == 19.0 and m["time_to_recover_s"] == 5.0
    assert m["replica_seconds"] == 1 * 11 + 2 + 3 * 28 and m["peak_ready"] == 3 and m["peak_time_lag_s"] is None


def test_burrow_statuses() -> None:
    assert burrow.partition_status([5, 6, 7], [3, 0, 2], ready=1) == burrow.OK  # caught up in the window
    assert burrow.partition_status([5, 5, 5], [3, 4, 5], ready=1) == burrow.STALL
    assert burrow.partition_status([5, 5, 5], [3, 4, 5], ready=0) == burrow.STOP
    assert burrow.partition_status([5, 6, 7], [3, 4, 5], ready=1) == burrow.WARN  # progressing, falling behind
    assert burrow.partition_status([5, 6, 7], [5, 4, 5], ready=1) == burrow.OK
    assert burrow.partition_status([7, 5, 6], [1, 3, 2], ready=1) == burrow.REWIND
    assert burrow.partition_status([None, None], [None, None], ready=1) == burrow.OK  # uncommitted: no verdict


def test_burrow_timeline_worst_partition() -> None:
    ts = [0.0, 1.0, 2.0]
    committed = [(1, 9), (2, 9), (3, 9)]
    lags = [(0, 4), (0, 5), (0, 6)]
    tl = burrow.timeline(ts, committed, lags, ready=[1, 1, 1], window=3)
    assert tl == [(2.0, burrow.STALL)]
    assert burrow.changes([(0, "OK"), (1, "OK"), (2, "WARN")]) == [(0, "OK"), (2, "WARN")]
