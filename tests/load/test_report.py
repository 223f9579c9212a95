from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from load import histograms
from load.backend_run import BackendRun, DuelPlan
from load.generator import summarize
from load.duel import build_summary
from load.producer import LoadPlan, WorkerResult
from load.profiles import Burst
from load.recovery import RecoveryRules
from load.report.build import template_args
from load.report.html import render_html
from load.report.markdown import compare_markdown, run_markdown
from load.runfolder import series_rows, write_run
from load.sampler import Sample, StageSample
from pipeline.topology import Topology, load_topology

PROFILE = Burst(baseline=10, height=90, at=5, length=5, duration_s=20)


def _run(name: str, topo: Topology, drain: float) -> BackendRun:
    """A constructed run: lag rises during the spike and drains at `drain` events/s."""
    lat = histograms.new_histogram()
    e2e = histograms.new_histogram()
    for v in (500, 800, 1200, 20_000):
        histograms.record(lat, v)
        histograms.record(e2e, v * 100)
    plan = LoadPlan(topo, "r", PROFILE)
    load = summarize(plan, 0.0, 650, [WorkerResult(0, 650, 650, 0, 585, 65, 19.9, histograms.encode(lat))])
    samples, lag = [], 0.0
    for t in range(0, 30):
        lag = lag + 90 if 5 <= t < 10 else max(lag - drain, 0)
        stages = tuple(StageSample(s.name, int(lag), 0, 100 * t, 10.0, lag / 50 if lag else 0.0, (int(lag),), (100 * t,),
                                   desired=1 + int(lag > 50), ready=1 + int(lag > 100)) for s in topo.stages)
        samples.append(Sample(float(t), 100 * t, 10.0, 90 * t, 9.0, 10 * t, stages, cost_ms=1.0))
    sink = {"delivered": 585, "dead_lettered": 65, "negative_e2e": 0, "foreign": 0, "dead_letter_reasons": {"currency": 65},
            "sent": 650, "accounted": 650, "lost": 0, "lost_examples": [], "duplicated": 0, "out_of_order": 0,
            "unexpected": 0, "e2e_ms": histograms.summary_ms(e2e)}
    sink_series = [{"t": t, "delivered": 20, "dead_lettered": 2, "max_e2e_ms": 100.0 + t} for t in range(30)]
    return BackendRun(name, topo, {"window_s": 60}, load, samples, sink, sink_series, histograms.encode(e2e), True, 3.0)


def _folder(tmp_path: Path) -> Path:
    topo = load_topology()
    runs = {"knative": _run("knative", topo, 60), "openfaas": _run("openfaas", topo, 30)}
    plan = DuelPlan(PROFILE)
    summary = build_summary("d1", topo, plan, runs, {"native": "not installed"}, RecoveryRules(), "4.1.1")
    series = {b: {"samples": series_rows(r), "sink": r.sink_series} for b, r in runs.items()}
    folder = tmp_path / "d1"
    write_run(folder, summary["manifest"], runs, summary, render_html(template_args(summary, series)),
              run_markdown(summary))
    return folder


def test_run_folder_and_markdown(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    for f in ("manifest.json", "summary.json", "report.html", "summary.md", "series/knative.csv",
              "series/openfaas.json", "histograms/knative-e2e.hdr", "histograms/openfaas-send-lateness.hdr"):
        assert (folder / f).is_file(), f
    import json

    summary = json.loads((folder / "summary.json").read_text())
    # The faster drain wins time to recover and lag area; the markdown bolds it.
    assert summary["winners"]["time_to_recover_s"] == ["knative"]
    assert summary["winners"]["lag_area"] == ["knative"]
    assert "| time to recover (s) | **" in (folder / "summary.md").read_text()
    assert histograms.decode((folder / "histograms/knative-e2e.hdr").read_text().strip()).get_total_count() == 4
    table = compare_markdown([("a", summary), ("b", summary)])
    assert "(+0%)" in table


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
        page.wait_for_function("document.querySelectorAll('#plots .main-svg').length >= 5", timeout=20_000)
        traces = page.evaluate("Array.from(document.querySelectorAll('#plots .plot')).map(d => d.data.length)")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert len(traces) == 5 and all(n >= 2 for n in traces)
    assert (tmp_path / "report.png").stat().st_size > 10_000
