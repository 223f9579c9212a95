"""The KPA policy against knative/serving's own test tables: each case carries the upstream test and case
name. kpa/scaler_test.go runs with its defaultConfig: stable window 5 min, grace period 60 s, progress
deadline 121 s, TBC 200; times are seconds before `NOW`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.autoscale.kpa import (
    ACTIVATION_TIMEOUT_BUFFER_S,
    SCALE_UNKNOWN,
    Activity,
    KpaDecider,
    KpaSettings,
    PaStatus,
    PodAutoscaler,
    scale,
)

NOW = 10_000.0
STABLE_WINDOW, PA_STABLE_WINDOW, GRACE, PROGRESS_DEADLINE = 300.0, 45.0, 60.0, 121.0
ACTIVATION_TIMEOUT = PROGRESS_DEADLINE + ACTIVATION_TIMEOUT_BUFFER_S
CONFIG = KpaSettings(window_s=STABLE_WINDOW, scale_to_zero_grace_period_s=GRACE, progress_deadline_s=PROGRESS_DEADLINE,
                     target_burst_capacity=200)
ACTIVATING, ACTIVE, INACTIVE = Activity.ACTIVATING, Activity.ACTIVE, Activity.INACTIVE

# kpa/scaler_test.go TestScaler: (label, start replicas, scaleTo, settings changes, PA activity and seconds since
# its last transition, SKS proxy seconds (None: not proxying), reachable, activator probe ok, initialized,
# want replicas, want scaling)
SCALER = [
    ("waits to scale to zero (just before idle period)", 1, 0, {}, ACTIVE, STABLE_WINDOW - 1, None, True, True,
     False, 1, False),
    ("waits to scale to zero (just before idle period), custom PA window", 1, 0, {"window_s": PA_STABLE_WINDOW},
     ACTIVE, PA_STABLE_WINDOW - 1, None, True, True, False, 1, False),
    ("custom PA window, check for standard window, no probe", 1, 0, {"window_s": PA_STABLE_WINDOW}, ACTIVE,
     STABLE_WINDOW, None, True, True, False, 0, False),
    ("scale to 1 waiting for idle expires", 10, 0, {}, ACTIVE, STABLE_WINDOW - 1, None, True, True, False, 1, True),
    ("waits to scale to zero after idle period", 1, 0, {}, ACTIVE, STABLE_WINDOW, None, True, True, False, 0,
     False),
    ("waits to scale to zero after idle period; sks in proxy mode", 1, 0, {}, ACTIVE, STABLE_WINDOW, 0.0, True,
     True, False, 0, False),
    ("waits to scale to zero after idle period (custom PA window)", 1, 0, {"window_s": PA_STABLE_WINDOW}, ACTIVE,
     PA_STABLE_WINDOW, None, True, True, False, 0, False),
    ("can scale to zero after grace period, but 0 PA retention", 1, 0, {"scale_to_zero_pod_retention_period_s": 0},
     INACTIVE, GRACE, None, True, True, False, 0, True),
    ("can't scale to zero after grace period, but before last pod retention", 1, 0,
     {"scale_to_zero_pod_retention_period_s": 2 * GRACE}, INACTIVE, GRACE, None, True, True, False, 0, False),
    ("can't scale to zero after grace period, but before last pod retention, pa defined", 1, 0,
     {"scale_to_zero_pod_retention_period_s": 2 * GRACE}, INACTIVE, GRACE, None, True, True, False, 0, False),
    ("scale to zero after grace period, and after last pod retention", 1, 0,
     {"scale_to_zero_pod_retention_period_s": GRACE}, INACTIVE, GRACE, None, True, True, False, 0, True),
    ("scale to zero after grace period", 1, 0, {}, INACTIVE, GRACE, None, True, True, False, 0, True),
    ("waits to scale to zero (just before grace period)", 1, 0, {}, INACTIVE, GRACE - 1, None, True, True, False,
     0, False),
    ("waits to scale to zero (just before grace period, sks short)", 1, 0, {}, INACTIVE, GRACE - 1, GRACE - 1, True,
     True, False, 0, False),
    ("waits to scale to zero (just before grace period, sks in proxy long) and last pod timeout positive", 1, 0,
     {"scale_to_zero_pod_retention_period_s": 42}, INACTIVE, GRACE - 1, GRACE, True, True, False, 0, True),
    ("waits to scale to zero (just before grace period, sks in proxy long)", 1, 0, {}, INACTIVE, GRACE - 1, GRACE,
     True, True, False, 0, True),
    ("scale to zero with TBC=-1", 1, 0, {"target_burst_capacity": -1}, INACTIVE, GRACE, None, True, False, False,
     0, True),  # the probe is not consulted: with TBC −1 the activator is always in the path
    ("scale to zero after grace period, but fail prober", 1, 0, {}, INACTIVE, GRACE, None, True, False, False, 0,
     False),
    ("scale to zero after grace period, but wrong prober response", 1, 0, {}, INACTIVE, GRACE, None, True, False,
     False, 0, False),
    ("waits to scale to zero while activating until after deadline exceeded", 1, 0, {}, ACTIVATING,
     ACTIVATION_TIMEOUT / 2, None, True, True, False, SCALE_UNKNOWN, False),
    ("scale to zero while activating after deadline exceeded", 1, 0, {}, ACTIVATING, ACTIVATION_TIMEOUT + 1, None,
     True, True, False, 0, True),
    ("scale to zero while activating after revision deadline exceeded", 1, 0, {"progress_deadline_s": 5},
     ACTIVATING, 5 + ACTIVATION_TIMEOUT_BUFFER_S + 1, None, True, True, False, 0, True),
    ("scale down to minScale before grace period", 10, 0, {"min_scale": 2}, INACTIVE, GRACE - 1, None, True, True,
     False, 2, True),
    ("scale down to minScale after grace period", 10, 0, {"min_scale": 2}, INACTIVE, GRACE, None, True, True,
     False, 2, True),
    ("scale to zero ignore last pod retention if  revision is unreachable", 1, 0,
     {"scale_to_zero_pod_retention_period_s": 10 * GRACE}, INACTIVE, GRACE, None, False, True, False, 0, True),
    ("can't scale to zero if revision is unreachable, but before deadline", 1, 0,
     {"scale_to_zero_pod_retention_period_s": 10 * GRACE}, INACTIVE, GRACE - 1, None, False, True, False, 0, False),
    ("ignore minScale if unreachable", 10, 0, {"min_scale": 2}, INACTIVE, GRACE, None, False, True, False, 0, True),
    ("observe minScale if reachability unknown", 10, 0, {"min_scale": 2}, INACTIVE, GRACE, None, True, True, False,
     2, True),
    ("scales up", 1, 10, {}, ACTIVATING, 0, None, True, True, False, 10, True),
    ("scales up to maxScale", 1, 10, {"max_scale": 8}, ACTIVATING, 0, None, True, True, False, 8, True),
    ("scale up inactive revision", 1, 10, {}, INACTIVE, GRACE / 2, None, True, True, False, 10, True),
    ("does not scale up from zero with no metrics", 0, -1, {}, INACTIVE, 0, None, True, True, False, -1, False),
    ("scales up from zero to desired one", 0, 1, {}, ACTIVATING, 0, None, True, True, False, 1, True),
    ("scales up from zero to desired high scale", 0, 10, {}, ACTIVATING, 0, None, True, True, False, 10, True),
    ("negative scale does not scale", 12, -1, {}, ACTIVE, 0, None, True, True, False, -1, False),
    ("initial scale attained, but now time to scale down", 2, 0, {"initial_scale": 2}, ACTIVE, 120, None, True, True,
     True, 1, True),
    ("haven't scaled to initial scale, override desired scale with initial scale", 0, 1, {"initial_scale": 2},
     ACTIVATING, 0, None, True, True, False, 2, True),
    ("initial scale reached for the first time", 5, 1, {"initial_scale": 5}, ACTIVATING, 0, None, True, True, False,
     5, False),
    ("reaching initial scale zero", 0, 0, {"initial_scale": 0}, INACTIVE, 0, None, True, True, False, 0, False),
    ("unreachable revision with initialScale > 1 can scale to 0", 2, 0, {"initial_scale": 2}, ACTIVE, 120, None,
     False, True, False, 1, True),
]


@pytest.mark.parametrize(("label", "start", "scale_to", "changes", "activity", "since", "proxy_for", "reachable",
                          "probe_ok", "initialized", "want", "want_scaling"), SCALER, ids=[c[0] for c in SCALER])
def test_scaler(label: str, start: int, scale_to: int, changes: dict[str, float], activity: Activity, since: float,
                proxy_for: float | None, reachable: bool, probe_ok: bool, initialized: bool, want: int,
                want_scaling: bool) -> None:
    settings = replace(CONFIG, **changes)
    pa = PaStatus(activity, NOW - since, initialized, None if proxy_for is None else NOW - proxy_for)
    got, apply = scale(settings, scale_to, NOW, pa, reachable=reachable, activator_probe_ok=probe_ok)
    assert got == want, label
    assert (apply and got != start) is want_scaling, label  # the Deployment is patched only on a change


# kpa/scaler_test.go TestDisableScaleToZero: PA active since now, reachable, enable-scale-to-zero false.
@pytest.mark.parametrize(("label", "scale_to", "min_scale", "want", "want_scaling"), [
    ("EnableScaleToZero == false and minScale == 0", 0, 0, 1, True),
    ("EnableScaleToZero == false and minScale == 2", 0, 2, 2, True),
    ("EnableScaleToZero == false and desire pod is -1(initial value)", -1, 0, -1, False),
])
def test_disable_scale_to_zero(label: str, scale_to: int, min_scale: int, want: int, want_scaling: bool) -> None:
    settings = replace(CONFIG, enable_scale_to_zero=False, min_scale=min_scale)
    got, apply = scale(settings, scale_to, NOW, PaStatus(ACTIVE, NOW))
    assert (got, apply and got != 10) == (want, want_scaling), label


# autoscaler_test.go newTestAutoscaler: TargetValue 10, TotalValue 10 / 0.75, panic threshold 2, rates 10.
def decider(tbc: float, ready_at_start: int = 1, **changes: float) -> KpaDecider:
    s = replace(KpaSettings(target=10 / 0.75, target_utilization=0.75, max_scale_up_rate=10, max_scale_down_rate=10,
                            target_burst_capacity=tbc), **changes)
    return KpaDecider(s, ready_at_start=ready_at_start, now=0.0)


def test_autoscaler_no_data_no_autoscale() -> None:
    # autoscaler_test.go TestAutoscalerNoDataNoAutoscale: no metrics, an invalid result; the status keeps −1.
    d = decider(100)
    result = d.decide(0.0, ready=1)
    assert not result.valid and d.desired_scale == SCALE_UNKNOWN


def delay_decider(reachable_delay_s: float = 300) -> KpaDecider:
    # autoscaler_test.go TestAutoscalerScaleDownDelay spec: TargetValue 10, rates 10, PanicThreshold 100.
    return KpaDecider(KpaSettings(target=10, target_utilization=1, max_scale_down_rate=10, max_scale_up_rate=10,
                                  panic_threshold_percentage=10_000, scale_down_delay_s=reachable_delay_s,
                                  target_burst_capacity=0), ready_at_start=0)


def test_autoscaler_scale_down_delay() -> None:
    # autoscaler_test.go TestAutoscalerScaleDownDelay, "simple" then "gradual" on the same autoscaler.
    d = delay_decider()
    assert d.decide_observed(2, 0, 40, 40).desired == 4
    assert d.decide_observed(300, 0, 0, 0).desired == 4  # less than the delay at the reduced load
    assert d.decide_observed(302, 0, 0, 0).desired == 0
    assert d.decide_observed(540, 0, 40, 40).desired == 4
    assert d.decide_observed(600, 0, 30, 30).desired == 4  # 4 still dominates
    assert d.decide_observed(660, 0, 0, 0).desired == 4
    assert d.decide_observed(840, 0, 0, 0).desired == 3  # 4 scrolls out
    assert d.decide_observed(900, 0, 0, 0).desired == 0


def test_autoscaler_scale_down_delay_not_reachable() -> None:
    # autoscaler_test.go TestAutoscalerScaleDownDelayNotReachable: once unreachable, the delay no longer holds.
    d = delay_decider()
    assert d.decide_observed(2, 0, 40, 40).desired == 4
    assert d.decide_observed(60, 0, 0, 0).desired == 4
    assert d.decide_observed(2, 0, 0, 0, reachable=False).desired == 0


def test_autoscaler_scale_down_delay_zero() -> None:
    # autoscaler_test.go TestAutoscalerScaleDownDelayZero
    d = delay_decider(0)
    assert d.decide_observed(0, 0, 40, 40).desired == 4
    assert d.decide_observed(0.5, 0, 20, 20).desired == 2


def test_start_in_panic_mode() -> None:
    # autoscaler_test.go TestStartInPanicMode: maxPanicPods is the ready count at creation; panic from 2 pods.
    for ready in (0, 1):
        d = decider(11, ready_at_start=ready)
        assert not d.in_panic and d.max_panic_pods == ready
    d = decider(11, ready_at_start=2)
    assert d.in_panic and d.max_panic_pods == 2


def test_autoscaler_panic_then_unpanic_scale_down() -> None:
    # autoscaler_test.go TestAutoscalerPanicThenUnPanicScaleDown
    d = decider(93)
    assert d.decide_observed(0, 1, 100, 100).desired == 10
    assert d.decide_observed(1, 10, 100, 1000).desired == 100
    assert d.decide_observed(31, 10, 1, 1).desired == 100  # traffic gone, still in panic
    assert d.decide_observed(62, 10, 1, 1).desired == 1  # after the stable window


def test_autoscaler_rate_limit_scale_down() -> None:
    # autoscaler_test.go TestAutoscalerRateLimitScaleDown: at most ÷ max-scale-down-rate per decision.
    d = decider(61)
    assert d.decide_observed(0, 100, 1, 1).desired == 10
    assert d.decide_observed(0, 10, 1, 1).desired == 1


def test_autoscaler_stable_mode_no_traffic_scale_to_zero() -> None:
    # autoscaler_test.go TestAutoscalerStableModeNoTrafficScaleToZero
    d = decider(75)
    assert d.decide_observed(0, 1, 1, 0).desired == 1
    assert d.decide_observed(0, 1, 0, 0).desired == 0


def test_autoscaler_activation_scale() -> None:
    # autoscaler_test.go TestAutoscalerActivationScale
    d = decider(75, activation_scale=2)
    assert d.decide_observed(0, 1, 0, 0).desired == 0
    assert d.decide_observed(0, 1, 1, 0).desired == 2


def test_new_revision_keeps_initial_scale_without_metrics_and_gives_up_after_the_activation_timeout() -> None:
    # scaler.go: while activating, "no decision" applies nothing (the Deployment keeps its initial scale);
    # pods that never become ready are scaled to zero once activating longer than progress deadline + 30 s.
    pa = PodAutoscaler(KpaSettings(window_s=60), now=0.0)
    seen = {t: pa.tick(t, ready=0) for t in range(0, 640, 2)}
    assert seen[0].replicas == 1 and seen[0].want == SCALE_UNKNOWN and seen[0].activity is ACTIVATING
    assert seen[630].replicas == 1  # 630 s is not past 600 + 30 s
    assert seen[632].replicas == 0 and seen[632].activity is INACTIVE
