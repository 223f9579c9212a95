from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from load import histograms
from load.backend_run import BackendRun, DuelPlan
from load.duel import EXIT_INSTRUMENT, build_summary, exit_status
from load.generator import summarize
from load.instrument import CpuPoint
from load.producer import LoadPlan, WorkerResult
from load.profiles import Burst
from load.recovery import RecoveryRules
from load.report.build import BOUND, template_args
from load.report.html import render_html
from load.report.markdown import compare_markdown, run_markdown
from load.runfolder import series_rows, write_run
from load.sampler import PipelineBacklog, Sample, StageSample
from pipeline.topology import Topology, load_topology

PROFILE = Burst(baseline=10, height=90, at=5, length=5, duration_s=20)


def _run(name: str, topo: Topology, drain: float, repeat: int = 0, busy: float = 0.3) -> BackendRun:
    """A constructed run: the backlog rises during the spike and drains at `drain` orders/s."""
    lat = histograms.new_histogram()
    e2e = histograms.new_histogram()
    for v in (500, 800, 1200, 20_000):
        histograms.record(lat, v)
        histograms.record(e2e, v * 100)
    plan = LoadPlan(topo, "r", PROFILE)
    load = summarize(plan, 0.0, 650, [WorkerResult(0, 650, 650, 0, 585, 65, 19.9, histograms.encode(lat))])
    samples, lag, cpu = [], 0.0, []
    for t in range(0, 30):
        lag = lag + 90 if 5 <= t < 10 else max(lag - drain, 0)
        ready = 1 + int(lag > 100)
        stages = tuple(StageSample(s.name, int(lag), 0, 100 * t, 10.0, lag / 50 if lag else 0.0, (int(lag),), (100 * t,),
                                   desired=1 + int(lag > 50), ready=ready, processed=2000 * t) for s in topo.stages)
        acked = min(20 * t, 650)
        backlog = PipelineBacklog(acked, acked - int(lag), int(lag), lag / 50)
        samples.append(Sample(float(t), 100 * t, 10.0, 90 * t, 9.0, 10 * t, stages, backlog=backlog, cost_ms=1.0))
        cpu.append(CpuPoint(float(t), busy, {"lagduel": 0.2, "broker": 0.3}))
    sink = {"delivered": 585, "dead_lettered": 65, "negative_e2e": 0, "foreign": 0, "dead_letter_reasons": {"currency": 65},
            "sent": 650, "accounted": 650, "lost": 0, "lost_examples": [], "late": 0, "misrouted": 0, "duplicated": 0,
            "out_of_order": 0, "unexpected": 0, "e2e_ms": histograms.summary_ms(e2e)}
    sink_series = [{"t": t, "delivered": 20, "dead_lettered": 2, "max_e2e_ms": 100.0 + t} for t in range(30)]
    settings = {"window_s": 60, "capacity": {st.name: {"replicas_max": 5, "concurrency": 4} for st in topo.stages}}
    return BackendRun(name, repeat, topo, settings, load, samples, cpu, {"waited_s": 1.0, "replicas": {}}, sink,
                      sink_series, histograms.encode(e2e), True, 3.0)


def _summary(runs: dict[str, list[BackendRun]], repeats: int = 1) -> dict:
    return build_summary("d1", load_topology(), DuelPlan(PROFILE, repeats=repeats), runs, {"native": "not installed"},
                         RecoveryRules(), "4.1.1")


def _folder(tmp_path: Path, repeats: int = 3) -> Path:
    topo = load_topology()
    runs = {"knative": [_run("knative", topo, 60 + i, i) for i in range(repeats)],
            "openfaas": [_run("openfaas", topo, 30 - i, i) for i in range(repeats)]}
    summary = _summary(runs, repeats)
    series = {b: {"samples": series_rows(r[0]), "sink": r[0].sink_series, "cpu": [asdict(c) for c in r[0].cpu]}
              for b, r in runs.items()}
    folder = tmp_path / "d1"
    write_run(folder, summary["manifest"], runs, summary, render_html(template_args(summary, series)),
              run_markdown(summary))
    return folder


def test_run_folder_and_markdown(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    for f in ("manifest.json", "summary.json", "report.html", "summary.md", "series/knative.csv", "series/knative-r3.csv",
              "series/openfaas.json", "series/openfaas-cpu.csv", "histograms/knative-e2e.hdr",
              "histograms/openfaas-send-lateness.hdr"):
        assert (folder / f).is_file(), f
    summary = json.loads((folder / "summary.json").read_text())
    # Three runs each, clearly separated drains: the faster drain wins the backlog area, with a reason.
    assert summary["winners"]["backlog_area"] == ["knative"]
    assert "95 %" in summary["decisions"]["backlog_area"]["reason"]
    assert summary["backends"]["knative"]["instrument"]["bound"] is False
    assert summary["backends"]["knative"]["spread"]["backlog_area"]["n"] == 3
    assert summary["manifest"]["repeats"] == 3 and len(summary["manifest"]["order"]) == 6
    md = (folder / "summary.md").read_text()
    assert "| area under backlog" in md or "backlog" in md
    assert "**" in md and "instrument-bound" not in md
    assert "profile `burst:baseline=10,height=90,at=5,length=5 for 20 s`" in md  # as a user would type it
    assert histograms.decode((folder / "histograms/knative-e2e.hdr").read_text().strip()).get_total_count() == 4
    table = compare_markdown([("a", summary), ("b", summary)])
    assert "(+0%)" in table


def test_a_single_run_declares_no_winner() -> None:
    topo = load_topology()
    summary = _summary({"knative": [_run("knative", topo, 60)], "openfaas": [_run("openfaas", topo, 30)]})
    assert summary["winners"] == {}
    assert summary["decisions"]["backlog_area"]["reason"] == "1 run: no confidence interval"
    assert "1 run: no confidence interval" in run_markdown(summary)


def test_an_instrument_bound_backend_never_wins_and_is_flagged(tmp_path: Path) -> None:
    topo = load_topology()
    runs = {"knative": [_run("knative", topo, 60, i, busy=0.99) for i in range(3)],
            "openfaas": [_run("openfaas", topo, 30, i) for i in range(3)]}
    summary = _summary(runs, 3)
    assert summary["instrument_bound"] == ["knative"]
    assert summary["backends"]["knative"]["instrument"]["reasons"]
    assert all("knative" not in w for w in summary["winners"].values())
    assert exit_status(summary) == EXIT_INSTRUMENT
    md = run_markdown(summary)
    assert "knative is instrument-bound" in md and BOUND in md
    html = render_html(template_args(summary, {b: {"samples": series_rows(r[0]), "sink": r[0].sink_series, "cpu": []}
                                               for b, r in runs.items()}))
    assert 'id="instrument-bound"' in html and BOUND in html


@pytest.mark.browser
def test_report_renders_in_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium not installed (apt-get install -y chromium): the report's rendering is not checked")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    report = _folder(tmp_path) / "report.html"
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(report.as_uri())
        page.wait_for_function("document.querySelectorAll('#plots .main-svg').length >= 7", timeout=20_000)
        traces = page.evaluate("Array.from(document.querySelectorAll('#plots .plot')).map(d => d.data.length)")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert len(traces) == 7 and all(n >= 2 for n in traces)
    assert (tmp_path / "report.png").stat().st_size > 10_000
