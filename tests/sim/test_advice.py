"""`lagduel advise`: the cheapest simulated settings that meet the SLOs, pasteable, with the structural limits."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from lagduel.cli import main
from lagduel.duel_cmd import parse_overrides
from load.advice import advise, recommended_yaml, structural_warnings
from load.profiles import Burst
from load.sim.model import SimConfig
from load.slo import parse_slo
from pipeline.topology import load_topology

SHORT = Burst()  # the demo burst: 200 ev/s for 15 s, after a first HPA sync has passed
QUICK = SimConfig(step_s=0.2, settle_s=5, drain_timeout_s=60)
PHASES = 2  # start leads per trial here (the command's 5 are what the command test runs)


def test_openfaas_advice_is_the_cheapest_trial_that_meets_the_slo_as_scaledobject_fields() -> None:
    slo = parse_slo("time_lag.p99<3s")
    a = advise(load_topology(), SHORT, "openfaas", [slo], QUICK, phases=PHASES)
    assert a.met and a.best.passed
    assert a.best.cost == min(t.cost for t in a.trials if t.passed)
    meta = yaml.safe_load(recommended_yaml(a))["spec"]["triggers"][0]["metadata"]
    assert meta["lagThreshold"] == str(a.best.settings["keda.lag_threshold"])
    # The --set arguments give back the recommended topology.
    again = load_topology().with_stage_overrides(**parse_overrides(tuple(a.set_args())))
    assert again.stages[0].keda == a.topology.stages[0].keda


def test_knative_advice_prints_the_annotations() -> None:
    a = advise(load_topology(), SHORT, "knative", [parse_slo("time_lag.p99<3s")], QUICK, phases=PHASES)
    notes = yaml.safe_load(recommended_yaml(a))["spec"]["template"]["metadata"]["annotations"]
    assert notes["autoscaling.knative.dev/target"] == f"{a.best.settings['knative.target']:g}"
    assert a.met and len(a.trials) > 20


def test_an_slo_no_setting_meets_gives_the_closest_and_says_so() -> None:
    a = advise(load_topology(), SHORT, "openfaas", [parse_slo("peak_backlog<0")], QUICK, phases=PHASES)
    assert not a.met and not any(t.passed for t in a.trials)
    assert a.best.metric == min(t.metric for t in a.trials if t.metric is not None)


def test_structural_limits_are_named() -> None:
    few = load_topology().with_stage_overrides(max_replicas=20, partitions=3)
    assert any("above the 3 partitions" in w for w in structural_warnings(few, "openfaas"))
    many = load_topology().with_stage_overrides(max_replicas=64, partitions=64)
    assert any("stall at 59–63" in w and "#2908" in w for w in structural_warnings(many, "openfaas"))
    low = load_topology().with_stage_overrides(keda={"lag_threshold": 5})
    assert any("uncommitted" in w for w in structural_warnings(low, "openfaas"))
    wide = load_topology().with_stage_overrides(max_replicas=50)
    assert any("never reached" in w for w in structural_warnings(wide, "knative"))


def test_the_command_prints_settings_and_writes_the_tradeoff_page(tmp_path: Path) -> None:
    args = ["advise", "--backend", "openfaas", "--profile", "burst", "--step", "0.2", "--slo", "time_lag.p99<3s",
            "--out", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "lagThreshold" in result.stdout
    assert "lagduel duel --backends openfaas --set keda.lag_threshold=" in result.stdout
    page = Path(result.stdout.strip().splitlines()[-1].removeprefix("trade-off: "))
    assert page.is_file() and "Plotly.newPlot" in page.read_text() and (page.parent / "advice.json").is_file()
    assert CliRunner().invoke(main, ["advise", "--backend", "openfaas"]).exit_code == 2  # no SLO given
