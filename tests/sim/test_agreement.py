"""Agreement of a simulation with the run it simulates: replicas within ±1, peak backlog and recovery within 20 %."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from lagduel.cli import main
from load.agreement import MetricAgreement, replica_shares, scenario_of
from load.profiles import Burst
from pipeline.keys import KeySpec


def test_replica_timelines_are_paired_by_nearest_time() -> None:
    reference = [(0.7, 1, 1), (1.7, 3, 2), (2.7, 5, 5), (3.7, 5, 5)]
    # 1.7 s pairs with 2.0 s (nearer than 1.0 s): 4 and 3 replicas are within one of 3 and 2.
    assert replica_shares(reference, [(0.0, 1, 1), (1.0, 2, 2), (2.0, 4, 3), (3.0, 5, 5), (4.0, 5, 5)]) == \
        (4, 1.0, 1.0)
    assert replica_shares(reference, [(0.0, 1, 1), (1.0, 1, 1), (2.0, 1, 1), (3.0, 1, 1), (4.0, 1, 1)]) == \
        (4, 0.25, 0.5)
    assert replica_shares(reference, []) == (0, 0.0, 0.0)


def test_metrics_agree_within_a_fifth_or_one_sample() -> None:
    assert MetricAgreement("peak_backlog", 316, 272).ok and not MetricAgreement("peak_backlog", 913, 338).ok
    assert MetricAgreement("time_to_recover_s", 0.4, 0.0).ok and MetricAgreement("time_to_recover_s", None, None).ok
    assert not MetricAgreement("time_to_recover_s", None, 3.0).ok


def test_simulating_a_run_like_itself_agrees_and_says_so(tmp_path: Path) -> None:
    first = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path / "a"), "--backends", "knative,openfaas",
                                      "--profile", "burst", "--settle", "10"])
    assert first.exit_code == 0, first.output
    folder = Path(first.stdout.strip().splitlines()[-1].removeprefix("report: ")).parent
    scenario = scenario_of(folder)
    assert scenario.profile == Burst() and scenario.backends == ("knative", "openfaas") and scenario.lead_s == 2.0
    again = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path / "b"), "--like", str(folder)])
    assert again.exit_code == 0, again.output
    assert "knative: agrees" in again.stderr and "openfaas: agrees" in again.stderr
    copy = Path(again.stdout.strip().splitlines()[-1].removeprefix("report: ")).parent
    verdicts = json.loads((copy / "agreement.json").read_text())["backends"]
    assert [v["agrees"] for v in verdicts] == [True, True]


def test_like_reads_each_backends_recorded_clocks_from_its_first_run(tmp_path: Path) -> None:
    run = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path), "--backends", "openfaas", "--settle", "0"])
    assert run.exit_code == 0, run.output
    folder = Path(run.stdout.strip().splitlines()[-1].removeprefix("report: ")).parent
    assert scenario_of(folder).clocks is None  # a run from before the clocks were recorded
    manifest = json.loads((folder / "manifest.json").read_text())
    clock = {"validate": {"created_s": 4.1, "next_poll_s": 0.6, "next_sync_s": 10.9}}
    manifest["start_line"]["openfaas"] = [{"waited_s": 2.0, "control_clock": clock}, {"waited_s": 2.5}]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert scenario_of(folder).clocks == {"openfaas": clock}


def test_like_reads_each_backends_measured_data_plane(tmp_path: Path) -> None:
    run = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path), "--backends", "openfaas", "--settle", "0"])
    assert run.exit_code == 0, run.output
    folder = Path(run.stdout.strip().splitlines()[-1].removeprefix("report: ")).parent
    assert scenario_of(folder).measured is None
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["settings_in_force"]["openfaas"]["calibration"] = {"pod_start_s": 2.6, "replica_hop_ms": {"score": 5.5}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    measured = scenario_of(folder).measured
    assert measured is not None and measured["openfaas"]["pod_start_s"] == 2.6
    assert measured["openfaas"]["replica_hop_ms"] == {"score": 5.5}
    # The sink's per-second maximum end-to-end time before the burst (at 10 s): the simulation's own transit.
    assert 0.05 < measured["openfaas"]["baseline_e2e_s"] < 0.2
    assert measured["openfaas"]["sample_phase_s"] == 0.0  # a simulation samples at whole seconds


def test_like_samples_at_the_phase_the_run_sampled_at(tmp_path: Path) -> None:
    run = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path / "a"), "--backends", "openfaas",
                                    "--profile", "burst", "--settle", "0"])
    assert run.exit_code == 0, run.output
    folder = Path(run.stdout.strip().splitlines()[-1].removeprefix("report: ")).parent
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["settings_in_force"]["openfaas"]["calibration"] = {"pod_start_s": 2.0}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    # An emulated sampler's ticks: 0.786 s into each second, give or take its drift.
    path = folder / "series" / "openfaas.json"
    series = json.loads(path.read_text())
    for i, row in enumerate(series["samples"]):
        row["t"] = round(row["t"] + 0.786 + (0.04 if i % 7 == 0 else 0.0), 3)
    path.write_text(json.dumps(series))
    assert scenario_of(folder).measured["openfaas"]["sample_phase_s"] == 0.8  # type: ignore[index]
    again = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path / "b"), "--like", str(folder)])
    assert again.exit_code == 0, again.output
    copy = Path(again.stdout.strip().splitlines()[-1].removeprefix("report: ")).parent
    times = sorted({r["t"] for r in json.loads((copy / "series" / "openfaas.json").read_text())["samples"]})
    assert times[:3] == [0.8, 1.8, 2.8] and all(round(t % 1, 6) == 0.8 for t in times)


def test_like_draws_the_keys_the_run_drew_unless_told_otherwise(tmp_path: Path) -> None:
    run = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path / "a"), "--backends", "openfaas",
                                    "--settle", "0", "--keys", "hot:share=0.7"])
    assert run.exit_code == 0, run.output
    folder = Path(run.stdout.strip().splitlines()[-1].removeprefix("report: ")).parent
    assert scenario_of(folder).keys == KeySpec("hot", share=0.7)
    for extra, keys in (([], "hot:share=0.7"), (["--keys", "uniform"], "uniform")):
        again = CliRunner().invoke(main, ["simulate", "--out", str(tmp_path / keys), "--like", str(folder), *extra])
        assert again.exit_code == 0, again.output
        copy = Path(again.stdout.strip().splitlines()[-1].removeprefix("report: ")).parent
        assert json.loads((copy / "manifest.json").read_text())["keys"] == keys
