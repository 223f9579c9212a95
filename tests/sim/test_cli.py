"""`lagduel simulate`: writes a run folder the duel's readers accept, says it is simulated, refuses bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lagduel.cli import main
from load.runfolder import read_summary

SHORT = ["--profile", "burst:baseline=20,height=300,at=5,length=10", "--duration", "25", "--settle", "5"]


def _simulate(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path), *SHORT, *args])
    return result.exit_code, result.stdout, result.stderr


def test_it_writes_a_run_folder_with_a_report_marked_simulated(tmp_path: Path) -> None:
    code, out, _ = _simulate(tmp_path, "--backends", "knative,openfaas", "--partitions", "12",
                             "--slo", "lost==0")
    assert code == 0, out
    report = Path(out.strip().splitlines()[-1].removeprefix("report: "))
    folder = report.parent
    assert report.is_file() and folder.parent == tmp_path
    summary = read_summary(folder)
    assert set(summary["backends"]) == {"knative", "openfaas"}
    assert summary["simulated"]["partitions"] == 12
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["target"] == "simulation" and manifest["topology"]["partitions"] == 12
    for b in summary["backends"].values():
        assert b["instrument"]["bound"] is False and b["instrument"]["applies"] is False
        assert [x["passed"] for x in b["slo"]] == [True]
        assert b["headline"]["peak_backlog"] > 0 and b["drained"]
    html = report.read_text()
    assert 'id="simulated"' in html and "lagduel (simulated)" in html
    assert '"id": "partition-lag-openfaas"' in html  # the per-partition lag heat map
    assert "Simulated" in (folder / "summary.md").read_text()
    for name in ("knative.csv", "knative.json", "openfaas-sink.csv", "openfaas-control.json"):
        assert (folder / "series" / name).is_file()
    compared = CliRunner().invoke(main, ["compare", "--markdown", str(folder), str(folder)])
    assert compared.exit_code == 0 and "peak backlog" in compared.stdout


def test_a_failed_slo_exits_3(tmp_path: Path) -> None:
    code, _, _ = _simulate(tmp_path, "--backends", "openfaas", "--slo", "peak_backlog<1")
    assert code == 3


@pytest.mark.parametrize(("args", "says"), [
    (["--partitions", "0"], "--partitions"),
    (["--backends", "knative,nope"], "unknown backend"),
    (["--profile", "zigzag"], "unknown profile"),
    (["--step", "0.3"], "step must divide 1 s"),
    (["--set", "keda.lag_threshold=0"], "lag_threshold"),
    (["--slo", "e2e.p99<2"], "needs a unit"),
    (["--keys", "pareto"], "unknown key distribution"),
])
def test_bad_input_is_one_line_naming_the_problem(tmp_path: Path, args: list[str], says: str) -> None:
    result = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path), *args])
    assert result.exit_code in (1, 2)
    assert says in result.output
    assert not list(tmp_path.iterdir())  # nothing was simulated


def test_help_explains_what_is_modeled_and_the_options() -> None:
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0
    for words in ("--partitions", "--out", "--profile", "--slo", "--set", "error bound", "simulated", "KPA", "KEDA"):
        assert words in result.output
    assert "simulate" in CliRunner().invoke(main, ["--help"]).output
