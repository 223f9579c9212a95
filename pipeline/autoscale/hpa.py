"""The Kubernetes HorizontalPodAutoscaler as pure policy, for one external AverageValue metric.

Follows openfaas-keda.md §5.5 (kubernetes `replica_calculator.go` and `horizontal.go`): a sync
every 15 s, the 0.1 tolerance, then either the nil-behavior path (scale-up limit, 5-minute
scale-down stabilization) or the behavior path (stabilization windows and rate policies).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

SYNC_PERIOD_S = 15.0  # §5.5 controller defaults
TOLERANCE = 0.1
DOWNSCALE_STABILIZATION_S = 300.0


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


@dataclass(frozen=True, slots=True)
class HpaBehavior:
    scale_up: ScalingRules
    scale_down: ScalingRules

    @classmethod
    def defaulted(cls, scale_down_stabilization_s: float = DOWNSCALE_STABILIZATION_S) -> HpaBehavior:
        """The API defaults filled into a non-nil behavior (§5.5, `autoscaling/v2/defaults.go`)."""
        return cls(
            scale_up=ScalingRules((ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)), "Max", 0.0),
            scale_down=ScalingRules((ScalingPolicy("Percent", 100, 15),), "Max", scale_down_stabilization_s),
        )


@dataclass(slots=True)
class _Timed:
    at: float
    replicas: int


@dataclass
class HorizontalPodAutoscaler:
    """Desired replicas for `metric` (summed over pods) against an AverageValue `target` per pod."""

    min_replicas: int = 1
    max_replicas: int = 10
    behavior: HpaBehavior | None = None
    sync_period_s: float = SYNC_PERIOD_S
    tolerance: float = TOLERANCE
    downscale_stabilization_s: float = DOWNSCALE_STABILIZATION_S
    _recommendations: deque[_Timed] = field(default_factory=deque)
    _events: deque[tuple[float, int]] = field(default_factory=deque)
    next_sync: float | None = None

    def due(self, now: float) -> bool:
        """True once per sync period."""
        if self.next_sync is not None and now < self.next_sync:
            return False
        self.next_sync = now + self.sync_period_s
        return True

    def raw_desired(self, metric: float, target: float, current: int) -> int:
        """`GetExternalPerPodMetricReplicas`: ceil(usage/target) unless within tolerance of current."""
        if current <= 0:
            return math.ceil(metric / target)
        ratio = metric / (target * current)
        if abs(1.0 - ratio) <= self.tolerance:
            return current
        return math.ceil(metric / target)

    def sync(self, now: float, metric: float, target: float, current: int) -> int:
        """One reconcile: the replica count the HPA writes (== current when it changes nothing)."""
        desired = self.raw_desired(metric, target, current)
        floor = max(self.min_replicas, 1)  # §5.5: clamped to [max(minReplicaCount,1), max]
        if self.behavior is None:
            out = self._nil_behavior(now, desired, current, floor)
        else:
            out = self._with_behavior(now, desired, current, floor, self.behavior)
        if out != current:
            self._events.append((now, out - current))
        return out

    # -- behavior == nil: `normalizeDesiredReplicas` ------------------------------------------------
    def _nil_behavior(self, now: float, desired: int, current: int, floor: int) -> int:
        # Scale-down stabilization: the highest recommendation over the window, this one included.
        self._remember(now, desired, self.downscale_stabilization_s)
        cutoff = now - self.downscale_stabilization_s
        stabilized = max(r.replicas for r in self._recommendations if r.at >= cutoff)
        limit = min(max(2 * current, 4), self.max_replicas)  # calculateScaleUpLimit: max(2×current, 4)
        return max(min(stabilized, limit), floor)

    # -- behavior set: `normalizeDesiredReplicasWithBehaviors` --------------------------------------
    def _with_behavior(self, now: float, desired: int, current: int, floor: int, b: HpaBehavior) -> int:
        up_cut = now - b.scale_up.stabilization_s
        down_cut = now - b.scale_down.stabilization_s
        up_rec, down_rec = desired, desired
        for r in self._recommendations:
            if r.at > up_cut:
                up_rec = min(up_rec, r.replicas)
            if r.at > down_cut:
                down_rec = max(down_rec, r.replicas)
        self._remember(now, desired, max(b.scale_up.stabilization_s, b.scale_down.stabilization_s))
        rec = current
        if rec < up_rec:
            rec = up_rec
        if rec > down_rec:
            rec = down_rec
        if rec > current:
            return max(min(rec, self._up_limit(now, current, b.scale_up)), floor)
        if rec < current:
            return min(max(rec, self._down_limit(now, current, b.scale_down), floor), self.max_replicas)
        return max(min(rec, self.max_replicas), floor)

    def _changed_within(self, now: float, period_s: float, sign: int) -> int:
        return sum(d for at, d in self._events if at > now - period_s and d * sign > 0) * sign

    def _up_limit(self, now: float, current: int, rules: ScalingRules) -> int:
        if rules.select_policy == "Disabled":
            return current
        limits = []
        for p in rules.policies:
            start = current - self._changed_within(now, p.period_s, +1)  # replicas at the period's start
            limits.append(start + p.value if p.type == "Pods" else math.ceil(start * (1 + p.value / 100)))
        limit = max(limits) if rules.select_policy == "Max" else min(limits)
        return min(limit, self.max_replicas)

    def _down_limit(self, now: float, current: int, rules: ScalingRules) -> int:
        if rules.select_policy == "Disabled":
            return current
        limits = []
        for p in rules.policies:
            start = current + self._changed_within(now, p.period_s, -1)
            limits.append(start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100)))
        # selectPolicy Max picks the policy allowing the biggest change, i.e. the lowest count.
        return min(limits) if rules.select_policy == "Max" else max(limits)

    def _remember(self, now: float, replicas: int, keep_s: float) -> None:
        self._recommendations.append(_Timed(now, replicas))
        while len(self._recommendations) > 1 and self._recommendations[0].at < now - keep_s:
            self._recommendations.popleft()
        horizon = max((p.period_s for rules in ((self.behavior.scale_up, self.behavior.scale_down) if self.behavior else ())
                       for p in rules.policies), default=0.0)
        while self._events and self._events[0][0] <= now - horizon:
            self._events.popleft()
