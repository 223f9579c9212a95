"""KEDA kafka scaler and scale loop against numbers worked out from openfaas-keda.md §5.3–§5.5."""

from __future__ import annotations

import pytest

from pipeline.autoscale.hpa import HorizontalPodAutoscaler, HpaBehavior
from pipeline.autoscale.keda import KedaKafkaScaler, KedaScaleLoop, ScaledObjectPolicy
from pipeline.kafka import PartitionLag
from pipeline.topology import load_topology


def parts(*pairs: tuple[int, int | None]) -> list[PartitionLag]:
    return [PartitionLag(i, end, committed) for i, (end, committed) in enumerate(pairs)]


def test_lag_is_log_end_minus_committed_summed_over_partitions() -> None:
    m = KedaKafkaScaler(lag_threshold=10).measure(parts((100, 90), (50, 50), (7, 0)))
    assert (m.total_lag, m.raw_lag, m.partitions_with_lag) == (17, 17, 2)


def test_no_commit_counts_one_under_latest_and_the_whole_log_under_earliest() -> None:
    offsets = parts((40, None), (25, None), (10, 4))
    assert KedaKafkaScaler(10, offset_reset_policy="latest").measure(offsets).raw_lag == 1 + 1 + 6
    assert KedaKafkaScaler(10, offset_reset_policy="earliest").measure(offsets).raw_lag == 40 + 25 + 6
    assert KedaKafkaScaler(10, offset_reset_policy="earliest", scale_to_zero_on_invalid_offset=True) \
        .measure(offsets).raw_lag == 6


def test_metric_capped_at_partitions_times_threshold_unless_idle_consumers_allowed() -> None:
    offsets = parts((1000, 0), (1000, 0), (0, 0))  # P = 3, lag 2000, T = 100 -> cap 300
    assert KedaKafkaScaler(100).measure(offsets).total_lag == 300
    assert KedaKafkaScaler(100, allow_idle_consumers=True).measure(offsets).total_lag == 2000
    # 399 // 100 = 3, not > 3: the integer-division test leaves it uncapped.
    assert KedaKafkaScaler(100).measure(parts((399, 0), (0, 0), (0, 0))).total_lag == 399


def test_activation_needs_lag_above_the_activation_threshold() -> None:
    s = KedaKafkaScaler(10, activation_lag_threshold=5)
    assert not s.measure(parts((5, 0))).active
    assert s.measure(parts((6, 0))).active
    assert not KedaKafkaScaler(10).measure(parts((3, 3))).active
    assert KedaKafkaScaler(10).measure(parts((1, 0))).active


def test_invalid_thresholds_rejected() -> None:
    with pytest.raises(ValueError, match="lagThreshold"):
        KedaKafkaScaler(0)
    with pytest.raises(ValueError, match="activationLagThreshold"):
        KedaKafkaScaler(10, activation_lag_threshold=-1)


def test_scale_loop_polls_once_per_interval() -> None:
    loop = KedaScaleLoop(polling_interval_s=5)
    assert [t for t in (0, 1, 4.9, 5, 6, 10, 30, 31, 35) if loop.due(t)] == [0, 5, 10, 30, 35]


def test_activation_from_zero_to_one_or_min() -> None:
    assert KedaScaleLoop().decide(0, True, 0).replicas == 1
    assert KedaScaleLoop(min_replicas=3).decide(0, True, 0).replicas == 3
    # Above zero, an active trigger leaves the count to the HPA.
    assert KedaScaleLoop().decide(0, True, 4).replicas is None


def test_back_to_zero_directly_from_n_after_the_cooldown() -> None:
    loop = KedaScaleLoop(cooldown_period_s=60)
    loop.decide(100, True, 0)
    loop.decide(130, True, 4)  # last active at 130
    assert loop.decide(150, False, 4).replicas is None
    assert loop.decide(189, False, 4).replicas is None
    assert loop.decide(190, False, 4).replicas == 0


def test_never_to_zero_with_a_minimum() -> None:
    loop = KedaScaleLoop(min_replicas=2, cooldown_period_s=0)
    assert loop.decide(1000, False, 2).replicas is None
    assert loop.decide(1000, True, 0).replicas == 2
    assert loop.decide(1000, False, 1).replicas == 2


def test_scaled_object_policy_activates_scales_out_and_returns_to_zero() -> None:
    stage = load_topology().stages[0].model_copy(update={"max_replicas": 5})
    stage = stage.model_copy(update={"keda": stage.keda.model_copy(update={
        "lag_threshold": 10, "polling_interval_s": 1, "cooldown_period_s": 3, "scale_down_stabilization_s": 5})})
    policy = ScaledObjectPolicy.for_stage(stage, now=0.0, hpa_sync_period_s=1.0)
    burst = parts(*[(100, 0)] * 6)  # lag 600, cap 6 × 10 = 60 -> 6 replicas wanted, max 5
    d = policy.step(0.0, burst, 0)
    assert (d.replicas, d.by) == (1, "keda")
    d = policy.step(1.0, burst, 1)  # HPA with defaulted behavior: +max(4 pods, 100 %) -> 5
    assert (d.replicas, d.by) == (5, "hpa")
    idle = parts(*[(100, 100)] * 6)
    assert policy.step(2.0, idle, 5).replicas == 5  # scale-down stabilization (5 s) and cooldown (3 s) hold
    assert policy.step(3.0, idle, 5).replicas == 5
    d = policy.step(4.0, idle, 5)  # cooldown: 1.0 (last active) + 3 passed -> straight to zero
    assert (d.replicas, d.by) == (0, "keda")


def test_ce_cap_limits_replicas_to_five() -> None:
    stage = load_topology().stages[0].model_copy(update={"max_replicas": 20})
    policy = ScaledObjectPolicy.for_stage(stage, hpa_sync_period_s=1.0, ce_cap=True)
    burst = parts(*[(10_000, 0)] * 6)
    policy.step(0.0, burst, 0)
    assert policy.step(1.0, burst, 4).replicas == 5


def test_hpa_defaulted_behavior_used_for_stage() -> None:
    stage = load_topology().stages[0]
    policy = ScaledObjectPolicy.for_stage(stage)
    # advanced.horizontalPodAutoscalerConfig.behavior left out: the defaulted behaviour, with the stage's window.
    assert policy.hpa.behavior == HpaBehavior.defaulted(stage.keda.scale_down_stabilization_s)
    assert policy.hpa.behavior != HpaBehavior.defaulted(stage.keda.scale_down_stabilization_s + 1)
    assert isinstance(policy.hpa, HorizontalPodAutoscaler) and policy.hpa.min_replicas == 1


def test_scaled_object_policy_takes_the_initial_cooldown() -> None:
    stage = load_topology().stages[0]
    stage = stage.model_copy(update={"keda": stage.keda.model_copy(update={"initial_cooldown_period_s": 42})})
    assert ScaledObjectPolicy.for_stage(stage).loop.initial_cooldown_period_s == 42
