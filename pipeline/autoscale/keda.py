"""KEDA as pure policy: the kafka scaler's lag metric and the ScaledObject's 0↔1 scale loop.

No I/O and no clock: offsets and the current time are passed in, decisions come out. The
1↔N part belongs to the HPA (`pipeline.autoscale.hpa`), fed with the metric computed here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pipeline.autoscale.hpa import SYNC_PERIOD_S, HorizontalPodAutoscaler, HpaBehavior
from pipeline.topology import Stage

# openfaas-keda.md §3.3: OpenFaaS CE is licensed for 5 replicas per function.
CE_MAX_REPLICAS = 5


class PartitionOffsets(Protocol):
    """Log-end and committed offset of one partition (`pipeline.kafka.PartitionLag` fits)."""

    @property
    def partition(self) -> int: ...

    @property
    def log_end(self) -> int: ...

    @property
    def committed(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class KafkaMetric:
    """One scaler reading: the metric the HPA sees and whether the trigger is active."""

    total_lag: int
    """The metric: summed lag after the partition cap (milli-quantity upstream; whole events here)."""
    raw_lag: int
    """Summed lag before the cap (persistent lag excluded when `excludePersistentLag`)."""
    partitions: int
    partitions_with_lag: int
    active: bool
    lag_with_persistent: int | None = None
    """Summed lag counting persistent lag too: what activation compares (None: same as raw_lag)."""


def parse_partition_limitation(text: str) -> tuple[int, ...] | None:
    """kafka_scaler.go `parsePartitionLimitation`: "1,2,10-20,31"; blank means every partition (None)."""
    if not text.strip():
        return None
    ids: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        bounds = [b.strip() for b in part.split("-")] if "-" in part else [part]
        if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
            raise ValueError(f"invalid partition limitation: {part!r}")
        ids.extend(range(int(bounds[0]), int(bounds[-1]) + 1))
    return tuple(ids)


def factors(n: int) -> list[int]:
    """kafka_scaler.go `FindFactors`, ascending."""
    return sorted({f for i in range(1, math.isqrt(n) + 1) if n % i == 0 for f in (i, n // i)}) if n >= 1 else []


def next_balanced_factor(total_lag: int, partitions: int, lag_threshold: int) -> int:
    """`getNextFactorThatBalancesConsumersToTopicPartitions`: the smallest factor f of the partition count
    with f × lagThreshold ≥ lag, so each consumer gets the same number of partitions (else all of them)."""
    return next((f for f in factors(partitions) if f * lag_threshold >= total_lag), partitions)


@dataclass(frozen=True, slots=True)
class KedaKafkaScaler:
    """The `kafka` trigger (openfaas-keda.md §5.2 defaults, §5.3 algorithm; kedacore/keda
    `pkg/scalers/kafka_scaler.go`, v2.21)."""

    lag_threshold: int = 10
    activation_lag_threshold: int = 0
    offset_reset_policy: Literal["earliest", "latest"] = "latest"
    allow_idle_consumers: bool = False
    scale_to_zero_on_invalid_offset: bool = False
    exclude_persistent_lag: bool = False
    limit_to_partitions_with_lag: bool = False
    ensure_even_distribution_of_partitions: bool = False
    partition_limitation: str = ""
    """Partition IDs the scaler looks at ("1,2,10-20"); blank: all (the trigger always names its topic)."""
    _previous: dict[int, int] = field(default_factory=dict, compare=False, repr=False)
    """excludePersistentLag: each partition's committed offset at the previous poll."""

    def __post_init__(self) -> None:
        # kafkaMetadata.Validate
        if self.lag_threshold <= 0:
            raise ValueError("lagThreshold must be > 0")
        if self.activation_lag_threshold < 0:
            raise ValueError("activationLagThreshold must be >= 0")
        if self.allow_idle_consumers and self.limit_to_partitions_with_lag:
            raise ValueError("allowIdleConsumers and limitToPartitionsWithLag cannot be set simultaneously")
        if self.limit_to_partitions_with_lag and self.ensure_even_distribution_of_partitions:
            raise ValueError("limitToPartitionsWithLag and ensureEvenDistributionOfPartitions cannot be set "
                             "simultaneously")
        parse_partition_limitation(self.partition_limitation)

    def partition_lags(self, p: PartitionOffsets) -> tuple[int, int]:
        """`getLagForPartition`: (lag, lag with persistent lag)."""
        # §5.3 step 3: no commit -> latest: 1 (0 with scaleToZeroOnInvalidOffset); earliest: the whole log.
        if p.committed is None or p.committed < 0:
            if self.scale_to_zero_on_invalid_offset:
                return 0, 0
            lag = 1 if self.offset_reset_policy == "latest" else p.log_end
            return lag, lag
        lag = p.log_end - p.committed
        if self.exclude_persistent_lag:
            # A group still at the offset of the previous poll is stuck: its lag does not scale out,
            # though it still counts for activation.
            if self._previous.get(p.partition) == p.committed:
                return 0, lag
            self._previous[p.partition] = p.committed
        return lag, lag

    def partition_lag(self, p: PartitionOffsets) -> int:
        return self.partition_lags(p)[0]

    def measure(self, partitions: Sequence[PartitionOffsets]) -> KafkaMetric:
        limitation = parse_partition_limitation(self.partition_limitation)
        if limitation is not None:
            partitions = [p for p in partitions if p.partition in limitation]  # `isActivePartition`
            if not partitions:
                raise ValueError("expected at least one active partition within the topic")
        lags = [self.partition_lags(p) for p in partitions]
        raw = sum(lag for lag, _ in lags)
        with_persistent = sum(lp for _, lp in lags)
        count = len(partitions)
        with_lag = sum(1 for lag, _ in lags if lag > 0)
        total = raw
        # §5.3 step 5 (`getTotalLag`): cap at P × lagThreshold (or partitions with lag × lagThreshold);
        # with even distribution the metric is first raised to the next factor of P × lagThreshold.
        if not self.allow_idle_consumers or self.limit_to_partitions_with_lag \
                or self.ensure_even_distribution_of_partitions:
            upper = count
            if self.ensure_even_distribution_of_partitions:
                total = next_balanced_factor(total, count, self.lag_threshold) * self.lag_threshold
            if self.limit_to_partitions_with_lag:
                upper = with_lag
            if total // self.lag_threshold > upper:  # integer division, as upstream
                total = upper * self.lag_threshold
        total = max(total, 0)  # §5.3 step 6: a negative metric is reported as 0
        # §5.3 step 7: active when the uncapped lag, persistent lag included, exceeds the activation threshold.
        return KafkaMetric(total, raw, count, with_lag, with_persistent > self.activation_lag_threshold,
                           with_persistent)


@dataclass(frozen=True, slots=True)
class ScaleLoopDecision:
    replicas: int | None
    """The replica count KEDA sets itself, or None: leave the count to the HPA."""
    reason: str


class KedaScaleLoop:
    """The ScaledObject scale loop (openfaas-keda.md §5.4): 0→min on activity, N→0 after the cooldown."""

    def __init__(self, min_replicas: int = 0, max_replicas: int = 100, polling_interval_s: float = 30,
                 cooldown_period_s: float = 300, initial_cooldown_period_s: float = 0, created_at: float = 0.0) -> None:
        # §5.1 defaults: pollingInterval 30, cooldownPeriod 300, minReplicaCount 0, maxReplicaCount 100.
        if polling_interval_s < 1:
            raise ValueError("pollingInterval must be >= 1 s")
        if min_replicas > max_replicas:
            raise ValueError("minReplicaCount must not exceed maxReplicaCount")
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.polling_interval_s = polling_interval_s
        self.cooldown_period_s = cooldown_period_s
        self.initial_cooldown_period_s = initial_cooldown_period_s
        self.created_at = created_at
        self.last_active: float | None = None
        self.next_poll = created_at

    def due(self, now: float) -> bool:
        """True once per pollingInterval."""
        if now < self.next_poll:
            return False
        step = self.next_poll + self.polling_interval_s
        self.next_poll = step if now < step else now + self.polling_interval_s
        return True

    def decide(self, now: float, active: bool, current: int) -> ScaleLoopDecision:
        # §5.4: with minReplicaCount >= 1 activation is moot: the branches below never go under the minimum.
        if active:
            self.last_active = now
            if current == 0:
                return ScaleLoopDecision(max(self.min_replicas, 1), "activated")
            return ScaleLoopDecision(None, "active")
        if current < self.min_replicas:
            return ScaleLoopDecision(self.min_replicas, "below minReplicaCount")
        if self.min_replicas == 0 and current > 0:
            since = self.last_active if self.last_active is not None else self.created_at
            cooldown = self.cooldown_period_s if self.last_active is not None else self.initial_cooldown_period_s
            if now >= since + cooldown:
                return ScaleLoopDecision(0, "cooldown passed")  # §5.4: directly from N, not via the HPA
            return ScaleLoopDecision(None, "cooling down")
        return ScaleLoopDecision(None, "idle")


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    replicas: int
    """The replica count after this step (== current when nothing changed)."""
    by: Literal["keda", "hpa", ""]
    metric: KafkaMetric | None


class ScaledObjectPolicy:
    """One ScaledObject end to end: the scale loop for 0↔1, its HPA for 1↔N (openfaas-keda.md §5.4).

    `step` is called often with fresh offsets; the loop acts once per pollingInterval and the HPA
    once per sync period, each on the offsets it is given at that moment (the HPA reads the
    metric live, `useCachedMetrics: false`, §5.4).
    """

    def __init__(self, scaler: KedaKafkaScaler, loop: KedaScaleLoop, hpa: HorizontalPodAutoscaler,
                 ce_max_replicas: int | None = None) -> None:
        self.scaler = scaler
        self.loop = loop
        self.hpa = hpa
        self.ce_max_replicas = ce_max_replicas
        self.last_metric: KafkaMetric | None = None

    @classmethod
    def for_stage(cls, stage: Stage, *, now: float = 0.0, hpa_sync_period_s: float = SYNC_PERIOD_S,
                  ce_cap: bool = False) -> ScaledObjectPolicy:
        """The policy the rendered ScaledObject of `stage` asks for (same fields, same defaults)."""
        k = stage.keda
        scaler = KedaKafkaScaler(k.lag_threshold, k.activation_lag_threshold, k.offset_reset_policy,
                                 k.allow_idle_consumers, k.scale_to_zero_on_invalid_offset, k.exclude_persistent_lag,
                                 k.limit_to_partitions_with_lag, k.ensure_even_distribution_of_partitions,
                                 k.partition_limitation)
        loop = KedaScaleLoop(stage.min_replicas, stage.max_replicas, k.polling_interval_s, k.cooldown_period_s,
                             k.initial_cooldown_period_s, created_at=now)
        # §5.1: the HPA gets minReplicas max(min,1); behavior set → defaulted policies (§5.5), with the
        # per-direction tolerances when the ScaledObject sets them.
        behavior = HpaBehavior.defaulted(k.scale_down_stabilization_s, scale_up_tolerance=k.scale_up_tolerance,
                                         scale_down_tolerance=k.scale_down_tolerance)
        hpa = HorizontalPodAutoscaler(max(stage.min_replicas, 1), stage.max_replicas, behavior, hpa_sync_period_s)
        return cls(scaler, loop, hpa, CE_MAX_REPLICAS if ce_cap else None)

    def wants_offsets(self, now: float, current: int) -> bool:
        """Whether `step` at `now` will act (so the caller reads offsets only when needed)."""
        return now >= self.loop.next_poll or (current > 0 and (self.hpa.next_sync is None or now >= self.hpa.next_sync))

    def step(self, now: float, partitions: Sequence[PartitionOffsets], current: int) -> ScaleDecision:
        replicas, by = current, ""
        metric = None
        if self.loop.due(now):
            metric = self.scaler.measure(partitions)
            decision = self.loop.decide(now, metric.active, current)
            if decision.replicas is not None and decision.replicas != current:
                replicas, by = decision.replicas, "keda"
        # §5.4: the HPA does nothing while the target is at 0 replicas.
        if by == "" and current > 0 and self.hpa.due(now):
            metric = metric or self.scaler.measure(partitions)
            wanted = self.hpa.sync(now, metric.total_lag, self.scaler.lag_threshold, current)
            if wanted != current:
                replicas, by = wanted, "hpa"
        if self.ce_max_replicas is not None:
            replicas = min(replicas, self.ce_max_replicas)
        if metric is not None:
            self.last_metric = metric
        return ScaleDecision(replicas, by if replicas != current else "", metric)
