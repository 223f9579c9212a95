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
ACTIVATION_TIMEOUT_BUFFER_S = 30.0
"""kpa/scaler.go `activationTimeoutBuffer`: added to the progress deadline before activation fails."""
SCALE_UNKNOWN = -1
"""kpa/scaler.go `scaleUnknown`: no decision (no metrics yet, or activating): nothing is applied."""


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
    progress_deadline_s: float = 600.0
    """config-deployment progress-deadline (or the revision's annotation); a revision stuck activating this
    long plus ACTIVATION_TIMEOUT_BUFFER_S goes to zero (knative.md §3.3)."""

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

    def is_empty(self, now: float) -> bool:
        """bucketing.go `IsEmpty`: nothing recorded within the window before `now`."""
        return self._last is None or math.floor(now) - self._last > self.window

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
    valid: bool = True
    """False: no metrics to scale on (autoscaler.go returns an invalid result; the last valid one stands)."""


class KpaDecider:
    """autoscaler.go `Scale`: stable/panic windows, rate limits, panic mode, scale-down delay, EBC.

    `desired_scale` and `excess_burst_capacity` are the Decider's status (multiscaler.go): −1 and the
    initial-scale capacity until the first valid decision, then the last valid one.
    """

    def __init__(self, settings: KpaSettings, ready_at_start: int = 0, now: float = 0.0) -> None:
        self.s = settings
        self.stable = WindowedAverage(settings.window_s)
        self.panic = WindowedAverage(settings.panic_window_s)
        self._panic_since: float | None = None
        # autoscaler.go newAutoscaler: maxPanicPods starts at the ready count; more than one pod starts in panic
        # mode, so a restarted autoscaler keeps the current scale until it has data (knative.md §3.3).
        self._max_panic_pods = ready_at_start
        if ready_at_start > 1:
            self._panic_since = now
        self._delay: deque[tuple[float, int]] = deque()
        self.desired_scale = SCALE_UNKNOWN
        tbc = settings.target_burst_capacity
        # multiscaler.go createScaler: the initial EBC says whether initial-scale covers the burst capacity.
        self.excess_burst_capacity = int(tbc) if tbc in (-1, 0) else int(
            settings.initial_scale * settings.total_value - tbc)

    def observe(self, now: float, concurrency: float) -> None:
        """Revision-wide average concurrency over the last second (queue-proxies plus activator)."""
        self.stable.record(now, concurrency)
        self.panic.record(now, concurrency)

    @property
    def in_panic(self) -> bool:
        return self._panic_since is not None

    @property
    def max_panic_pods(self) -> int:
        return self._max_panic_pods

    def decide(self, now: float, ready: int, reachable: bool = True) -> Decision:
        s = self.s
        # collector.go: no stat within the stable window is ErrNoData (unless the pods are not scraped, TBC −1).
        if self.stable.is_empty(now) and s.target_burst_capacity != -1:
            return Decision(SCALE_UNKNOWN, self.excess_burst_capacity, self.in_panic, 0.0, 0.0, valid=False)
        return self.decide_observed(now, ready, self.stable.average(now), self.panic.average(now), reachable)

    def decide_observed(self, now: float, ready: int, stable: float, panic: float, reachable: bool = True) -> Decision:
        """`Scale` from the stable and panic values the metric client returned."""
        s = self.s
        ready_f = max(1.0, float(ready))
        max_up = math.ceil(s.max_scale_up_rate * ready_f)
        # An unreachable revision (no route) may drop every pod at once.
        max_down = math.floor(ready_f / s.max_scale_down_rate) if reachable else 0
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

        if reachable and s.scale_down_delay_s > 0:
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
        self.desired_scale, self.excess_burst_capacity = desired, ebc
        return Decision(desired, ebc, self._panic_since is not None, stable, panic)


class Activity(Enum):
    ACTIVATING = "activating"
    ACTIVE = "active"
    INACTIVE = "inactive"


@dataclass(frozen=True, slots=True)
class PaStatus:
    """What the PodAutoscaler status holds when the scaler runs."""

    activity: Activity
    since: float
    """When the Active condition last changed (ActiveFor / InactiveFor / activating for)."""
    initialized: bool = False
    """ScaleTargetInitialized: initial scale was reached once."""
    proxy_since: float | None = None
    """Since when the SKS has the activator in the path (ProxyFor); None: serving."""


def apply_bounds(low: int, high: int, x: int) -> int:
    """scaler.go `applyBounds`: max 0 is unbounded."""
    if x < low:
        return low
    if high != 0 and x > high:
        return high
    return x


def scale(s: KpaSettings, desired: int, now: float, pa: PaStatus, *, reachable: bool = True,
          activator_probe_ok: bool = True) -> tuple[int, bool]:
    """kpa/scaler.go `scale` without the write: (want, apply the want to the Deployment).

    want −1 (SCALE_UNKNOWN) means no decision: the Deployment keeps its replicas.
    """
    if desired < 0 and pa.activity is not Activity.ACTIVATING:
        return desired, False  # no metrics yet
    low = s.min_scale if reachable else 0  # an unreachable revision ignores min-scale
    if s.initial_scale > 1 and not pa.initialized and reachable:
        low = max(low, s.initial_scale)  # initial scale raises the minimum until first reached
    return _handle_scale_to_zero(s, apply_bounds(low, s.max_scale, desired), now, pa, reachable,
                                 activator_probe_ok)


def _handle_scale_to_zero(s: KpaSettings, desired: int, now: float, pa: PaStatus, reachable: bool,
                          activator_probe_ok: bool) -> tuple[int, bool]:
    """scaler.go `handleScaleToZero` (knative.md §3.3)."""
    if desired != 0:
        return desired, True
    if not s.enable_scale_to_zero:
        return 1, True
    in_status_for = now - pa.since
    if pa.activity is Activity.ACTIVATING:
        # Stuck activating past the progress deadline plus the buffer: presume it cannot succeed, go to 0.
        if in_status_for > s.progress_deadline_s + ACTIVATION_TIMEOUT_BUFFER_S:
            return 0, True
        return SCALE_UNKNOWN, False
    if pa.activity is Activity.ACTIVE:
        if in_status_for >= s.window_s:
            return 0, False  # marks the PA inactive; pods stay for the grace period
        return 1, True
    # Inactive: only once the activator is in the path (probed, unless TBC −1 guarantees it).
    if not (s.target_burst_capacity == -1 or activator_probe_ok):
        return 0, False
    retention = s.scale_to_zero_pod_retention_period_s if reachable else 0.0
    if in_status_for >= max(s.scale_to_zero_grace_period_s, retention):
        return 0, True
    if retention > 0 and in_status_for < retention:
        return 0, False  # the last pod's retention is a hard minimum
    proxy_for = 0.0 if pa.proxy_since is None else now - pa.proxy_since
    return 0, s.scale_to_zero_grace_period_s - proxy_for <= 0


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    """One KPA tick: the pod count to run and whether the activator must be in the request path."""

    replicas: int
    """What the Deployment is scaled to (unchanged while a scale-to-zero waits or there is no decision)."""
    want: int
    """The scaler's answer; −1: no decision, nothing applied."""
    desired: int
    """The decider's count (before bounds and scale-to-zero); −1 until it has metrics."""
    panic: bool
    excess_burst_capacity: int
    activator_in_path: bool
    """SKS Proxy mode: not (want > 0 and EBC ≥ 0), or no ready pod."""
    activity: Activity


class PodAutoscaler:
    """One revision's KPA: the decider plus kpa.go/scaler.go (bounds, initial scale, scale to zero, SKS mode)."""

    def __init__(self, settings: KpaSettings, now: float = 0.0, ready_at_start: int = 0) -> None:
        self.s = settings
        self.decider = KpaDecider(settings, ready_at_start, now)
        # revision resources/deploy.go: the Deployment is created with initial-scale replicas.
        self.replicas = settings.initial_scale
        self.activity = Activity.ACTIVATING  # the Active condition starts Unknown
        self._since = now
        self._initialized = False
        self._proxy_since: float | None = now

    def observe(self, now: float, concurrency: float) -> None:
        self.decider.observe(now, concurrency)

    @property
    def status(self) -> PaStatus:
        return PaStatus(self.activity, self._since, self._initialized, self._proxy_since)

    def tick(self, now: float, ready: int, *, reachable: bool = True, activator_probe_ok: bool = True) -> ScaleDecision:
        """`reachable`: the revision has route traffic (PA spec.reachability); `activator_probe_ok`: the
        activator answered the probe for this revision (scale to zero waits until it does)."""
        d = self.decider.decide(now, ready, reachable)
        desired, ebc = self.decider.desired_scale, self.decider.excess_burst_capacity
        want, apply = scale(self.s, desired, now, self.status, reachable=reachable,
                            activator_probe_ok=activator_probe_ok)
        if apply:
            self.replicas = want
        self._update_activity(now, want, ready, reachable)
        # kpa.go: Serve only when want > 0 and EBC ≥ 0; the SKS also falls back to the activator with no ready pod.
        proxy = not (want > 0 and ebc >= 0) or ready == 0
        if proxy and self._proxy_since is None:
            self._proxy_since = now
        elif not proxy:
            self._proxy_since = None
        return ScaleDecision(self.replicas, want, desired, d.panic, ebc, proxy, self.activity)

    def _mark(self, now: float, activity: Activity) -> None:
        if activity is not self.activity:
            self.activity, self._since = activity, now

    def _update_activity(self, now: float, want: int, ready: int, reachable: bool) -> None:
        """kpa.go computeActiveCondition and activeThreshold."""
        low = self.s.min_scale if reachable else 0
        min_ready = max(low, self.s.initial_scale) if not self._initialized else max(low, 1)
        if ready >= min_ready:
            self._initialized = True
        if want == 0 or min_ready == 0:
            self._mark(now, Activity.INACTIVE)
        elif ready < min_ready:
            if want > 0 or self.activity is not Activity.INACTIVE:
                self._mark(now, Activity.ACTIVATING)
            else:
                self._mark(now, Activity.INACTIVE)
        elif want > 0 or self.activity is not Activity.INACTIVE:
            self._mark(now, Activity.ACTIVE)
