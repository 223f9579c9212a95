"""`lagduel duel` as a CI job uses it: SLOs, the instrument check and the exit status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from lagduel.cli import main
from pipeline.kafka import KafkaSettings


def _duel(kafka_settings: KafkaSettings, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "lagduel", "duel", "--backends", "native", "--profile", "constant:rate=40",
            "--duration", "6", "--settle", "0", "--drain-timeout", "60", "--bootstrap", kafka_settings.bootstrap_servers,
            "--out", str(out), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)


def _summary(out: Path) -> dict:
    (path,) = out.glob("*/summary.json")
    return json.loads(path.read_text())


@contextmanager
def _saturated_machine() -> Iterator[None]:
    """Every core busy with a spinning process: the duel must notice that it measured the machine."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for p in burners:
            p.kill()
            p.wait()


def test_a_bad_slo_is_a_usage_error_in_one_line() -> None:
    res = CliRunner().invoke(main, ["duel", "--slo", "p99<2s"])
    assert res.exit_code == 2
    assert "--slo" in res.output and "p99" in res.output and "Traceback" not in res.output


def test_help_documents_slos_and_exit_statuses() -> None:
    out = CliRunner().invoke(main, ["duel", "--help"]).output
    assert "--slo" in out and "--repeat" in out and "instrument-bound" in out and "4 a backend" in out


@pytest.mark.kafka
def test_a_failed_slo_exits_3(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    res = _duel(kafka_settings, tmp_path, "--slo", "lost==0", "--slo", "e2e.p50<1ms")
    summary = _summary(tmp_path)
    native = summary["backends"]["native"]
    assert not native["instrument"]["bound"], native["instrument"]
    assert res.returncode == 3, res.stderr[-3000:]
    results = {x["slo"]: x["passed"] for x in native["slo"]}
    assert results == {"lost==0": True, "e2e.p50<1ms": False}
    assert summary["slo_failed"] == ["native"]


@pytest.mark.kafka
def test_a_saturated_machine_makes_the_run_instrument_bound_and_exit_4(kafka_settings: KafkaSettings,
                                                                        tmp_path: Path) -> None:
    with _saturated_machine():
        res = _duel(kafka_settings, tmp_path)
    assert res.returncode == 4, res.stderr[-3000:]
    summary = _summary(tmp_path)
    instrument = summary["backends"]["native"]["instrument"]
    assert instrument["bound"] and summary["instrument_bound"] == ["native"]
    assert any("CPU" in reason for reason in instrument["reasons"]), instrument["reasons"]
    assert instrument["cpu_busy_p95"] >= 0.9
    assert summary["winners"] == {}
    folder = next(tmp_path.iterdir())
    assert "instrument-bound" in (folder / "summary.md").read_text()
    assert 'id="instrument-bound"' in (folder / "report.html").read_text()


@pytest.mark.parametrize(("args", "says"), [
    (["--set", "knative.window_s=[1"], "not valid YAML"),
    (["--set", "knative=1", "--set", "knative.window_s=6"], "conflicts with --set knative="),
    (["--set", "knative.window_s=6", "--set", "knative=1"], "conflicts with the --set knative.*"),
    (["--backends", "native,native"], "names a backend twice"),
    (["--kube-context", "prod"], "add --target cluster"),
    (["--target", "cluster"], "needs the cluster's Kafka"),
    (["--target", "cluster", "--bootstrap", "k:9092"], "one deployed pipeline per run"),
    (["--target", "cluster", "--bootstrap", "k:9092", "--backends", "native"], "native runs only locally"),
    (["--target", "cluster", "--bootstrap", "k:9092", "--backends", "knative", "--set", "latency_ms=0"],
     "the deployed settings are in force"),
    (["--target", "cluster", "--bootstrap", "k:9092", "--backends", "openfaas", "--fault", "kill-replica:score@5s"],
     "only poison faults"),
    (["--kafka-config", "/no/such/client.properties"], "cannot read Kafka client config /no/such/client.properties"),
    (["--out", "/proc/no-such-dir"], "cannot write the run folder"),
    (["--set", "latency_ms=-1"], "--set: latency_ms: Input should be greater than or equal to 0"),
    (["--set", "nosuch=1"], "--set: nosuch: unknown key"),
    (["--set", "emulation.pod_start_delay_s=soon"], "emulation.pod_start_delay_s: Input should be a valid number"),
])
def test_user_mistakes_are_one_line_before_anything_starts(args: list[str], says: str) -> None:
    res = CliRunner().invoke(main, ["duel", *args])
    assert res.exit_code == 2, res.output
    assert says in res.output and "Traceback" not in res.output
    assert res.output.strip().splitlines()[-1].startswith("Error: ")


@pytest.mark.parametrize(("args", "says"), [
    (["--profile", "constant:rate=inf"], "finite number"),
    (["--duration", "nan"], "finite number"),
    (["--profile", "constant:rate=1e9"], "limit of 1,000,000"),
    (["--record-bytes", "2000000"], "900000"),
])
def test_impossible_load_is_refused_up_front(args: list[str], says: str) -> None:
    res = CliRunner().invoke(main, ["duel", *args])
    assert res.exit_code == 2 and says in res.output and "Traceback" not in res.output, res.output


def test_a_kafka_config_that_would_change_delivery_is_refused_naming_the_line(tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text("# a secured cluster\nsecurity.protocol=SASL_SSL\nenable.auto.commit=true\n")
    res = CliRunner().invoke(main, ["duel", "--kafka-config", str(config)])
    assert res.exit_code == 2 and f"{config}:3: enable.auto.commit is set by lagduel" in res.output, res.output
    config.write_text("security.protocol SASL_SSL\n")
    res = CliRunner().invoke(main, ["load", "--kafka-config", str(config)])
    assert res.exit_code == 2 and f"{config}:1: expected key=value" in res.output, res.output


def test_compare_refuses_what_is_not_a_run_summary(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"hello": 1}')
    (tmp_path / "b.json").write_bytes(b"\xff\xfe not json")
    for name in ("a.json", "b.json"):
        res = CliRunner().invoke(main, ["compare", str(tmp_path / name), str(tmp_path / name)])
        assert res.exit_code == 1 and "not a lagduel run summary" in res.output and "Traceback" not in res.output


@pytest.mark.kafka
def test_sigterm_stops_every_process_and_keeps_the_finished_runs(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    import psutil

    argv = [sys.executable, "-m", "lagduel", "duel", "--backends", "native", "--repeat", "2", "--profile",
            "constant:rate=20", "--duration", "8", "--settle", "1", "--bootstrap", kafka_settings.bootstrap_servers,
            "--out", str(tmp_path)]
    # Started with SIGINT ignored, as a script's background job is: SIGTERM must stop it all the same.
    duel = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    me = psutil.Process(duel.pid)
    deadline = time.monotonic() + 180
    seen: dict[int, psutil.Process] = {}
    while len(seen) < 2:  # the second run's worker is up: the first run is complete
        assert time.monotonic() < deadline and duel.poll() is None, "the duel never reached its second run"
        for p in me.children(recursive=True):
            try:
                if "pipeline.native.worker" in " ".join(p.cmdline()):
                    seen.setdefault(p.pid, p)
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.2)
    started = list(seen.values())
    duel.terminate()
    _, err = duel.communicate(timeout=90)
    assert duel.returncode == 130, err[-2000:]
    assert "every process this run started was stopped" in err
    gone, alive = psutil.wait_procs(started, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    summary = _summary(tmp_path)
    assert summary["interrupted"] == {"native": "interrupted after 1 of 2 run(s)"}
    assert summary["backends"]["native"]["sink"]["lost"] == 0  # the finished run is reported in full
