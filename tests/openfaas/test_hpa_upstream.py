"""The HPA policy against kubernetes' own test tables (pkg/controller/podautoscaler): each case carries the
upstream test and case name. Times are seconds before `NOW`; metric values are milli-quantities as upstream."""

from __future__ import annotations

import math

import pytest

from pipeline.autoscale.hpa import (
    MAX_INT32,
    HorizontalPodAutoscaler,
    HpaBehavior,
    Recommendation,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
    Tolerances,
    changed_within,
    external_per_pod_replicas,
    scale_down_limit,
    scale_up_limit,
)

NOW = 10_000.0
MAX_INT64 = 2**63 - 1
DEFAULT = Tolerances(0.1, 0.1)  # defaultTestingTolerance


# replica_calculator_test.go TestReplicaCalcExternalPerPodMetric: (name, status replicas, usage, per-pod target,
# tolerances, expected replicas)
@pytest.mark.parametrize(("name", "current", "usage", "target", "tolerances", "expected"), [
    ("replica count overflow saturates to MaxInt32", 1, MAX_INT64, 1, DEFAULT, MAX_INT32),
    ("usage overflow with huge target leaves replicas unchanged", 1, MAX_INT64, MAX_INT64, DEFAULT, 1),
    ("statusReplicas zero does not overflow usage", 0, 20000, 5000, DEFAULT, 4),
    ("statusReplicas zero and metric zero does not underflow", 0, 0, 5000, DEFAULT, 0),
    ("scale up", 3, 8600, 2150, DEFAULT, 4),
    ("scale down", 5, 8600, 2867, DEFAULT, 3),
    ("within default tolerance", 3, 8600, 2900, DEFAULT, 3),
    ("outside configurable 1% tolerance", 3, 8600, 2800, Tolerances(0.1, 0.01), 4),
])
def test_replica_calc_external_per_pod_metric(name: str, current: int, usage: int, target: int,
                                              tolerances: Tolerances, expected: int) -> None:
    assert external_per_pod_replicas(usage, target, current, tolerances) == expected, name


# replica_calculator_test.go TestReplicaCalcResourceTolerance: the per-direction bounds, on the usage ratio
# (0.9, 1.0, 1.1 requests; utilization / 100 %).
@pytest.mark.parametrize(("name", "tolerances", "ratio", "within"), [
    ("within default tolerance", DEFAULT, 1.02, True),
    ("outside 0% tolerance", Tolerances(0.0, 0.0), 1.01, False),
    ("within 200% scale-up tolerance", Tolerances(0.1, 2.0), 1.90, True),
    ("outside 8% scale-up tolerance (superfluous scale-down tolerance)", Tolerances(2.0, 0.08), 1.09, False),
    ("within 36% scale-down tolerance", Tolerances(0.36, 0.1), 0.65, True),
    ("outside 34% scale-down tolerance", Tolerances(0.34, 0.1), 0.65, False),
])
def test_replica_calc_resource_tolerance(name: str, tolerances: Tolerances, ratio: float, within: bool) -> None:
    assert tolerances.within(ratio) is within, name


def test_tolerances_come_from_the_behavior_per_direction() -> None:
    # horizontal.go tolerancesForHpa: the behavior's values, each falling back to the controller's 0.1.
    b = HpaBehavior.defaulted(scale_up_tolerance=0.01)
    assert HorizontalPodAutoscaler(behavior=b).tolerances == Tolerances(0.1, 0.01)
    assert HorizontalPodAutoscaler().tolerances == DEFAULT


# horizontal_test.go TestConvertDesiredReplicasWithRules: (annotation, current, desired, min, max, expected)
@pytest.mark.parametrize(("name", "current", "desired", "low", "high", "expected"), [
    ("prenormalized desired replicas within range", 5, 7, 3, 8, 7),
    ("prenormalized desired replicas < minReplicas", 3, 1, 2, 8, 2),
    ("prenormalized desired zeroed replicas within range", 1, 0, 0, 10, 0),
    ("maxReplicas is the limit because maxReplicas < scaleUpLimit", 20, 1000, 1, 10, 10),
    ("scaleUpLimit is the limit because scaleUpLimit < maxReplicas", 3, 1000, 1, 2000, 6),  # calculateScaleUpLimit(3)
])
def test_convert_desired_replicas_with_rules(name: str, current: int, desired: int, low: int, high: int,
                                             expected: int) -> None:
    # minReplicas 0 needs the HPAScaleToZero gate here; upstream's unit passes the 0 straight through.
    hpa = HorizontalPodAutoscaler(min_replicas=low, max_replicas=high, scale_to_zero=low == 0)
    assert hpa.convert_with_rules(current, desired) == expected, name


def test_calculate_scale_up_limit_with_scaling_rules() -> None:
    # horizontal_test.go TestCalculateScaleUpLimitWithScalingRules: Min of Pods 2/60 s and Percent 50/60 s from 1.
    rules = ScalingRules((ScalingPolicy("Pods", 2, 60), ScalingPolicy("Percent", 50, 60)), "Min", 300)
    assert scale_up_limit(1, [], [], rules, NOW) == 2


def test_calculate_scale_down_limit_with_behaviors() -> None:
    # horizontal_test.go TestCalculateScaleDownLimitWithBehaviors: Min of Pods 2/60 s and Percent 50/60 s from 5.
    rules = ScalingRules((ScalingPolicy("Pods", 2, 60), ScalingPolicy("Percent", 50, 60)), "Min", 300)
    assert scale_down_limit(5, [], [], rules, NOW) == 3


def rules(pods: int, pods_period: int, percent: int, percent_period: int, stabilization: int) -> ScalingRules:
    """horizontal_test.go generateScalingRules: selectPolicy Max, the non-zero policies."""
    policies = []
    if pods:
        policies.append(ScalingPolicy("Pods", pods, pods_period))
    if percent:
        policies.append(ScalingPolicy("Percent", percent, percent_period))
    return ScalingRules(tuple(policies), "Max", stabilization)


def uniform(raw: list[int], period_s: int) -> list[ScaleEvent]:
    """horizontal_test.go generateEventsUniformDistribution: each event in the middle of its segment."""
    seg = period_s / len(raw)
    return [ScaleEvent(change, NOW - int(period_s - seg * (i + 1) + seg / 2)) for i, change in enumerate(raw)]


DEFAULT_UP = HpaBehavior.defaulted().scale_up  # GenerateHPAScaleUpRules(nil)
DEFAULT_DOWN = HpaBehavior.defaulted().scale_down  # GenerateHPAScaleDownRules(nil)

# horizontal_test.go TestScalingWithRules: (name, up events, down events, min, max, up rules, down rules,
# current, prenormalized desired, expected)
SCALING_WITH_RULES = [
    ("prenormalized desired replicas within range", [], [], 3, 8, None, None, 5, 7, 7),
    ("prenormalized desired replicas < minReplicas", [], [], 2, 8, None, None, 3, 1, 2),
    ("prenormalized desired replicas within range when minReplicas is 0", [], [], 0, 10, None, None, 1, 0, 0),
    ("maxReplicas is the limit because maxReplicas < scaleUpLimit", [], [], 1, 10, None, None, 20, 1000, 10),
    ("desired replica count is more than the maximum replica count", [], [], 100, 150, None, None, 100, 1000, 150),
    ("scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies", [], [], 1, 2000,
     rules(0, 0, 1, 60, 0), None, 3, 1000, 4),
    ("scaleUp with default behavior", [], [], 1, 1000, None, None, 10, 50, 20),
    ("scaleUp with pods policy larger than percent policy", [], [], 1, 1000, rules(100, 60, 100, 60, 0), None,
     10, 500, 110),
    ("scaleUp with percent policy larger than pods policy", [], [], 1, 1000, rules(2, 60, 100, 60, 0), None,
     10, 500, 20),
    ("scaleUp with spec MaxReplicas limitation with large pod policy", [], [], 1, 1000, rules(100, 60, 0, 0, 0),
     None, 10, 50, 50),
    ("scaleUp with spec MaxReplicas limitation with large percent policy", [], [], 1, 1000,
     rules(10000, 60, 0, 0, 0), None, 10, 50, 50),
    ("scaleUp with pod policy limitation", [], [], 1, 1000, rules(30, 60, 0, 0, 0), None, 10, 50, 40),
    ("scaleUp with percent policy limitation", [], [], 1, 1000, rules(0, 0, 200, 60, 0), None, 10, 50, 30),
    ("scaleDown with percent policy larger than pod policy", [], [], 1, 1000, None, rules(20, 60, 1, 60, 300),
     100, 2, 80),
    ("scaleDown with pod policy larger than percent policy", [], [], 1, 1000, None, rules(2, 60, 1, 60, 300),
     100, 2, 98),
    ("scaleDown with spec MinReplicas limitation with large pod policy", [], [], 1, 1000, None,
     rules(100, 60, 0, 0, 300), 10, 0, 1),
    ("scaleDown with spec MinReplicas limitation with large percent policy", [], [], 5, 1000, None,
     rules(0, 0, 100, 60, 300), 10, 2, 5),
    ("scaleDown with pod policy limitation", [], [], 1, 1000, None, rules(5, 60, 0, 0, 300), 10, 2, 5),
    ("scaleDown with percent policy limitation", [], [], 1, 1000, None, rules(0, 0, 50, 60, 300), 10, 5, 5),
    ("scaleUp with spec MaxReplicas limitation with large pod policy and events", uniform([1, 5, 9], 120), [],
     1, 200, rules(300, 60, 0, 0, 0), None, 100, 500, 200),
    ("scaleUp with spec MaxReplicas limitation with large percent policy and events", uniform([1, 5, 9], 120), [],
     1, 200, rules(0, 0, 10000, 60, 0), None, 100, 500, 200),
    ("scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events",
     uniform([1, 5, 9], 120), [], 1, 1000, rules(5, 120, 0, 0, 0), None, 100, 500, 100),
    ("scaleUp with pod policy and previous scale up events", uniform([1, 5, 9], 120), [], 1, 1000,
     rules(150, 120, 0, 0, 0), None, 100, 500, 235),
    ("scaleUp with percent policy and previous scale up events", uniform([1, 5, 9], 120), [], 1, 1000,
     rules(0, 0, 200, 120, 0), None, 100, 500, 255),
    ("scaleUp with percent policy and previous scale up and down events", uniform([4], 120), uniform([2], 120),
     1, 1000, rules(0, 0, 300, 300, 0), None, 6, 24, 16),
    ("scaleDown with default policy and previous events", [], uniform([1, 5, 9], 120), 1, 1000, None, None,
     10, 5, 5),
    ("scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events", [],
     uniform([1, 5, 9], 120), 1, 1000, None, rules(115, 120, 0, 0, 300), 100, 0, 1),
    ("scaleDown with spec MinReplicas limitation with large pod policy and previous events", [],
     uniform([1, 5, 9], 120), 5, 1000, None, rules(130, 120, 0, 0, 300), 100, 0, 5),
    ("scaleDown with spec MinReplicas limitation with large percent policy and previous events", [],
     uniform([1, 5, 9], 120), 5, 1000, None, rules(0, 0, 100, 120, 300), 100, 2, 5),
    ("scaleDown with pod policy limitation and previous events", [], uniform([1, 5, 9], 120), 1, 1000, None,
     rules(5, 120, 0, 0, 300), 100, 2, 100),
    ("scaleDown with percent policy limitation and previous events", [], uniform([2, 4, 6], 120), 1, 1000, None,
     rules(0, 0, 50, 120, 300), 100, 0, 56),
    ("scaleDown with percent policy and previous scale up and down events", uniform([2], 120), uniform([4], 120),
     1, 1000, None, rules(0, 0, 50, 180, 0), 10, 1, 6),
    ("scaleDown with previous events preventing further scale down", [], uniform([10, 10, 10], 120), 1, 1000,
     None, rules(0, 0, 10, 120, 300), 100, 0, 100),
    ("scaleDown with with previous events still allowing more scale down", [], uniform([10, 10, 10], 120), 1,
     1000, None, rules(0, 0, 1000, 120, 300), 10, 5, 5),
    ("check 'outdated' flag for events for one behavior for up", uniform([8, 12, 9, 11], 120), [], 1, 1000,
     rules(1000, 60, 0, 0, 0), None, 100, 200, 200),
    ("check that events were not marked 'outdated' for two different policies in the behavior for up",
     uniform([8, 12, 9, 11], 120), [], 1, 1000, rules(1000, 120, 100, 60, 0), None, 100, 200, 200),
    ("check that events were marked 'outdated' for two different policies in the behavior for up",
     uniform([8, 12, 9, 11], 120), [], 1, 1000, rules(1000, 30, 100, 60, 0), None, 100, 200, 200),
    ("check 'outdated' flag for events for one behavior for down", [], uniform([8, 12, 9, 11], 120), 1, 1000,
     None, rules(1000, 60, 0, 0, 300), 100, 5, 5),
    ("check that events were not marked 'outdated' for two different policies in the behavior for down", [],
     uniform([8, 12, 9, 11], 120), 1, 1000, None, rules(1000, 120, 100, 60, 300), 100, 5, 5),
    ("check that events were marked 'outdated' for two different policies in the behavior for down", [],
     uniform([8, 12, 9, 11], 120), 1, 1000, None, rules(1000, 30, 100, 60, 300), 100, 5, 5),
]


@pytest.mark.parametrize(("name", "up_events", "down_events", "low", "high", "up", "down", "current", "desired",
                          "expected"), SCALING_WITH_RULES, ids=[c[0] for c in SCALING_WITH_RULES])
def test_scaling_with_rules(name: str, up_events: list[ScaleEvent], down_events: list[ScaleEvent], low: int,
                            high: int, up: ScalingRules | None, down: ScalingRules | None, current: int,
                            desired: int, expected: int) -> None:
    behavior = HpaBehavior(up or DEFAULT_UP, down or DEFAULT_DOWN)
    hpa = HorizontalPodAutoscaler(min_replicas=low, max_replicas=high, behavior=behavior, scale_to_zero=low == 0,
                                  up_events=list(up_events), down_events=list(down_events))
    assert hpa.rate_limited(NOW, desired, current) == expected


# horizontal_test.go TestStoreScaleEvents: (name, previous events as (change, seconds ago), rules, change within
# the last 60 s before storing, changes still counting after storing 5)
@pytest.mark.parametrize(("name", "previous", "scaling_rules", "expected_change", "counting_after"), [
    ("empty entries with default behavior", [], None, 0, []),
    ("empty entries with two-policy-behavior", [], rules(10, 60, 100, 60, 0), 0, [5]),
    ("one outdated entry to be kept untouched without behavior", [(7, 61)], None, 0, [7]),
    ("one outdated entry to be replaced with behavior", [(7, 61)], rules(10, 60, 100, 60, 0), 0, [5]),
    ("one actual entry to be not touched with behavior", [(7, 58)], rules(10, 60, 100, 60, 0), 7, [7, 5]),
    ("two entries, one of them to be replaced", [(7, 61), (6, 59)], rules(10, 60, 0, 0, 0), 6, [6, 5]),
    ("replace one entry, use policies with different periods", [(8, 29), (6, 59), (7, 61), (9, 61)],
     rules(10, 60, 100, 30, 0), 14, [8, 6, 5]),
    ("two entries, both actual", [(7, 58), (6, 59)], rules(10, 120, 100, 30, 0), 13, [7, 6, 5]),
])
def test_store_scale_events(name: str, previous: list[tuple[int, int]], scaling_rules: ScalingRules | None,
                            expected_change: int, counting_after: list[int]) -> None:
    events = [ScaleEvent(change, NOW - ago) for change, ago in previous]
    assert changed_within(60, events, NOW) == expected_change
    for direction in ("up", "down"):
        behavior = None if scaling_rules is None else HpaBehavior(scaling_rules, scaling_rules)
        hpa = HorizontalPodAutoscaler(behavior=behavior, up_events=list(events), down_events=list(events))
        hpa.store_event(NOW, 10, 15 if direction == "up" else 5)
        kept = hpa.up_events if direction == "up" else hpa.down_events
        # Upstream keeps expired events flagged `outdated` (and reuses one slot); here they are dropped.
        longest = 0.0 if scaling_rules is None else scaling_rules.longest_period_s
        counting = [e.change for e in kept if scaling_rules is None or e.at >= NOW - longest]
        assert sorted(counting) == sorted(counting_after), (name, direction)


# horizontal_test.go TestNormalizeDesiredReplicas (nil behavior, 5-minute window): (name, recommendations as
# (replicas, seconds ago), prenormalized, stabilized, log length)
@pytest.mark.parametrize(("name", "recs", "desired", "stabilized", "log_length"), [
    ("empty log", [], 5, 5, 1),
    ("stabilize", [(4, 120), (5, 60)], 3, 5, 3),
    ("no stabilize", [(1, 120), (2, 60)], 3, 3, 3),
    ("no stabilize - old recommendations", [(10, 600), (9, 540)], 3, 3, 2),
    ("stabilize - old recommendations", [(10, 600), (4, 60), (5, 120), (9, 540)], 3, 5, 4),
])
def test_normalize_desired_replicas(name: str, recs: list[tuple[int, int]], desired: int, stabilized: int,
                                    log_length: int) -> None:
    hpa = HorizontalPodAutoscaler(recommendations=[Recommendation(r, NOW - ago) for r, ago in recs])
    assert hpa.stabilize(NOW, desired) == stabilized, name
    assert len(hpa.recommendations) == log_length, name


# horizontal_test.go TestNormalizeDesiredReplicasWithBehavior: (name, recommendations, current, prenormalized,
# stabilized, stored recommendations or None, up window, down window)
@pytest.mark.parametrize(("name", "recs", "current", "desired", "stabilized", "stored", "up_s", "down_s"), [
    ("empty recommendations for scaling down", [], 100, 5, 5, [5], 0, 0),
    ("simple scale down stabilization", [(4, 120), (5, 60)], 100, 3, 5, [4, 5, 3], 0, 180),
    ("simple scale up stabilization", [(4, 120), (5, 60)], 1, 7, 4, [4, 5, 7], 300, 0),
    ("no scale down stabilization", [(1, 120), (2, 60)], 100, 3, 3, [1, 2, 3], 300, 0),
    ("no scale up stabilization", [(4, 120), (5, 60)], 1, 3, 3, [4, 5, 3], 0, 300),
    ("no scale down stabilization, reuse recommendation element", [(10, 600), (9, 540)], 100, 3, 3, [10, 3], 0, 0),
    ("no scale up stabilization, reuse recommendation element", [(10, 600), (9, 540)], 1, 100, 100, [10, 100], 0, 0),
    ("scale down stabilization, reuse one of obsolete recommendation element",
     [(10, 600), (4, 60), (5, 120), (9, 540)], 100, 3, 5, [10, 4, 5, 3], 0, 180),
    ("scale up stabilization, reuse one of obsolete recommendation element",
     [(10, 6000), (6, 60), (5, 120), (9, 180)], 1, 100, 5, [100, 6, 5, 9], 300, 0),
    ("scale up and down stabilization, do not scale up when prenormalized rec goes down",
     [(2, 6000), (3, 180)], 2, 1, 2, None, 300, 300),
    ("scale up and down stabilization, do not scale down when prenormalized rec goes up",
     [(2, 6000), (1, 180)], 2, 3, 2, None, 300, 300),
])
def test_normalize_desired_replicas_with_behavior(name: str, recs: list[tuple[int, int]], current: int,
                                                  desired: int, stabilized: int, stored: list[int] | None,
                                                  up_s: int, down_s: int) -> None:
    behavior = HpaBehavior(ScalingRules((), "Max", up_s), ScalingRules((), "Max", down_s))
    hpa = HorizontalPodAutoscaler(behavior=behavior, recommendations=[Recommendation(r, NOW - a) for r, a in recs])
    assert hpa.stabilize_with_behavior(NOW, desired, current) == stabilized, name
    if stored is not None:
        assert [r.replicas for r in hpa.recommendations] == stored, name


# horizontal_test.go TestScaleRCImmediately: out-of-range counts are corrected without reading the metric.
@pytest.mark.parametrize(("name", "low", "high", "current", "expected"), [
    ("scale up to min when below min replicas", 2, 6, 1, 2),
    ("scale down to max when above max replicas", 2, 5, 6, 5),
])
def test_scale_rc_immediately(name: str, low: int, high: int, current: int, expected: int) -> None:
    hpa = HorizontalPodAutoscaler(min_replicas=low, max_replicas=high)
    assert hpa.sync(NOW, metric=math.nan, target=1, current=current) == expected, name


def test_zero_replicas_disable_scaling_unless_the_hpa_scaled_to_zero_itself() -> None:
    # horizontal.go reconcileAutoscaler: at 0 replicas with minReplicas ≥ 1 (or scaled to 0 by someone else,
    # KEDA here) the HPA is ScalingDisabled; with the HPAScaleToZero gate and minReplicas 0 it scales to 0 itself
    # and, its ScaledToZero condition set, back up from the external metric.
    assert HorizontalPodAutoscaler(min_replicas=1).sync(NOW, 1000, 10, 0) == 0
    gated = HorizontalPodAutoscaler(min_replicas=0, max_replicas=10, downscale_stabilization_s=0, scale_to_zero=True)
    assert gated.sync(NOW, 1000, 10, 0) == 0  # not scaled to zero by the HPA: still disabled
    assert gated.sync(NOW + 15, 0, 10, 3) == 0
    assert gated.scaled_to_zero
    assert gated.sync(NOW + 30, 70, 10, 0) == 4  # ceil(70 / 10) = 7, scale-up limit max(2 × 0, 4) = 4
    assert not gated.scaled_to_zero
