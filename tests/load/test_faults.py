from __future__ import annotations

import pytest

from load.faults import Fault, FaultError, fault_cost, parse_fault

STAGES = ["validate", "enrich", "score"]


@pytest.mark.parametrize(("text", "fault"), [
    ("poison@20s", Fault("poison@20s", "poison", 20.0)),
    ("kill-replica:score@30", Fault("kill-replica:score@30", "kill-replica", 30.0, "score")),
    (" broker-restart@1m ", Fault("broker-restart@1m", "broker-restart", 60.0)),
    ("poison@1500ms", Fault("poison@1500ms", "poison", 1.5)),
])
def test_the_fault_grammar(text: str, fault: Fault) -> None:
    assert parse_fault(text, STAGES, duration_s=90) == fault


@pytest.mark.parametrize(("text", "says"), [
    ("poison", r"expected KIND\[:STAGE\]@TIME"),
    ("meteor@3s", "unknown fault 'meteor'"),
    ("kill-replica@3s", "kill-replica needs a stage, one of validate, enrich, score"),
    ("kill-replica:billing@3s", "kill-replica needs a stage"),
    ("poison:score@3s", "poison takes no stage"),
    ("poison@95s", "outside the load's 90 s"),
])
def test_bad_faults_are_one_line(text: str, says: str) -> None:
    with pytest.raises(FaultError, match=says):
        parse_fault(text, STAGES, duration_s=90)


def test_what_a_fault_cost() -> None:
    ts = [float(t) for t in range(12)]
    backlog = [5, 5, 5, 40, 90, 60, 30, 12, 6, 5, 300, 300]  # the fault at 2 s; the next one at 10 s
    cost = fault_cost(2.0, 10.0, ts, backlog, recovered=10, dead_lettered_per_s={3: 2, 11: 9},
                      duplicated_per_s={4: 7}, lost_intended_s=[2.5, 10.5])
    assert cost == {"window_s": [2.0, 10.0], "extra_backlog": 85, "time_to_recover_s": 5.0, "dead_lettered": 2,
                    "duplicated": 7, "lost": 1}


def test_a_fault_never_recovered_from() -> None:
    cost = fault_cost(1.0, 5.0, [0.0, 1.0, 2.0, 3.0, 4.0], [0, 0, 50, 80, 120], 10, {}, {}, [])
    assert cost["time_to_recover_s"] is None and cost["extra_backlog"] == 120
