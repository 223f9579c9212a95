from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import pytest

from load.verdict import Value, decide, interleaved_order, spread

INF = math.inf

# ---------------------------------------------------------------- spread


def test_spread_counts_and_range() -> None:
    s = spread([3, None, 1, 2, None])
    assert (s.n, s.missing, s.known) == (5, 2, 3)
    assert (s.median, s.lo, s.hi) == (2.0, 1.0, 3.0)
    assert s.values == (3, None, 1, 2, None)


def test_spread_needs_three_known_values_for_an_interval() -> None:
    two = spread([4, None, 8])
    assert (two.median, two.lo, two.hi, two.ci_lo, two.ci_hi) == (6.0, 4.0, 8.0, None, None)
    none = spread([None, None])
    assert (none.n, none.missing, none.median, none.lo, none.ci_lo) == (2, 2, None, None, None)
    assert spread([]).median is None


@pytest.mark.parametrize("values", [
    [float(v) for v in range(1, 11)],
    [1, 1, 1, 1, 1, 1, 100, 100, 100, 100, 100],  # bimodal, skewed
    [5, 5, 5, 5, 6],
    [0.3, 0.1, 0.2],
    [12.5, 13.0, 12.8, 40.0, 12.9, 13.1],  # one outlier, even count
    [5, INF, INF],  # missing "loses" values as decide() passes them
])
def test_bootstrap_interval_holds_the_median_within_the_range(values: list[float]) -> None:
    s = spread(values, seed=7)
    assert s.ci_lo is not None and s.ci_hi is not None and s.median is not None
    assert s.lo is not None and s.hi is not None
    assert s.lo <= s.ci_lo <= s.median <= s.ci_hi <= s.hi
    assert not math.isnan(s.ci_lo) and not math.isnan(s.ci_hi)


def test_bootstrap_is_seeded_and_narrower_than_the_range_for_ten_runs() -> None:
    values = [float(v) for v in range(1, 11)]
    a, b = spread(values, seed=3), spread(values, seed=3)
    assert (a.ci_lo, a.ci_hi) == (b.ci_lo, b.ci_hi)
    assert a.ci_lo is not None and a.ci_hi is not None
    assert 1.0 < a.ci_lo < a.median == 5.5 < a.ci_hi < 10.0  # P(bootstrap median <= 1) is ~1e-5
    seeds = {(spread(values, seed=s, resamples=200).ci_lo, spread(values, seed=s, resamples=200).ci_hi)
             for s in range(20)}
    assert len(seeds) > 1  # the seed is used


def test_interval_is_widened_to_the_median_when_resamples_are_too_few() -> None:
    for seed in range(5):  # one resample: its median is rarely the sample median
        s = spread([1.0, 2.0, 3.0, 4.0, 50.0], seed=seed, resamples=1)
        assert s.ci_lo is not None and s.ci_hi is not None
        assert s.ci_lo <= 3.0 <= s.ci_hi


def test_spread_rejects_no_resamples() -> None:
    with pytest.raises(ValueError, match="resamples"):
        spread([1, 2, 3], resamples=0)


# ---------------------------------------------------------------- decide

SEPARATED_LOW = [10.0, 11.0, 12.0, 10.5, 11.5]
SEPARATED_HIGH = [20.0, 21.0, 22.0, 20.5, 21.5]
NOISY_A = [10.0, 30.0, 15.0, 25.0, 12.0]
NOISY_B = [11.0, 28.0, 14.0, 26.0, 13.0]


@pytest.mark.parametrize(("metric", "runs", "excluded", "winners", "reason"), [
    # exclusions
    ("e2e_p99_ms", {"knative": [1, 1, 1], "openfaas": SEPARATED_LOW, "native": SEPARATED_HIGH},
     {"knative": "instrument-bound"}, ("openfaas",), "openfaas's 95 % interval lies entirely below native's"),
    ("e2e_p99_ms", {"knative": SEPARATED_LOW, "openfaas": SEPARATED_HIGH},
     {"knative": "instrument-bound", "openfaas": "instrument-bound"}, (), "all backends instrument-bound"),
    ("e2e_p99_ms", {"knative": SEPARATED_LOW, "openfaas": SEPARATED_HIGH},
     {"knative": "instrument-bound", "openfaas": "generator late"}, (), "all backends excluded"),
    ("e2e_p99_ms", {"knative": SEPARATED_LOW, "openfaas": SEPARATED_HIGH},
     {"knative": "instrument-bound"}, (), "fewer than two comparable backends"),
    ("e2e_p99_ms", {"knative": SEPARATED_LOW}, {}, (), "fewer than two comparable backends"),
    # missing values on a "loses" metric (time to recover: lower is better)
    ("time_to_recover_s", {"knative": [30.0], "openfaas": [None]}, {},
     ("knative",), "categorical: knative recovered in every run, openfaas never recovered"),
    ("time_to_recover_s", {"knative": [30.0], "openfaas": [None], "native": [None]}, {},
     ("knative",), "categorical: knative recovered in every run, openfaas and native never recovered"),
    ("time_to_recover_s", {"knative": [30.0, 31.0, 90.0], "openfaas": [None, None]}, {},
     ("knative",), "categorical: knative recovered in every run, openfaas never recovered"),
    ("time_to_recover_s", {"knative": [None], "openfaas": [None]}, {}, (), "no backend recovered"),
    ("time_to_recover_s", {"knative": [30.0], "openfaas": [40.0], "native": [None]}, {},
     (), "1 run: no confidence interval"),
    ("time_to_recover_s", {"knative": [10.0, 11.0, 12.0], "openfaas": [20.0, None, None]}, {},
     ("knative",), "knative's 95 % interval lies entirely below openfaas's"),
    ("time_to_recover_s", {"knative": [10.0, 11.0, 12.0], "openfaas": [5.0, None, 6.0]}, {},
     (), "intervals overlap"),  # openfaas is faster when it recovers, but once it did not
    # missing values on a "loses" metric where higher is better (drain rate): None is -inf
    ("drain_rate_eps", {"knative": [None], "openfaas": [150.0]}, {},
     ("openfaas",), "categorical: openfaas drained in every run, knative never drained"),
    ("drain_rate_eps", {"knative": [300.0, None, 310.0], "openfaas": [150.0, 160.0, 155.0]}, {},
     (), "intervals overlap"),
    # missing values on a "skip" metric are dropped
    ("breach_to_scale_out_s", {"knative": [1.0, None, 1.2, 1.1], "openfaas": [5.0, 6.0, 7.0]}, {},
     ("knative",), "knative's 95 % interval lies entirely below openfaas's"),
    ("breach_to_scale_out_s", {"knative": [None, None], "openfaas": [5.0, 6.0]}, {},
     (), "fewer than two comparable backends"),
    ("breach_to_scale_out_s", {"knative": [None, None, 1.0], "openfaas": [5.0, 6.0, 7.0]}, {},
     (), "1 measured run for knative: no confidence interval"),
    ("breach_to_scale_out_s", {"knative": [1.0, 2.0, None], "openfaas": [5.0, 6.0, 7.0]}, {},
     ("knative",), "knative's interval lies entirely below openfaas's"),  # 2 known vs 3 known
    # one run: no confidence interval, however far apart
    ("e2e_p99_ms", {"knative": [10.0], "openfaas": [10_000.0]}, {}, (), "1 run: no confidence interval"),
    # two runs: min-max ranges
    ("e2e_p99_ms", {"knative": [10.0, 12.0], "openfaas": [13.0, 15.0]}, {},
     ("knative",), "knative's range lies entirely below openfaas's"),
    ("e2e_p99_ms", {"knative": [10.0, 13.0], "openfaas": [13.0, 15.0]}, {}, (), "intervals overlap"),  # touching
    ("e2e_p99_ms", {"knative": [10.0, 16.0], "openfaas": [13.0, 15.0]}, {}, (), "intervals overlap"),
    # three or more runs: bootstrap intervals of the median
    ("e2e_p99_ms", {"knative": SEPARATED_HIGH, "openfaas": SEPARATED_LOW}, {},
     ("openfaas",), "openfaas's 95 % interval lies entirely below knative's"),
    ("e2e_p99_ms", {"knative": NOISY_A, "openfaas": NOISY_B}, {}, (), "intervals overlap"),
    ("e2e_p99_ms", {"knative": [1.0, 2.0, 3.0], "openfaas": [10.0, 11.0, 12.0], "native": [2.5, 3.5, 4.5]}, {},
     (), "intervals overlap"),  # knative beats openfaas but not native
    ("e2e_p99_ms", {"knative": [1.0, 2.0, 3.0], "openfaas": [10.0, 11.0, 12.0], "native": [5.0, 6.0, 7.0]}, {},
     ("knative",), "knative's 95 % interval lies entirely below those of openfaas and native"),
    # higher is better
    ("sustained_out_eps", {"knative": [700.0, 710.0, 705.0], "openfaas": [900.0, 910.0, 905.0]}, {},
     ("openfaas",), "openfaas's 95 % interval lies entirely above knative's"),
    ("sustained_out_eps", {"knative": [700.0, 720.0], "openfaas": [690.0, 705.0]}, {}, (), "intervals overlap"),
    # ties
    ("lost", {"knative": [0, 0, 0], "openfaas": [0, 0, 0]}, {}, (), "tie: every run of every backend measured the same"),
    ("lost", {"knative": [0, 0], "openfaas": [0, 0]}, {}, (), "tie: every run of every backend measured the same"),
    ("lost", {"knative": [0], "openfaas": [0]}, {}, (), "1 run: no confidence interval"),
    ("lost", {"knative": [0, 0, 0], "openfaas": [3, 4, 5]}, {},
     ("knative",), "knative's 95 % interval lies entirely below openfaas's"),
])
def test_decide(metric: str, runs: Mapping[str, Sequence[Value]], excluded: Mapping[str, str],
                winners: tuple[str, ...], reason: str) -> None:
    d = decide(metric, runs, excluded)
    assert (d.metric, d.winners, d.reason) == (metric, winners, reason)
    assert set(d.spreads) == set(runs)  # excluded backends are still shown
    assert d.excluded == dict(excluded)


def test_decide_reports_raw_spreads_and_compared_intervals() -> None:
    d = decide("time_to_recover_s", {"knative": [10.0, 11.0, 12.0], "openfaas": [20.0, None, None]})
    assert d.spreads["openfaas"].missing == 2 and d.spreads["openfaas"].median == 20.0
    assert d.intervals["openfaas"] == (20.0, INF)
    assert d.intervals["knative"][1] < 20.0


def test_decide_is_seeded() -> None:
    runs = {"knative": [10.0, 14.0, 11.0, 19.0, 12.0, 13.0], "openfaas": [16.0, 18.0, 17.0, 25.0, 17.5, 16.5]}
    assert decide("e2e_p95_ms", runs, seed=5) == decide("e2e_p95_ms", runs, seed=5)


def test_decide_rejects_unknown_metric() -> None:
    with pytest.raises(KeyError):
        decide("p99", {"knative": [1.0, 2.0], "openfaas": [3.0, 4.0]})


# ---------------------------------------------------------------- interleaved_order

BACKENDS = ["knative", "openfaas", "native"]


@pytest.mark.parametrize("repeats", [1, 3, 4, 7])
def test_interleaved_order_runs_every_backend_once_per_round(repeats: int) -> None:
    order = interleaved_order(BACKENDS, repeats, seed=11)
    assert Counter(order) == Counter((r, b) for r in range(repeats) for b in BACKENDS)
    assert [r for r, _ in order] == sorted(r for r, _ in order)  # rounds run one after the other


def test_interleaved_order_rotates_who_goes_first() -> None:
    for seed in range(10):
        order = interleaved_order(BACKENDS, 6, seed)
        firsts = Counter(order[i][1] for i in range(0, len(order), len(BACKENDS)))
        assert firsts == Counter({b: 2 for b in BACKENDS})


def test_interleaved_order_is_seeded() -> None:
    assert interleaved_order(BACKENDS, 5, seed=1) == interleaved_order(BACKENDS, 5, seed=1)
    assert len({tuple(interleaved_order(BACKENDS, 5, seed)) for seed in range(10)}) > 1


def test_interleaved_order_edges() -> None:
    assert interleaved_order(BACKENDS, 0, seed=0) == []
    assert interleaved_order([], 3, seed=0) == []
    assert interleaved_order(["native"], 2, seed=0) == [(0, "native"), (1, "native")]
    with pytest.raises(ValueError, match="repeats"):
        interleaved_order(BACKENDS, -1, seed=0)
    with pytest.raises(ValueError, match="distinct"):
        interleaved_order(["knative", "knative"], 2, seed=0)
