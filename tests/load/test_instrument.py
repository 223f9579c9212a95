from __future__ import annotations

import json
from dataclasses import replace

import pytest

from load.instrument import (CpuPoint, InstrumentThresholds, StageSecond, classify, judge_stage,
                             stage_capacity_eps)

TH = InstrumentThresholds()
QUIET = {"lagduel": 0.2, "broker": 0.3, "replicas": 0.2, "other": 0.1}
BUSY = {"lagduel": 0.4, "broker": 0.5, "replicas": 1.0, "other": 0.0}


def cpu(busy: list[float], groups: dict[str, float] = QUIET) -> list[CpuPoint]:
    return [CpuPoint(t=float(i + 1), busy_share=b, groups=groups) for i, b in enumerate(busy)]


def stage(backlog: list[int], achieved: float | list[float], capacity: float | None,
          ready: int = 2) -> list[StageSecond]:
    rates = achieved if isinstance(achieved, list) else [achieved] * len(backlog)
    return [StageSecond(t=float(i), ready=ready, capacity_eps=capacity, achieved_eps=r, backlog=b)
            for i, (b, r) in enumerate(zip(backlog, rates))]


def quiet_stage() -> list[StageSecond]:
    return stage([20, 25, 18, 30, 22, 19, 24, 20, 21, 26], achieved=300.0, capacity=1000.0)


def run(cpu_points: list[CpuPoint] | None = None, behind: bool = False, reason: str = "",
        stages: dict[str, list[StageSecond]] | None = None, disturbance: tuple[float, float] = (5.0, 25.0)):
    return classify(cpu_points if cpu_points is not None else cpu([0.3] * 30), disturbance, behind, reason,
                    stages if stages is not None else {"validate": quiet_stage(), "score": quiet_stage()})


@pytest.mark.parametrize(("ready", "concurrency", "service_s", "cap", "expected"), [
    (2, 4, 0.010, None, 800.0),
    (1, 1, 0.5, None, 2.0),
    (0, 4, 0.010, None, 0.0),  # no replica: nothing to serve with
    (3, 4, 0.0, None, None),  # zero service time: the model sets no limit
    (0, 4, 0.0, None, 0.0),
    (5, 4, 0.010, 8, 800.0),  # a dispatcher holding at most 8 in flight
])
def test_stage_capacity(ready: int, concurrency: int, service_s: float, cap: int | None,
                        expected: float | None) -> None:
    assert stage_capacity_eps(ready, concurrency, service_s, cap) == expected


def test_quiet_run_is_not_bound() -> None:
    v = run()
    assert not v.bound and v.reasons == ()
    assert v.cpu_busy_p95 == pytest.approx(0.3)
    assert v.cpu_groups_mean == pytest.approx(QUIET)
    assert all(not s.bound and s.growth_seconds == 0 for s in v.stages.values())
    assert v.stages["score"].capacity_eps == 1000.0 and v.stages["score"].achieved_eps == 300.0


def test_saturated_disturbance_is_bound_with_the_figures() -> None:
    # 30 s run, disturbance 5..25 s: 14 of its 20 seconds at 95 %, the rest quiet.
    busy = [0.3] * 5 + [0.95] * 14 + [0.4] * 11
    points = [CpuPoint(float(i + 1), b, BUSY if b > 0.9 else QUIET) for i, b in enumerate(busy)]
    v = run(points)
    assert v.bound
    assert v.reasons == ("machine CPU ≥ 90% busy for 14 of 20 s of the disturbance "
                         "(cores: replicas 1.0, broker 0.5, lagduel 0.4)",)
    assert v.cpu_busy_p95 == 0.95


def test_saturation_outside_the_disturbance_or_brief_is_not_bound() -> None:
    assert not run(cpu([0.95] * 5 + [0.3] * 25)).bound  # before the window: warm-up, not the measurement
    assert not run(cpu([0.3] * 5 + [0.95] * 3 + [0.3] * 22)).bound  # 3 of 20 s: a scale-out's imports


def test_steady_profile_judges_the_whole_run() -> None:
    v = run(cpu([0.95] * 10 + [0.3] * 20), disturbance=(0.0, 0.0))
    assert v.bound and "10 of 30 s of the run" in v.reasons[0]


def test_generator_behind_is_bound() -> None:
    v = run(behind=True, reason="BEHIND SCHEDULE: 2.4% of events sent more than 25 ms late (limit 1.0%)")
    assert v.bound
    assert v.reasons == ("generator behind schedule: 2.4% of events sent more than 25 ms late (limit 1.0%)",)


def test_stage_short_of_capacity_while_its_backlog_grows_is_bound() -> None:
    # Arrivals 800/s, the stage finishes 212/s against a modeled 1,000/s: backlog grows ~600/s for 9 s.
    growing = stage([0] + [600 * k for k in range(1, 10)], achieved=212.0, capacity=1000.0)
    v = run(stages={"validate": quiet_stage(), "score": growing})
    assert v.bound and not v.stages["validate"].bound
    assert v.reasons == ("stage score processed 212 ev/s against a modeled capacity of 1,000 ev/s "
                         "while its backlog grew (9 s)",)
    assert v.stages["score"].growth_seconds == 9


def test_stage_at_capacity_while_its_backlog_grows_is_the_system_under_test() -> None:
    growing = stage([0] + [600 * k for k in range(1, 10)], achieved=950.0, capacity=1000.0)
    v = run(stages={"score": growing})
    # the first second's 600 is within one commit interval of 950 ev/s; two seconds' 1,200 is not
    assert not v.bound and v.stages["score"].growth_seconds == 8


def test_stage_without_ready_replicas_is_never_bound() -> None:
    cold = stage([0] + [600 * k for k in range(1, 10)], achieved=0.0, capacity=0.0, ready=0)
    v = run(stages={"score": cold})
    assert not v.bound and v.stages["score"].growth_seconds == 9 and v.stages["score"].capacity_eps == 0.0


def test_unbounded_capacity_with_a_growing_backlog_is_bound() -> None:
    growing = stage([0] + [600 * k for k in range(1, 10)], achieved=400.0, capacity=None)
    v = run(stages={"score": growing})
    assert v.bound and v.stages["score"].capacity_eps is None
    assert v.reasons[0].startswith("stage score processed 400 ev/s while its backlog grew (9 s)")


def test_shrinking_backlog_below_capacity_is_just_little_work() -> None:
    draining = stage([5000 - 400 * k for k in range(10)], achieved=100.0, capacity=1000.0)
    v = run(stages={"score": draining})
    assert not v.bound and v.stages["score"].growth_seconds == 0


def test_commit_steps_are_not_growth() -> None:
    # 500 ev/s, committed once a second: the lag read between commits jumps by up to 500 and back.
    sawtooth = stage([40, 520, 60, 530, 50, 540, 45, 500, 55, 510, 40, 520], achieved=500.0, capacity=2000.0)
    assert judge_stage(sawtooth, TH).growth_seconds == 0


def test_a_trigger_s_uncommitted_filtered_records_are_not_growth() -> None:
    # A Knative Trigger reads the whole broker topic: it finishes its own 200 ev/s, but commits 800 records/s
    # of every type once a second, so its lag steps by up to 800 between commits without falling behind.
    seconds = [StageSecond(t=float(i), ready=1, capacity_eps=800.0, achieved_eps=200.0, backlog=b, consumed_eps=800.0)
               for i, b in enumerate([40, 700, 90, 780, 60, 760, 50, 800, 70, 790])]
    assert judge_stage(seconds, TH).growth_seconds == 0
    # Judged by its own events alone, the same readings look like a stage a quarter short of its capacity.
    own_only = [replace(s, consumed_eps=0.0) for s in seconds]
    assert judge_stage(own_only, TH).growth_seconds > 0


def test_a_few_short_seconds_are_not_bound() -> None:
    # Growth for 2 s only (a rebalance), then the stage keeps up.
    seconds = stage([0, 0, 900, 1800, 1800, 1800, 1700, 1600], achieved=[300, 300, 100, 100, 900, 900, 900, 900],
                    capacity=1000.0)
    v = judge_stage(seconds, TH)
    assert not v.bound and v.bound_seconds == 2


def test_replica_ready_mid_second_is_judged_against_the_capacity_before_it() -> None:
    # 0 -> 2 replicas at t=3: the first second after the scale-out still counts as zero capacity.
    seconds = [StageSecond(float(t), 0 if t < 3 else 2, 0.0 if t < 3 else 1000.0, 0.0 if t < 3 else 100.0, 600 * t)
               for t in range(6)]
    v = judge_stage(seconds, TH)
    assert v.growth_seconds == 5 and v.bound_seconds == 2 and not v.bound


def test_to_dict_is_json_safe_and_exact() -> None:
    growing = stage([0] + [600 * k for k in range(1, 10)], achieved=400.0, capacity=None)
    d = run(cpu([0.3, 0.5]), stages={"score": growing}).to_dict()
    assert set(d) == {"bound", "reasons", "cpu_busy_p95", "cpu_groups", "stages"}
    assert d["stages"] == {"score": {"capacity_eps": None, "achieved_eps": 400.0, "bound": True}}
    assert d["cpu_busy_p95"] == 0.5
    json.dumps(d, allow_nan=False)


def test_no_cpu_readings_has_no_percentile() -> None:
    v = run([], stages={})
    assert not v.bound and v.cpu_busy_p95 is None and v.to_dict()["cpu_busy_p95"] is None
