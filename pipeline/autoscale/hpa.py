"""The Kubernetes HorizontalPodAutoscaler as pure policy, for one external AverageValue metric.

Follows openfaas-keda.md §5.5 and kubernetes `pkg/controller/podautoscaler` (`replica_calculator.go`
`GetExternalPerPodMetricReplicas`, `horizontal.go` `reconcileAutoscaler`): a sync every 15 s, the 0.1
tolerance (per direction with `behavior.scale{Up,Down}.tolerance`), then either the nil-behavior path
(scale-up limit, 5-minute scale-down stabilization) or the behavior path (stabilization windows and rate
policies). Time is passed in (seconds, any monotonic origin); nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

SYNC_PERIOD_S = 15.0  # §5.5 controller defaults
TOLERANCE = 0.1
DOWNSCALE_STABILIZATION_S = 300.0
SCALE_UP_LIMIT_FACTOR = 2.0  # horizontal.go scaleUpLimitFactor (nil behavior only)
SCALE_UP_LIMIT_MINIMUM = 4.0  # horizontal.go scaleUpLimitMinimum
MAX_INT32 = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Tolerances:
    """replica_calculator.go `Tolerances`: no change while 1 − down ≤ ratio ≤ 1 + up (both ends inclusive)."""

    scale_down: float = TOLERANCE
    scale_up: float = TOLERANCE

    def within(self, ratio: float) -> bool:
        return (1.0 - self.scale_down) <= ratio <= (1.0 + self.scale_up)  # NaN: never within


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    type: Literal["Pods", "Percent"]
    value: int
    period_s: float


@dataclass(frozen=True, slots=True)
class ScalingRules:
    policies: tuple[ScalingPolicy, ...]
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    stabilization_s: float = 0.0
    tolerance: float | None = None
    """`behavior.scale{Up,Down}.tolerance` (HPAConfigurableTolerance, K8s 1.33+); None: the controller's 0.1."""

    @property
    def longest_period_s(self) -> float:
        return max((p.period_s for p in self.policies), default=0.0)


@dataclass(frozen=True, slots=True)
class HpaBehavior:
    scale_up: ScalingRules
    scale_down: ScalingRules

    @classmethod
    def defaulted(cls, scale_down_stabilization_s: float = DOWNSCALE_STABILIZATION_S, *,
                  scale_up_tolerance: float | None = None, scale_down_tolerance: float | None = None) -> HpaBehavior:
        """The API defaults filled into a non-nil behavior (§5.5, `autoscaling/v2/defaults.go`)."""
        return cls(
            scale_up=ScalingRules((ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)), "Max", 0.0,
                                  scale_up_tolerance),
            scale_down=ScalingRules((ScalingPolicy("Percent", 100, 15),), "Max", scale_down_stabilization_s,
                                    scale_down_tolerance),
        )


@dataclass(slots=True)
class Recommendation:
    replicas: int
    at: float


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    """horizontal.go `timestampedScaleEvent`: replicas added (or removed), a non-negative count."""

    change: int
    at: float


def changed_within(period_s: float, events: Sequence[ScaleEvent], now: float) -> int:
    """`getReplicasChangePerPeriod`: events strictly after now − period."""
    return sum(e.change for e in events if e.at > now - period_s)


def scale_up_limit(current: int, up: Sequence[ScaleEvent], down: Sequence[ScaleEvent], rules: ScalingRules,
                   now: float) -> int:
    """`calculateScaleUpLimitWithScalingRules`. Each policy counts from the replicas at its period's start,
    current − added + removed within the period (both directions)."""
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for p in rules.policies:
        start = current - changed_within(p.period_s, up, now) + changed_within(p.period_s, down, now)
        # Percent rounds up so that a small count can still grow.
        proposals.append(start + p.value if p.type == "Pods" else math.ceil(start * (1 + p.value / 100)))
    if not proposals:
        return MAX_INT32 if rules.select_policy == "Min" else -MAX_INT32 - 1
    return min(proposals) if rules.select_policy == "Min" else max(proposals)


def scale_down_limit(current: int, up: Sequence[ScaleEvent], down: Sequence[ScaleEvent], rules: ScalingRules,
                     now: float) -> int:
    """`calculateScaleDownLimitWithBehaviors`: selectPolicy Max allows the biggest change (the lowest count)."""
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for p in rules.policies:
        start = current - changed_within(p.period_s, up, now) + changed_within(p.period_s, down, now)
        proposals.append(start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100)))  # truncates
    if not proposals:
        return -MAX_INT32 - 1 if rules.select_policy == "Min" else MAX_INT32
    return max(proposals) if rules.select_policy == "Min" else min(proposals)


def external_per_pod_replicas(usage: float, target: float, status_replicas: int, tolerances: Tolerances) -> int:
    """`GetExternalPerPodMetricReplicas`: ceil(usage / target) unless the ratio to the current replicas
    is within tolerance; saturates at MaxInt32. At 0 replicas the ratio is ∞ (or NaN): never within."""
    if status_replicas > 0:
        ratio = usage / (target * status_replicas)
    else:
        ratio = math.nan if usage == 0 else math.inf
    if tolerances.within(ratio):
        return status_replicas
    wanted = math.ceil(usage / target)
    return MAX_INT32 if wanted > MAX_INT32 else wanted


@dataclass
class HorizontalPodAutoscaler:
    """Desired replicas for `metric` (summed over pods) against an AverageValue `target` per pod."""

    min_replicas: int = 1
    max_replicas: int = 10
    behavior: HpaBehavior | None = None
    sync_period_s: float = SYNC_PERIOD_S
    tolerance: float = TOLERANCE
    """--horizontal-pod-autoscaler-tolerance; `behavior` may override it per direction."""
    downscale_stabilization_s: float = DOWNSCALE_STABILIZATION_S
    scale_up_limit_factor: float = SCALE_UP_LIMIT_FACTOR
    scale_up_limit_minimum: float = SCALE_UP_LIMIT_MINIMUM
    scale_to_zero: bool = False
    """The HPAScaleToZero gate: minReplicas 0 allowed. Off (the default), minReplicas counts as at least 1
    and KEDA does 0↔1 itself (openfaas-keda.md §5.4)."""
    recommendations: list[Recommendation] = field(default_factory=list)
    up_events: list[ScaleEvent] = field(default_factory=list)
    down_events: list[ScaleEvent] = field(default_factory=list)
    next_sync: float | None = None
    scaled_to_zero: bool = False
    """The HPA's ScaledToZero condition (gate on): it scaled the target to 0 itself, so it may scale back."""

    def due(self, now: float) -> bool:
        """True once per sync period."""
        if self.next_sync is not None and now < self.next_sync:
            return False
        self.next_sync = now + self.sync_period_s
        return True

    @property
    def tolerances(self) -> Tolerances:
        """horizontal.go `tolerancesForHpa`: the behavior's per-direction values, else the controller's."""
        t = Tolerances(self.tolerance, self.tolerance)
        if self.behavior is None:
            return t
        down, up = self.behavior.scale_down.tolerance, self.behavior.scale_up.tolerance
        return Tolerances(t.scale_down if down is None else down, t.scale_up if up is None else up)

    @property
    def effective_min(self) -> int:
        return self.min_replicas if self.scale_to_zero else max(self.min_replicas, 1)

    def raw_desired(self, metric: float, target: float, current: int) -> int:
        return external_per_pod_replicas(metric, target, current, self.tolerances)

    def sync(self, now: float, metric: float, target: float, current: int, status_replicas: int | None = None) -> int:
        """One `reconcileAutoscaler`: the replica count the HPA writes (== current when it changes nothing).
        `current` is the scale's spec.replicas; `status_replicas` (default: current) the pods the ratio uses."""
        if not self.recommendations:
            self.recommendations.append(Recommendation(current, now))  # recordInitialRecommendation
        low = self.effective_min
        if current == 0 and not (self.scale_to_zero and self.scaled_to_zero):
            return 0  # ScalingDisabled: scaled to zero by someone else (KEDA)
        if current > self.max_replicas:
            desired = self.max_replicas
        elif 0 < current < low:
            desired = low
        else:
            raw = self.raw_desired(metric, target, current if status_replicas is None else status_replicas)
            desired = self.normalize(now, raw, current)
            if current == 0 and low != 0 and desired < low:
                desired = low
        if desired != current:
            self.store_event(now, current, desired)
            if self.scale_to_zero:
                self.scaled_to_zero = current > 0 and desired == 0 and self.min_replicas == 0
        return desired

    def normalize(self, now: float, desired: int, current: int) -> int:
        if self.behavior is None:
            return self.convert_with_rules(current, self.stabilize(now, desired))
        stabilized = self.stabilize_with_behavior(now, desired, current)
        return self.rate_limited(now, stabilized, current)

    # -- behavior == nil: `normalizeDesiredReplicas` ------------------------------------------------
    def stabilize(self, now: float, desired: int) -> int:
        """`stabilizeRecommendation`: the highest recommendation not older than the window, this one included."""
        # A recommendation exactly at the cutoff is out: upstream's cutoff is taken after the sync has begun,
        # so with a 0 s window even this sync's initial recommendation is older than it.
        cutoff = now - self.downscale_stabilization_s
        best, old = desired, None
        for i, r in enumerate(self.recommendations):
            if r.at <= cutoff:
                old = i
            elif r.replicas > best:
                best = r.replicas
        self._record(old, desired, now)
        return best

    def convert_with_rules(self, current: int, desired: int) -> int:
        """`convertDesiredReplicasWithRules`: [min, min(max, max(factor × current, minimum))]."""
        limit = int(max(self.scale_up_limit_factor * current, self.scale_up_limit_minimum))
        highest = min(self.max_replicas, limit)
        if desired < self.effective_min:
            return self.effective_min
        return min(desired, highest)

    # -- behavior set: `normalizeDesiredReplicasWithBehaviors` --------------------------------------
    def stabilize_with_behavior(self, now: float, desired: int, current: int) -> int:
        """`stabilizeRecommendationWithBehaviors`: current kept within [lowest over the up window,
        highest over the down window], each window including this recommendation."""
        assert self.behavior is not None
        up_cut = now - self.behavior.scale_up.stabilization_s
        down_cut = now - self.behavior.scale_down.stabilization_s
        up_rec, down_rec, old = desired, desired, None
        for i, r in enumerate(self.recommendations):
            if r.at > up_cut:
                up_rec = min(up_rec, r.replicas)
            if r.at > down_cut:
                down_rec = max(down_rec, r.replicas)
            if r.at < up_cut and r.at < down_cut:
                old = i
        self._record(old, desired, now)
        return min(max(current, up_rec), down_rec)

    def rate_limited(self, now: float, desired: int, current: int) -> int:
        """`convertDesiredReplicasWithBehaviorRate`. A rate limit never moves against the wanted direction:
        the scale-up limit is at least current, the scale-down limit at most current."""
        assert self.behavior is not None
        if desired > current:
            limit = max(scale_up_limit(current, self.up_events, self.down_events, self.behavior.scale_up, now),
                        current)
            return min(desired, self.max_replicas, limit)
        if desired < current:
            limit = min(scale_down_limit(current, self.up_events, self.down_events, self.behavior.scale_down, now),
                        current)
            return max(desired, self.effective_min, limit)
        return desired

    def _record(self, old: int | None, desired: int, now: float) -> None:
        # The newest recommendation replaces an expired one, else it is appended (as upstream).
        if old is None:
            self.recommendations.append(Recommendation(desired, now))
        else:
            self.recommendations[old] = Recommendation(desired, now)

    def store_event(self, now: float, before: int, after: int) -> None:
        """`storeScaleEvent`: kept only with a behavior; an event older than the direction's longest
        policy period no longer counts (upstream marks it outdated and reuses its slot)."""
        if self.behavior is None:
            return
        up = after > before
        rules = self.behavior.scale_up if up else self.behavior.scale_down
        events = self.up_events if up else self.down_events
        cutoff = now - rules.longest_period_s
        events[:] = [e for e in events if e.at >= cutoff]
        events.append(ScaleEvent(abs(after - before), now))
