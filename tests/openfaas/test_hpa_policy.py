"""HPA replica math against numbers worked out from openfaas-keda.md §5.5."""

from __future__ import annotations

from pipeline.autoscale.hpa import HorizontalPodAutoscaler, HpaBehavior, ScalingPolicy, ScalingRules
from pipeline.autoscale.keda import KedaKafkaScaler
from pipeline.kafka import PartitionLag


def test_desired_is_ceil_of_metric_over_target() -> None:
    hpa = HorizontalPodAutoscaler(max_replicas=100)
    assert hpa.raw_desired(metric=250, target=100, current=1) == 3
    assert hpa.raw_desired(metric=50, target=100, current=4) == 1


def test_within_tolerance_keeps_the_current_count() -> None:
    hpa = HorizontalPodAutoscaler(max_replicas=100)
    # ratio 430 / (100 × 4) = 1.075: inside ±0.1 -> stays at 4 although ceil(4.3) = 5
    assert hpa.raw_desired(430, 100, 4) == 4
    # ratio 450 / 400 = 1.125 -> 5
    assert hpa.raw_desired(450, 100, 4) == 5
    assert hpa.raw_desired(361, 100, 4) == 4 and hpa.raw_desired(359, 100, 4) == 4  # 0.9025, 0.8975 -> ceil 3.59 = 4
    assert hpa.raw_desired(290, 100, 4) == 3


def test_stalls_just_below_the_partition_cap() -> None:
    # P = 24, T = 10: the metric is capped at 240. At 22 replicas 240/220 = 1.09 <= 1.1: no scale-up.
    scaler = KedaKafkaScaler(10)
    metric = scaler.measure([PartitionLag(p, 1000, 0) for p in range(24)]).total_lag
    assert metric == 240
    hpa = HorizontalPodAutoscaler(min_replicas=1, max_replicas=30, behavior=HpaBehavior.defaulted())
    r = hpa.sync(0, metric, 10, 11)
    assert r == 22  # max(11 + 4, 2 × 11) = 22 < 24
    for t in (15, 30, 45, 60):
        r = hpa.sync(t, metric, 10, r)
    assert r == 22
    nil = HorizontalPodAutoscaler(min_replicas=1, max_replicas=30)
    assert [nil.sync(t, metric, 10, 22) for t in (0, 15, 30)] == [22, 22, 22]
    # From 21 the ratio is 1.14: it goes straight to 24.
    assert HorizontalPodAutoscaler(max_replicas=30).sync(0, metric, 10, 21) == 24


def test_nil_behavior_remembers_the_unlimited_recommendation() -> None:
    # The nil path stores the pre-limit recommendation (24), so the next sync lifts 22 to 24.
    hpa = HorizontalPodAutoscaler(min_replicas=1, max_replicas=30)
    assert hpa.sync(0, 240, 10, 11) == 22
    assert hpa.sync(15, 240, 10, 22) == 24


def test_nil_behavior_scale_up_limit_is_max_of_double_and_four() -> None:
    hpa = HorizontalPodAutoscaler(min_replicas=1, max_replicas=100)
    assert hpa.sync(0, 10_000, 10, 1) == 4
    assert hpa.sync(15, 10_000, 10, 4) == 8
    assert hpa.sync(30, 10_000, 10, 8) == 16
    assert HorizontalPodAutoscaler(max_replicas=6).sync(0, 10_000, 10, 4) == 6


def test_nil_behavior_scale_down_keeps_the_highest_recommendation_for_five_minutes() -> None:
    hpa = HorizontalPodAutoscaler(min_replicas=1, max_replicas=10)
    assert hpa.sync(0, 60, 10, 6) == 6
    assert hpa.sync(15, 10, 10, 6) == 6
    assert hpa.sync(299, 10, 10, 6) == 6
    # At exactly 300 s the t=0 recommendation is out: upstream's cutoff is taken after the sync began.
    assert hpa.sync(300, 10, 10, 6) == 1


def test_clamped_to_at_least_one_and_at_most_max() -> None:
    hpa = HorizontalPodAutoscaler(min_replicas=0, max_replicas=5, downscale_stabilization_s=0)
    assert hpa.sync(0, 0, 10, 3) == 1
    assert HorizontalPodAutoscaler(min_replicas=2, max_replicas=5, downscale_stabilization_s=0).sync(0, 0, 10, 3) == 2


def test_defaulted_behavior_scales_up_by_max_of_four_pods_and_double_per_fifteen_seconds() -> None:
    hpa = HorizontalPodAutoscaler(min_replicas=1, max_replicas=100, behavior=HpaBehavior.defaulted())
    assert hpa.sync(0, 10_000, 10, 1) == 5     # max(1 + 4, ceil(1 × 2)) = 5
    assert hpa.sync(5, 10_000, 10, 5) == 5     # this period started at 1: still at the limit
    assert hpa.sync(15, 10_000, 10, 5) == 10   # new period: max(5 + 4, 10) = 10
    assert hpa.sync(30, 10_000, 10, 10) == 20


def test_select_policy_min_takes_the_smaller_limit() -> None:
    b = HpaBehavior(ScalingRules((ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)), "Min"),
                    HpaBehavior.defaulted().scale_down)
    assert HorizontalPodAutoscaler(max_replicas=100, behavior=b).sync(0, 10_000, 10, 10) == 14


def test_defaulted_behavior_scale_down_stabilization_then_drop_at_once() -> None:
    hpa = HorizontalPodAutoscaler(min_replicas=1, max_replicas=10, behavior=HpaBehavior.defaulted(60))
    assert hpa.sync(0, 80, 10, 8) == 8
    assert hpa.sync(30, 10, 10, 8) == 8
    assert hpa.sync(59, 10, 10, 8) == 8
    assert hpa.sync(61, 10, 10, 8) == 1        # Percent 100 / 15 s allows the whole drop


def test_disabled_scale_up_holds() -> None:
    b = HpaBehavior(ScalingRules((ScalingPolicy("Pods", 4, 15),), "Disabled"), HpaBehavior.defaulted().scale_down)
    assert HorizontalPodAutoscaler(max_replicas=10, behavior=b).sync(0, 10_000, 10, 2) == 2


def test_sync_every_fifteen_seconds() -> None:
    hpa = HorizontalPodAutoscaler()
    assert [t for t in (0, 10, 15, 20, 30) if hpa.due(t)] == [0, 15, 30]
