"""The KEDA kafka scaler policy against kedacore/keda's own tests: pkg/scalers/kafka_scaler_test.go (unit
tables) and tests/scalers/kafka/kafka_test.go (end-to-end scenarios, replayed as scaler readings). Each case
carries the upstream test and case name."""

from __future__ import annotations

import pytest

from pipeline.autoscale.hpa import HorizontalPodAutoscaler
from pipeline.autoscale.keda import (
    KedaKafkaScaler,
    ScaledObjectPolicy,
    factors,
    next_balanced_factor,
    parse_partition_limitation,
)
from pipeline.kafka import PartitionLag
from pipeline.openfaas.render import RenderOptions, scaled_object
from pipeline.topology import load_topology


# kafka_scaler_test.go TestKafkaParsePartitionLimitation
@pytest.mark.parametrize(("name", "text", "expected"), [
    ("single value", "1", (1,)),
    ("comma-separated list", "1,2,3,4", (1, 2, 3, 4)),
    ("list with whitespace around values", " 1 , 2 , 3 ", (1, 2, 3)),
    ("simple range", "1-4", (1, 2, 3, 4)),
    ("single-element range (start == end)", "3-3", (3,)),
    ("range with whitespace", " 1 - 4 ", (1, 2, 3, 4)),
    ("mixed list and ranges", "1-4,8,10-12", (1, 2, 3, 4, 8, 10, 11, 12)),
    ("non-numeric value", "a,b,c", None),
    ("invalid range: too many parts", "1-2-3", None),
    ("invalid range: non-numeric start", "a-3", None),
    ("invalid range: non-numeric end", "1-b", None),
])
def test_kafka_parse_partition_limitation(name: str, text: str, expected: tuple[int, ...] | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            parse_partition_limitation(text)
    else:
        assert parse_partition_limitation(text) == expected, name


def test_blank_partition_limitation_means_every_partition() -> None:
    # kafka_scaler_test.go parseKafkaMetadataTestDataset: "no limitation" and "whitespaced limitation value"
    assert parse_partition_limitation("") is None and parse_partition_limitation("           ") is None


def test_find_factors() -> None:
    # kafka_scaler_test.go TestFindFactors
    assert factors(10) == [1, 2, 5, 10]
    assert factors(13) == [1, 13]
    assert factors(17) == [1, 17]
    assert factors(25) == [1, 5, 25]
    assert factors(50) == [1, 2, 5, 10, 25, 50]
    assert factors(100) == [1, 2, 4, 5, 10, 20, 25, 50, 100]


@pytest.mark.parametrize(("lag", "expected"), [(10, 1), (20, 2), (40, 4), (50, 5), (99, 10), (100, 10), (101, 20)])
def test_get_next_factor(lag: int, expected: int) -> None:
    # kafka_scaler_test.go TestGetNextFactor: 100 partitions, lagThreshold 10
    assert next_balanced_factor(lag, 100, 10) == expected


# kafka_scaler_test.go TestGetTopicPartitions: (name, partitionLimitation, topic partitions, partitions read)
@pytest.mark.parametrize(("name", "limitation", "ids", "read"), [
    ("success_all_partitions_explicit", "1,2", [1, 2], 2),
    ("success_partial_partitions_explicit", "1,2,3", [1, 2, 3, 4, 5, 6], 3),
    ("success_all_partitions_implicit", "", [1, 2, 3, 4, 5, 6], 6),
])
def test_get_topic_partitions(name: str, limitation: str, ids: list[int], read: int) -> None:
    offsets = [PartitionLag(i, 100, 100 - i) for i in ids]
    m = KedaKafkaScaler(10, partition_limitation=limitation).measure(offsets)
    assert m.partitions == read, name
    assert m.raw_lag == sum(i for i in ids[:read]), name  # only the limited partitions' lag counts


# kafka_scaler_test.go parseKafkaMetadataTestDataset: the option combinations Validate rejects.
@pytest.mark.parametrize(("case", "options"), [
    ("failure, lagThreshold is negative value", {"lag_threshold": -1}),
    ("failure, lagThreshold is 0", {"lag_threshold": 0}),
    ("failure, partitionLimitation wrong data type", {"partition_limitation": "a,b,c,d"}),
    ("failure, allowIdleConsumers and limitToPartitionsWithLag cannot be set to true simultaneously",
     {"allow_idle_consumers": True, "limit_to_partitions_with_lag": True}),
    ("failure, limitToPartitionsWithLag and ensureEvenDistributionOfPartitions cannot be set to true "
     "simultaneously", {"limit_to_partitions_with_lag": True, "ensure_even_distribution_of_partitions": True}),
])
def test_invalid_metadata_rejected(case: str, options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        KedaKafkaScaler(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("case", "options"), [
    ("success, allowIdleConsumers can be set when limitToPartitionsWithLag is false",
     {"allow_idle_consumers": True, "limit_to_partitions_with_lag": False}),
    ("success, limitToPartitionsWithLag is true", {"limit_to_partitions_with_lag": True}),
    ("success, ensureEvenDistributionOfPartitions is true", {"ensure_even_distribution_of_partitions": True}),
    ("success, excludePersistentLag is true", {"exclude_persistent_lag": True}),
    ("success, partitionLimitation mixed list + ranges", {"partition_limitation": "1-4,8,10-12"}),
])
def test_valid_metadata_accepted(case: str, options: dict[str, object]) -> None:
    KedaKafkaScaler(**options)  # type: ignore[arg-type]


# kafka_scaler_test.go TestGetLagForPartition_MissingPartition (the cases with the partition's log end known;
# a partition missing from the log-end response cannot occur in this model): (name, committed, log end,
# policy, scaleToZeroOnInvalidOffset, lag, lag with persistent)
@pytest.mark.parametrize(("name", "committed", "log_end", "policy", "to_zero", "lag", "with_persistent"), [
    ("Scenario 1: scaleToZeroOnInvalidOffset true, invalid consumer offset, missing partition", None, 0,
     "earliest", True, 0, 0),
    ("Control: Valid offsets, no missing partition", 100, 150, "earliest", False, 50, 50),
    ("Control: Invalid consumer offset with latest policy and scaleToZeroOnInvalidOffset true", None, 150,
     "latest", True, 0, 0),
])
def test_get_lag_for_partition(name: str, committed: int | None, log_end: int, policy: str, to_zero: bool,
                               lag: int, with_persistent: int) -> None:
    scaler = KedaKafkaScaler(offset_reset_policy=policy,  # type: ignore[arg-type]
                             scale_to_zero_on_invalid_offset=to_zero)
    assert scaler.partition_lags(PartitionLag(0, log_end, committed)) == (lag, with_persistent), name


def test_scaling_only_partitions_with_lag() -> None:
    # kafka_test.go testScalingOnlyPartitionsWithLag: 3 partitions, lagThreshold 1, activation 1, latest.
    s = KedaKafkaScaler(1, 1, "latest", limit_to_partitions_with_lag=True)
    one = s.measure([PartitionLag(0, 101, 100), PartitionLag(1, 100, 100), PartitionLag(2, 100, 100)])
    assert not one.active  # 1 message: not above the activation threshold
    six = s.measure([PartitionLag(0, 106, 100), PartitionLag(1, 100, 100), PartitionLag(2, 100, 100)])
    assert six.active and six.total_lag == 1  # lag on 1 partition: metric capped at 1 × 1 → 1 replica
    second = s.measure([PartitionLag(0, 106, 100), PartitionLag(1, 105, 100), PartitionLag(2, 100, 100)])
    assert second.total_lag == 2  # lag on 2 partitions → 2 replicas
    assert KedaKafkaScaler(1, 1, "latest").measure(
        [PartitionLag(0, 106, 100), PartitionLag(1, 105, 100), PartitionLag(2, 100, 100)]).total_lag == 3


def test_scaling_ensure_even_distribution_of_partitions() -> None:
    # kafka_test.go testScalingEnsureEvenDistributionOfPartitions: 10 partitions, lagThreshold 1, activation 1.
    s = KedaKafkaScaler(1, 1, "latest", ensure_even_distribution_of_partitions=True)

    def lagged(total: int) -> list[PartitionLag]:
        return [PartitionLag(p, 100 + (1 if p < total else 0), 100) for p in range(10)]

    assert not s.measure(lagged(1)).active
    assert s.measure(lagged(5)).total_lag == 5  # lag 5: 5 divides 10 → 5 pods
    assert s.measure(lagged(8)).total_lag == 10  # lag 8: next factor of 10 is 10 → 10 pods, not 8


def test_persistent_lag() -> None:
    # kafka_test.go testPersistentLag: a group whose commits stop moving keeps its lag out of the metric from the
    # second poll on, but stays active (the lag still counts for activation).
    s = KedaKafkaScaler(1, 0, "latest", exclude_persistent_lag=True)
    stuck = [PartitionLag(p, 105, 100) for p in range(3)]
    first = s.measure(stuck)
    assert first.total_lag == 3 and first.raw_lag == 15  # no previous offsets yet: counted (capped at 3 × 1)
    second = s.measure(stuck)
    assert (second.total_lag, second.raw_lag, second.lag_with_persistent, second.active) == (0, 0, 15, True)
    moved = s.measure([PartitionLag(0, 105, 101), PartitionLag(1, 105, 100), PartitionLag(2, 105, 100)])
    assert moved.raw_lag == 4  # partition 0 consumed again: its lag counts once more


def test_new_options_reach_the_emulated_scaled_object() -> None:
    stage = load_topology().stages[0]
    stage = stage.model_copy(update={"keda": stage.keda.model_copy(update={
        "limit_to_partitions_with_lag": True, "partition_limitation": "0-2", "scale_up_tolerance": 0.02,
        "scale_down_tolerance": 0.3})})
    policy = ScaledObjectPolicy.for_stage(stage)
    assert policy.scaler.limit_to_partitions_with_lag and policy.scaler.partition_limitation == "0-2"
    assert isinstance(policy.hpa, HorizontalPodAutoscaler)
    assert (policy.hpa.tolerances.scale_up, policy.hpa.tolerances.scale_down) == (0.02, 0.3)


def test_new_options_are_rendered_into_the_scaled_object() -> None:
    topology = load_topology().with_stage_overrides(keda={
        "exclude_persistent_lag": True, "partition_limitation": "0-2", "scale_up_tolerance": 0.02})
    so = scaled_object(topology, topology.stages[0], RenderOptions())
    meta = so["spec"]["triggers"][0]["metadata"]
    assert (meta["excludePersistentLag"], meta["limitToPartitionsWithLag"], meta["partitionLimitation"]) == \
        ("true", "false", "0-2")
    behavior = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"] == {"tolerance": "0.02"} and "tolerance" not in behavior["scaleDown"]
    defaults = scaled_object(load_topology(), load_topology().stages[0], RenderOptions())
    assert "partitionLimitation" not in defaults["spec"]["triggers"][0]["metadata"]  # blank: every partition


def test_topology_settings_follow_the_scaler_validation() -> None:
    # `--set` reaches the stage's keda settings through with_stage_overrides; Validate's exclusions hold there too.
    t = load_topology().with_stage_overrides(keda={"partition_limitation": 3, "scale_down_tolerance": 0.2})
    assert (t.stages[0].keda.partition_limitation, t.stages[0].keda.scale_down_tolerance) == ("3", 0.2)
    with pytest.raises(ValueError, match="limit_to_partitions_with_lag"):
        load_topology().with_stage_overrides(keda={"limit_to_partitions_with_lag": True, "allow_idle_consumers": True})
    with pytest.raises(ValueError, match="partition_limitation"):
        load_topology().with_stage_overrides(keda={"partition_limitation": "a-b"})
