from __future__ import annotations

from pathlib import Path

import pytest

from load.profiles import (Burst, Constant, ProfileError, Ramp, Replay, Step, expected_count, parse_profile, schedule,
                           schedule_array)


def test_constant_schedule_is_evenly_spaced() -> None:
    offs = list(schedule(Constant(10, 2)))
    assert len(offs) == 20
    assert offs[0] == 0.0
    assert all(abs((b - a) - 0.1) < 1e-9 for a, b in zip(offs, offs[1:]))


def test_burst_counts_baseline_plus_spike() -> None:
    p = Burst(baseline=40, height=560, at=15, length=20, duration_s=60)
    assert p.rate(14.99) == 40 and p.rate(15) == 600 and p.rate(34.99) == 600 and p.rate(35) == 40
    assert expected_count(p) == 40 * 60 + 560 * 20
    assert p.disturbance() == (15, 35)


def test_step_and_ramp_rates() -> None:
    s = Step(start=10, step=5, every=2, duration_s=10)
    assert [s.rate(t) for t in (0, 1.9, 2, 9.9)] == [10, 10, 15, 30]
    r = Ramp(start=0, end=100, duration_s=10)
    assert r.rate(5) == 50
    assert abs(expected_count(r) - 500) <= 2  # integral of the ramp


def test_schedule_is_reproducible() -> None:
    p = parse_profile("burst:baseline=5,height=50,at=1,length=1", 3)
    assert list(schedule(p)) == list(schedule(p))


def test_replay_from_csv(tmp_path: Path) -> None:
    trace = tmp_path / "rates.csv"
    trace.write_text("t,rate\n0,10\n2,30\n4,0\n")
    p = parse_profile(f"replay:trace={trace}")
    assert isinstance(p, Replay)
    assert [p.rate(t) for t in (0, 1.5, 2, 3.9, 4.5)] == [10, 10, 30, 30, 0]
    assert expected_count(p) == 2 * 10 + 2 * 30
    assert p.disturbance() == (2, 4)


@pytest.mark.parametrize("spec, cause", [
    ("wave", "unknown profile"),
    ("burst:height", "expected key=value"),
    ("burst:spike=3", "unknown parameter"),
    ("constant:rate=fast", "must be numbers"),
    ("replay", "needs trace"),
    ("constant:rate=-5", "rates must be >= 0"),
    ("constant:rate=inf", "finite number"),
    ("constant:rate=nan", "finite number"),
    ("constant:duration=inf", "finite number"),
    ("constant:rate=1e9", "exceeds the generator's limit"),
    ("constant:rate=900000,duration=3600", "shorten the duration"),
    ("constant:duration=172800", "at most 86,400 s"),
    ("constant:rate=0", "sends no event"),
])
def test_bad_specs_name_the_cause(spec: str, cause: str) -> None:
    with pytest.raises(ProfileError, match=cause):
        parse_profile(spec)


@pytest.mark.parametrize("profile", [
    Constant(333, 3), Burst(baseline=7, height=560, at=1.5, length=2.2, duration_s=5), Ramp(3, 900, 4.3),
    Step(start=11, step=37, every=0.7, duration_s=3), Constant(0.5, 9),
])
def test_schedule_array_is_the_schedule_value_for_value(profile) -> None:
    assert schedule_array(profile).tolist() == list(schedule(profile))
