from __future__ import annotations

import pytest

from load.metrics import BY_SLO_NAME, METRICS
from load.slo import SLO_HELP, Slo, SloError, evaluate, parse_slo

NAMES = ("peak_backlog, backlog_area, recovery, drain_rate, time_lag, time_lag.p99, scale_out, replica_seconds, cold_starts, "
         "sustained, e2e.p50, e2e.p95, e2e.p99, e2e.p99.9, lost, late, misrouted, duplicated, out_of_order")
GRAMMAR = "expected <name><op><number>[unit] with op one of < <= > >= == !=, e.g. 'e2e.p99<2s'"


@pytest.mark.parametrize(("text", "metric", "op", "threshold"), [
    ("e2e.p99<2s", "e2e_p99_ms", "<", 2000.0),
    ("e2e.p99.9 < 250 ms", "e2e_p99.9_ms", "<", 250.0),
    ("e2e.p50<=0.1s", "e2e_p50_ms", "<=", 100.0),
    ("e2e.p95<1m", "e2e_p95_ms", "<", 60_000.0),
    ("recovery<60s", "time_to_recover_s", "<", 60.0),
    ("recovery <= 1.5m", "time_to_recover_s", "<=", 90.0),
    ("time_lag<500ms", "peak_time_lag_s", "<", 0.5),
    ("time_lag.p99<5s", "time_lag_p99_s", "<", 5.0),
    ("scale_out<.25s", "breach_to_scale_out_s", "<", 0.25),
    ("lost==0", "lost", "==", 0.0),
    ("misrouted == 0", "misrouted", "==", 0.0),
    ("late!=3", "late", "!=", 3.0),
    ("sustained>=900", "sustained_out_eps", ">=", 900.0),
    ("drain_rate>120.5", "drain_rate_eps", ">", 120.5),
    ("  peak_backlog<5000  ", "peak_backlog", "<", 5000.0),
    ("backlog_area<12000", "backlog_area", "<", 12000.0),
    ("cold_starts<=3", "cold_starts", "<=", 3.0),
])
def test_parse(text: str, metric: str, op: str, threshold: float) -> None:
    assert parse_slo(text) == Slo(text.strip(), metric, op, threshold)


def test_every_metric_has_a_parsable_slo_name() -> None:
    for name, metric in BY_SLO_NAME.items():
        text = f"{name}<2s" if metric.is_duration else f"{name}<2"
        assert parse_slo(text).metric == metric.key
    assert set(BY_SLO_NAME.values()) == set(METRICS.values())


@pytest.mark.parametrize(("text", "message"), [
    ("", f"empty SLO: {GRAMMAR}"),
    ("   ", f"empty SLO: {GRAMMAR}"),
    ("recovery", f"cannot parse SLO 'recovery': {GRAMMAR}"),
    ("recovery<60s extra", f"cannot parse SLO 'recovery<60s extra': {GRAMMAR}"),
    ("<2s", f"SLO '<2s' has no metric name before '<'; names: {NAMES}"),
    ("p99<2s", f"unknown SLO name 'p99' in 'p99<2s'; names: {NAMES}"),
    ("e2e-p99<2s", f"unknown SLO name 'e2e-p99' in 'e2e-p99<2s'; names: {NAMES}"),
    ("lost=0", "unknown operator '=' in 'lost=0'; operators: < <= > >= == !="),
    ("recovery=<60s", "unknown operator '=<' in 'recovery=<60s'; operators: < <= > >= == !="),
    ("lost==", f"SLO 'lost==' has no threshold number after '=='; {GRAMMAR}"),
    ("lost==-1", f"threshold '-1' in 'lost==-1' is not a non-negative decimal number; {GRAMMAR}"),
    ("lost<1%", f"threshold '1%' in 'lost<1%' is not a non-negative decimal number; {GRAMMAR}"),
    ("recovery<60", "recovery is a duration and needs a unit (ms, s or m): write e.g. 'recovery<60s'"),
    ("e2e.p99<2", "e2e.p99 is a duration and needs a unit (ms, s or m): write e.g. 'e2e.p99<2s'"),
    ("recovery<1h", "unknown unit 'h' in 'recovery<1h'; recovery is a duration: use ms, s or m"),
    ("lost==0s", "lost is in orders and takes a plain number, not 's': write e.g. 'lost==0'"),
    ("cold_starts<1ms", "cold_starts is a count and takes a plain number, not 'ms': write e.g. 'cold_starts<1'"),
    ("sustained>=900eps", "sustained is in ev/s and takes a plain number, not 'eps': write e.g. 'sustained>=900'"),
    ("replica_seconds<300s",
     "replica_seconds is in replica·s and takes a plain number, not 's': write e.g. 'replica_seconds<300'"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SloError) as err:
        parse_slo(text)
    assert str(err.value) == message
    assert "\n" not in str(err.value)
    assert isinstance(err.value, ValueError)


def test_evaluate() -> None:
    slos = [parse_slo(t) for t in ("e2e.p99<2s", "recovery<60s", "lost==0", "sustained>=900", "drain_rate>100",
                                   "scale_out<10s", "misrouted==0", "time_lag<=500ms")]
    headline = {"e2e_p99_ms": 1999.0, "time_to_recover_s": None, "lost": 2, "sustained_out_eps": 900.0,
                "drain_rate_eps": None, "breach_to_scale_out_s": None, "peak_time_lag_s": 0.5}
    got = [(r.slo.text, r.value, r.passed, r.note) for r in evaluate(slos, headline)]
    assert got == [
        ("e2e.p99<2s", 1999.0, True, ""),
        ("recovery<60s", None, False, "never recovered"),
        ("lost==0", 2, False, ""),
        ("sustained>=900", 900.0, True, ""),
        ("drain_rate>100", None, False, "never drained"),
        ("scale_out<10s", None, False, "no breach or no scale-out"),
        ("misrouted==0", None, False, "not measured"),  # absent from the headline
        ("time_lag<=500ms", 0.5, True, ""),
    ]


def test_evaluate_boundaries_and_nan() -> None:
    [strict, loose, nan] = evaluate([parse_slo("e2e.p99<2s"), parse_slo("e2e.p99<=2s"), parse_slo("e2e.p50<1s")],
                                    {"e2e_p99_ms": 2000, "e2e_p50_ms": float("nan")})
    assert (strict.passed, loose.passed) == (False, True)
    assert (nan.passed, nan.value, nan.note) == (False, None, "not measured")


def test_describe_and_help() -> None:
    assert parse_slo("e2e.p99<2s").describe() == "e2e p99 < 2000 ms"
    assert parse_slo("recovery<=1.5m").describe() == "time to recover <= 90 s"
    assert "e2e.p99<2s" in SLO_HELP and "== !=" in SLO_HELP and "out_of_order" in SLO_HELP
