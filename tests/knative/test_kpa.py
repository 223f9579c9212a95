"""KPA policy against counts worked out by hand from the upstream rules (knative.md §3.3)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.autoscale.kpa import Activity, KpaDecider, KpaSettings, PodAutoscaler
from pipeline.topology import load_topology

# target 10, utilization 1.0 → TargetValue = TotalValue = 10; easy arithmetic.
BASE = KpaSettings(target=10, target_utilization=1.0, window_s=60, target_burst_capacity=0)


def feed(d: KpaDecider | PodAutoscaler, start: int, stop: int, value: float) -> None:
    """One observation per second for seconds start..stop-1."""
    for t in range(start, stop):
        d.observe(t + 0.5, value)


def test_targets_from_the_reference_stage() -> None:
    s = KpaSettings.for_stage(load_topology().stage("score"))
    # target 4, CC 4: total = min(4, 4) = 4; TargetValue = 4 × 0.7 = 2.8; panic window = round(60 × 10%) = 6 s.
    assert s.total_value == 4 and s.target_value == pytest.approx(2.8)
    assert s.panic_window_s == 6 and s.panic_threshold == 2.0
    # CC caps the target: target 10 with CC 3 → total 3.
    assert KpaSettings(target=10, container_concurrency=3).total_value == 3
    # panic window has a 1 s floor: round(6 × 1%) = 0 → 1.
    assert KpaSettings(window_s=6, panic_window_percentage=1).panic_window_s == 1


def test_steady_load_gives_ceil_of_concurrency_over_target() -> None:
    d = KpaDecider(BASE)
    feed(d, 0, 60, 35)
    dec = d.decide(60, ready=4)
    # stable = panic = 35 → ceil(35 / 10) = 4; 4 / 4 = 1 < 2: no panic.
    assert (dec.desired, dec.panic) == (4, False)
    assert dec.stable_concurrency == pytest.approx(35)


def test_burst_enters_panic_holds_then_leaves_after_a_stable_window() -> None:
    d = KpaDecider(BASE)
    feed(d, 0, 54, 0)
    feed(d, 54, 60, 50)
    dec = d.decide(60, ready=1)
    # stable = 6 × 50 / 60 = 5 → 1 pod; panic (6 s) = 50 → 5 pods; 5 / 1 >= 2 → panic, desired 5.
    assert (dec.desired, dec.panic) == (5, True)
    assert dec.panic_concurrency == pytest.approx(50)
    feed(d, 60, 66, 0)
    dec = d.decide(66, ready=5)
    # Load gone, but no scale-down while panicking (entered at 60; leaves only after 60 + 60 s).
    assert (dec.desired, dec.panic) == (5, True)
    feed(d, 66, 121, 0)
    dec = d.decide(121, ready=5)
    # 60 + 60 < 121: panic over; stable 0 → 0 pods, but at most floor(5 / 2) = 2 pods go: 5 → ... max(0, 2) = 2.
    assert (dec.desired, dec.panic) == (2, False)


def test_scale_down_rate_halves_at_most() -> None:
    d = KpaDecider(BASE)
    feed(d, 0, 60, 0)
    # maxScaleDown = floor(ready / 2): 10 → 5, 5 → 2, 2 → 1, 1 → 0.
    assert [d.decide(60, ready=r).desired for r in (10, 5, 2, 1)] == [5, 2, 1, 0]


def test_scale_up_rate_caps_growth() -> None:
    d = KpaDecider(replace(BASE, max_scale_up_rate=2))
    feed(d, 0, 60, 200)
    # 200 / 10 = 20 pods wanted; ceil(2 × 3 ready) = 6 allowed.
    assert d.decide(60, ready=3).desired == 6


def test_scale_down_delay_keeps_the_trailing_maximum() -> None:
    fast = replace(BASE, window_s=6)  # panic window round(0.6) → 1 s
    delayed, plain = KpaDecider(replace(fast, scale_down_delay_s=10)), KpaDecider(fast)
    for d in (delayed, plain):
        feed(d, 0, 6, 35)
    assert delayed.decide(6, ready=4).desired == plain.decide(6, ready=4).desired == 4
    for d in (delayed, plain):
        feed(d, 6, 13, 0)
    # stable 0; floor(4 / 2) = 2 → 2 without delay; with delay the 4 decided at 6 is within 10 s of 13.
    assert plain.decide(13, ready=4).desired == 2
    assert delayed.decide(13, ready=4).desired == 4
    feed(delayed, 13, 17, 0)
    # At 16 the decision at 6 has left the window (6 <= 16 - 10): the max of the rest is 2.
    assert delayed.decide(16, ready=4).desired == 2


def test_window_shorter_than_its_length_averages_over_observed_seconds() -> None:
    d = KpaDecider(BASE)
    feed(d, 0, 10, 30)
    # 10 s observed of a 60 s window: average over the 10 observed seconds, not 60.
    assert d.decide(10, ready=3).desired == 3


def ticks(pa: PodAutoscaler, start: int, stop: int, ready: int | None = None) -> dict[int, int]:
    """Tick every 2 s with `ready` pods (default: whatever the KPA asked for at the previous tick)."""
    out = {}
    for t in range(start, stop, 2):
        out[t] = pa.tick(t, pa.replicas if ready is None else ready).replicas
    return out


def test_scale_to_zero_after_window_then_grace_period() -> None:
    pa = PodAutoscaler(replace(BASE, window_s=6), now=0)
    assert pa.tick(0, ready=0).replicas == 1  # initial-scale 1 while activating
    feed(pa, 0, 20, 5)
    seen = ticks(pa, 2, 26)
    assert set(seen.values()) == {1}
    assert pa.activity is Activity.ACTIVE
    feed(pa, 20, 80, 0)
    # Last traffic at second 19: the 6 s window is empty at 26 → want 0, PA marked inactive, pod kept;
    # it goes to zero once inactive for the 30 s grace period: 26 + 30 = 56.
    seen = ticks(pa, 26, 60)
    assert pa.activity is Activity.INACTIVE
    assert seen[54] == 1 and seen[56] == 0


def test_activator_in_path_for_the_grace_period_allows_zero_sooner() -> None:
    # TBC 211 with 10 per pod: EBC = 1 × 10 − 211 < 0, so the activator stayed in the path from the start.
    pa = PodAutoscaler(replace(BASE, window_s=6, target_burst_capacity=211), now=0)
    feed(pa, 0, 40, 0)  # idle, but scraped: the decider has data
    seen = ticks(pa, 0, 40)
    # Active from t=2 (first ready); want 0 at t=8 (active for 6 s); proxied since 0 → zero at 30, not 38.
    assert seen[8] == 1 and seen[28] == 1 and seen[30] == 0


def test_no_scale_to_zero_when_disabled_and_bounds_apply() -> None:
    pa = PodAutoscaler(replace(BASE, window_s=6, enable_scale_to_zero=False), now=0)
    assert ticks(pa, 0, 60)[58] == 1
    bounded = PodAutoscaler(replace(BASE, window_s=6, min_scale=2, max_scale=3), now=0)
    feed(bounded, 0, 10, 100)  # 100 / 10 = 10 pods wanted
    seen = ticks(bounded, 0, 10)
    assert seen[8] == 3
    feed(bounded, 10, 80, 0)
    assert ticks(bounded, 10, 80)[78] == 2  # never below min-scale


def test_initial_scale_holds_until_first_reached() -> None:
    pa = PodAutoscaler(replace(BASE, window_s=6, initial_scale=3), now=0)
    feed(pa, 0, 8, 0)  # idle, but scraped: the decider has data
    assert pa.tick(0, ready=0).replicas == 3
    assert pa.tick(2, ready=2).replicas == 3  # not yet reached: the minimum is still 3
    pa.tick(4, ready=3)  # reached
    # No load: back to the 1-pod floor of an active revision (scaler.go: until active for the window).
    assert pa.tick(6, ready=3).replicas == 1


def test_excess_burst_capacity_puts_the_activator_in_the_path() -> None:
    def decision(tbc: float, ready: int, load: float) -> tuple[int, bool]:
        pa = PodAutoscaler(replace(BASE, target_burst_capacity=tbc), now=0)
        feed(pa, 0, 10, load)
        pa.tick(0, ready=ready)
        d = pa.tick(10, ready=ready)
        return d.excess_burst_capacity, d.activator_in_path

    # EBC = floor(ready × TotalValue − TBC − panic load)
    assert decision(211, ready=3, load=5) == (30 - 211 - 5, True)
    assert decision(20, ready=3, load=5) == (5, False)
    assert decision(0, ready=3, load=5) == (0, False)
    assert decision(-1, ready=3, load=5) == (-1, True)
    assert decision(0, ready=0, load=5)[1] is True  # nothing ready: the activator buffers


def test_fresh_autoscaler_with_several_ready_pods_starts_in_panic() -> None:
    d = KpaDecider(BASE, ready_at_start=4, now=0)
    feed(d, 0, 10, 0)
    assert d.decide(10, ready=4).desired == 4  # no scale-down while in the start-up panic
