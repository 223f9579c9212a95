"""KEDA as pure policy: the kafka scaler's lag metric and the ScaledObject's 0↔1 scale loop.

No I/O and no clock: offsets and the current time are passed in, decisions come out. The
1↔N part belongs to the HPA (`pipeline.autoscale.hpa`), fed with the metric computed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    """Summed lag before the cap."""
    partitions: int
    partitions_with_lag: int
    active: bool


@dataclass(frozen=True, slots=True)
class KedaKafkaScaler:
    """The `kafka` trigger (openfaas-keda.md §5.2 defaults, §5.3 algorithm)."""

    lag_threshold: int = 10
    activation_lag_threshold: int = 0
    offset_reset_policy: Literal["earliest", "latest"] = "latest"
    allow_idle_consumers: bool = False
    scale_to_zero_on_invalid_offset: bool = False

    def __post_init__(self) -> None:
        if self.lag_threshold <= 0:
            raise ValueError("lagThreshold must be > 0")  # §5.2
        if self.activation_lag_threshold < 0:
            raise ValueError("activationLagThreshold must be >= 0")

    def partition_lag(self, p: PartitionOffsets) -> int:
        # §5.3 step 3: no commit -> latest: 1 (0 with scaleToZeroOnInvalidOffset); earliest: the whole log.
        if p.committed is None or p.committed < 0:
            if self.scale_to_zero_on_invalid_offset:
                return 0
            return 1 if self.offset_reset_policy == "latest" else p.log_end
        return p.log_end - p.committed

    def measure(self, partitions: Sequence[PartitionOffsets]) -> KafkaMetric:
        lags = [self.partition_lag(p) for p in partitions]
        raw = sum(lags)
        total = raw
        count = len(partitions)
        # §5.3 step 5: cap at P × lagThreshold unless idle consumers are allowed (integer division).
        if not self.allow_idle_consumers and total // self.lag_threshold > count:
            total = count * self.lag_threshold
        total = max(total, 0)  # §5.3 step 6: a negative metric is reported as 0
        # §5.3 step 7: active when the (uncapped, no persistent-lag exclusion) lag exceeds the activation threshold.
        return KafkaMetric(total, raw, count, sum(1 for lag in lags if lag > 0), raw > self.activation_lag_threshold)


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
                                 k.allow_idle_consumers)
        loop = KedaScaleLoop(stage.min_replicas, stage.max_replicas, k.polling_interval_s, k.cooldown_period_s,
                             created_at=now)
        # §5.1: the HPA gets minReplicas max(min,1); behavior set → defaulted policies (§5.5).
        hpa = HorizontalPodAutoscaler(max(stage.min_replicas, 1), stage.max_replicas,
                                      HpaBehavior.defaulted(k.scale_down_stabilization_s), hpa_sync_period_s)
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
