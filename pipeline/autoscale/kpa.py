"""The Knative Pod Autoscaler (KPA) as a pure policy: observations and time in, a decision out.

Two parts, as upstream: the *decider* (serving `pkg/autoscaler/scaling/autoscaler.go` `Scale`) turns
windowed concurrency into a desired pod count and the excess burst capacity; the *scaler*
(`pkg/reconciler/autoscaling/kpa/scaler.go`, `kpa.go`) applies min/max/initial scale, the
scale-to-zero rules and chooses whether the activator sits in the request path.
No clock reads, no I/O: the caller passes `now` (seconds, any monotonic origin).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum

from pipeline.topology import Stage

TICK_S = 2.0
"""knative.md §3.3: decision tick `tickInterval = 2 * time.Second`."""


@dataclass(frozen=True)
class KpaSettings:
    """The per-revision annotations and cluster keys the KPA reads (knative.md §3.1), upstream defaults."""

    target: float = 100.0
    """autoscaling.knative.dev/target (concurrency per pod); cluster default 100."""
    container_concurrency: int = 0
    target_utilization: float = 0.7
    window_s: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    scale_down_delay_s: float = 0.0
    min_scale: int = 0
    max_scale: int = 0
    """0 = unbounded (knative.md §3.1)."""
    initial_scale: int = 1
    activation_scale: int = 1
    target_burst_capacity: float = 211.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    enable_scale_to_zero: bool = True
    scale_to_zero_grace_period_s: float = 30.0
    scale_to_zero_pod_retention_period_s: float = 0.0

    @classmethod
    def for_stage(cls, stage: Stage) -> KpaSettings:
        k = stage.knative
        return cls(target=k.target, container_concurrency=stage.concurrency, target_utilization=k.target_utilization,
                   window_s=k.window_s, panic_window_percentage=k.panic_window_percentage,
                   panic_threshold_percentage=k.panic_threshold_percentage, scale_down_delay_s=k.scale_down_delay_s,
                   min_scale=stage.min_replicas, max_scale=stage.max_replicas, initial_scale=k.initial_scale,
                   target_burst_capacity=k.target_burst_capacity)

    @property
    def total_value(self) -> float:
        """knative.md §3.3 ResolveMetricTarget: total = min(target, CC) when CC > 0, else target."""
        return min(self.target, self.container_concurrency) if self.container_concurrency > 0 else self.target

    @property
    def target_value(self) -> float:
        """knative.md §3.3: TargetValue = max(0.01, total × target utilization)."""
        return max(0.01, self.total_value * self.target_utilization)

    @property
    def panic_window_s(self) -> float:
        """knative.md §3.3: panic window = round(stable × pct / 100), at least 1 s."""
        return max(1.0, float(round(self.window_s * self.panic_window_percentage / 100.0)))

    @property
    def panic_threshold(self) -> float:
        return self.panic_threshold_percentage / 100.0


class WindowedAverage:
    """Concurrency in 1 s buckets, averaged over a trailing window (serving TimedFloat64Buckets.WindowAverage).

    As upstream, seconds after the last write are not counted (they are not filled yet), a window
    younger than its length is averaged over the seconds seen so far, and a window with no write
    at all is 0. Samples landing in the same second are averaged (upstream scrapes once a second).
    """

    def __init__(self, window_s: float) -> None:
        self.window = max(1, int(window_s))
        self._buckets: dict[int, tuple[float, int]] = {}
        self._first: int | None = None
        self._last: int | None = None

    def record(self, now: float, value: float) -> None:
        sec = math.floor(now)
        total, n = self._buckets.get(sec, (0.0, 0))
        self._buckets[sec] = (total + value, n + 1)
        if self._first is None:
            self._first = sec
        self._last = sec if self._last is None else max(self._last, sec)
        for old in [s for s in self._buckets if s <= self._last - self.window]:
            del self._buckets[old]

    def average(self, now: float) -> float:
        if self._first is None or self._last is None:
            return 0.0
        sec = math.floor(now)
        idle = max(sec - self._last, 0)
        if idle >= self.window:
            return 0.0
        inside = [t / n for s, (t, n) in self._buckets.items() if sec - self.window < s <= sec]
        span = min(self._last - self._first + 1, self.window - idle)
        return sum(inside) / span


@dataclass(frozen=True, slots=True)
class Decision:
    """What the decider concluded at one tick."""

    desired: int
    excess_burst_capacity: int
    panic: bool
    stable_concurrency: float
    panic_concurrency: float


class KpaDecider:
    """autoscaler.go `Scale`: stable/panic windows, rate limits, panic mode, scale-down delay, EBC."""

    def __init__(self, settings: KpaSettings, ready_at_start: int = 0, now: float = 0.0) -> None:
        self.s = settings
        self.stable = WindowedAverage(settings.window_s)
        self.panic = WindowedAverage(settings.panic_window_s)
        self._panic_since: float | None = None
        self._max_panic_pods = 0
        self._delay: deque[tuple[float, int]] = deque()
        if ready_at_start > 1:
            # knative.md §3.3: a fresh autoscaler with more than one ready pod starts in panic mode.
            self._panic_since, self._max_panic_pods = now, ready_at_start

    def observe(self, now: float, concurrency: float) -> None:
        """Revision-wide average concurrency over the last second (queue-proxies plus activator)."""
        self.stable.record(now, concurrency)
        self.panic.record(now, concurrency)

    @property
    def in_panic(self) -> bool:
        return self._panic_since is not None

    def decide(self, now: float, ready: int) -> Decision:
        s = self.s
        ready_f = max(1.0, float(ready))
        max_up = math.ceil(s.max_scale_up_rate * ready_f)
        max_down = math.floor(ready_f / s.max_scale_down_rate)  # the revision is reachable (routed)
        stable, panic = self.stable.average(now), self.panic.average(now)
        dspc = math.ceil(stable / s.target_value)
        dppc = math.ceil(panic / s.target_value)
        desired_stable = int(min(max(dspc, max_down), max_up))
        desired_panic = int(min(max(dppc, max_down), max_up))
        if s.activation_scale > 1:
            if dspc > 0:
                desired_stable = max(desired_stable, s.activation_scale)
            if dppc > 0:
                desired_panic = max(desired_panic, s.activation_scale)

        over = dppc / ready_f >= s.panic_threshold
        if over:
            self._panic_since = now  # enter, or extend while still over
        elif self._panic_since is not None and self._panic_since + s.window_s < now:
            self._panic_since, self._max_panic_pods = None, 0  # the surge is in the stable window now

        desired = desired_stable
        if self._panic_since is not None:
            desired = max(desired, desired_panic)
            # Never scale down in panic: hold the most pods asked for since panic began.
            self._max_panic_pods = max(self._max_panic_pods, desired)
            desired = self._max_panic_pods

        if s.scale_down_delay_s > 0:
            # Max over the trailing scale-down-delay window (a TimeWindow with tick granularity).
            self._delay.append((now, desired))
            while self._delay and self._delay[0][0] <= now - s.scale_down_delay_s:
                self._delay.popleft()
            desired = max(d for _, d in self._delay)

        if s.target_burst_capacity == 0:
            ebc = 0
        elif s.target_burst_capacity > 0:
            ebc = math.floor(ready * s.total_value - s.target_burst_capacity - panic)
        else:
            ebc = -1
        return Decision(desired, ebc, self._panic_since is not None, stable, panic)


class Activity(Enum):
    ACTIVATING = "activating"
    ACTIVE = "active"
    INACTIVE = "inactive"


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    """One KPA tick: the pod count to run and whether the activator must be in the request path."""

    replicas: int
    """What the Deployment is scaled to (unchanged while a scale-to-zero waits)."""
    want: int
    desired: int
    """The decider's raw count (before bounds and scale-to-zero)."""
    panic: bool
    excess_burst_capacity: int
    activator_in_path: bool
    """SKS Proxy mode: want 0, negative excess burst capacity, or no ready pod."""
    activity: Activity


class PodAutoscaler:
    """One revision's KPA: the decider plus kpa.go/scaler.go (bounds, initial scale, scale to zero, SKS mode)."""

    def __init__(self, settings: KpaSettings, now: float = 0.0, ready_at_start: int = 0) -> None:
        self.s = settings
        self.decider = KpaDecider(settings, ready_at_start, now)
        self.replicas = 0
        self.activity = Activity.ACTIVATING
        self._active_since: float | None = None
        self._inactive_since: float | None = None
        self._proxy_since: float | None = now
        self._initialized = False

    def observe(self, now: float, concurrency: float) -> None:
        self.decider.observe(now, concurrency)

    def tick(self, now: float, ready: int) -> ScaleDecision:
        s = self.s
        d = self.decider.decide(now, ready)
        want, apply = self._bounded(d.desired), True
        if want == 0:
            want, apply = self._scale_to_zero(now)
        if apply:
            self.replicas = want
        self._update_activity(now, want, ready)
        # kpa.go: Proxy when want == 0 or EBC < 0; the SKS also falls back to the activator with no ready pod.
        proxy = want == 0 or d.excess_burst_capacity < 0 or ready == 0 or s.target_burst_capacity == -1
        if proxy and self._proxy_since is None:
            self._proxy_since = now
        elif not proxy:
            self._proxy_since = None
        return ScaleDecision(self.replicas, want, d.desired, d.panic, d.excess_burst_capacity, proxy, self.activity)

    def _bounded(self, desired: int) -> int:
        s = self.s
        low, high = s.min_scale, s.max_scale
        if s.initial_scale > 1 and not self._initialized:
            low = max(low, s.initial_scale)  # scaler.go: initial scale raises the minimum until first reached
        if not self._initialized and self.activity is Activity.ACTIVATING and desired == 0:
            desired = s.initial_scale  # a new revision starts at initial-scale
        if high > 0:
            desired = min(desired, high)
        return max(desired, low)

    def _scale_to_zero(self, now: float) -> tuple[int, bool]:
        """scaler.go handleScaleToZero: returns (want, apply)."""
        s = self.s
        if not s.enable_scale_to_zero:
            return 1, True
        if self.activity is Activity.ACTIVATING:
            return self.replicas, False  # wait until activation finishes (its timeout is 630 s)
        if self.activity is Activity.ACTIVE:
            active_for = now - (self._active_since or now)
            if active_for >= s.window_s:
                return 0, False  # marks the PA inactive; pods stay for the grace period
            return 1, True
        inactive_for = now - (self._inactive_since or now)
        retention = s.scale_to_zero_pod_retention_period_s
        if inactive_for >= max(s.scale_to_zero_grace_period_s, retention):
            return 0, True
        if retention > inactive_for:
            return 0, False
        proxy_for = 0.0 if self._proxy_since is None else now - self._proxy_since
        return 0, proxy_for > 0 and proxy_for >= s.scale_to_zero_grace_period_s

    def _update_activity(self, now: float, want: int, ready: int) -> None:
        """kpa.go computeActiveCondition."""
        min_ready = max(1, self.s.min_scale)
        if not self._initialized:
            min_ready = max(min_ready, self.s.initial_scale)
        if ready >= min_ready:
            self._initialized = True
        if want == 0:
            if self.activity is not Activity.INACTIVE:
                self._inactive_since = now
            self.activity, self._active_since = Activity.INACTIVE, None
        elif ready < min_ready:
            if want > 0 or self.activity is not Activity.INACTIVE:
                self.activity, self._active_since = Activity.ACTIVATING, None
        elif want > 0 or self.activity is not Activity.INACTIVE:
            if self.activity is not Activity.ACTIVE:
                self._active_since = now
            self.activity, self._inactive_since = Activity.ACTIVE, None
