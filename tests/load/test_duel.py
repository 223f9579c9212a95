from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from load.backend_run import DuelPlan, Live
from load.duel import run_duel
from load.profiles import Burst
from pipeline.kafka import KafkaSettings
from pipeline.topology import Topology

pytestmark = pytest.mark.kafka


def test_duel_on_native_writes_a_complete_run(topology: Topology, kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    plan = DuelPlan(Burst(baseline=20, height=80, at=2, length=3, duration_s=8), seed=5, drain_timeout_s=90)
    phases: list[str] = []
    folder = asyncio.run(run_duel(["native", "nosuch"], topology, kafka_settings, plan, tmp_path,
                                  on_live=lambda v: phases.append(v.phase) if isinstance(v, Live) else None))
    summary = json.loads((folder / "summary.json").read_text())
    native = summary["backends"]["native"]
    assert "nosuch" in summary["unavailable"]
    assert native["drained"], native
    gen, sink = native["generator"], native["sink"]
    assert gen["sent"] == gen["scheduled"] == 20 * 8 + 80 * 3
    assert sink["delivered"] + sink["dead_lettered"] == gen["sent"], (sink, gen)
    assert sink["dead_lettered"] == gen["invalid"] and sink["lost"] == 0 and sink["duplicated"] == 0
    assert sink["misrouted"] == 0 and sink["late"] == 0
    assert sink["e2e_ms"]["count"] == gen["sent"]
    assert native["samples"] >= 8 and native["headline"]["peak_backlog"] > 0
    assert native["headline"]["time_to_recover_s"] is not None
    assert set(native["instrument"]) >= {"bound", "reasons", "cpu_busy_p95", "stages"}
    assert set(native["instrument"]["stages"]) == {"validate", "enrich", "score"}
    assert native["start_line"]["groups"] and native["start_line"]["waited_s"] >= 0
    assert {"load", "drain", "done"} <= set(phases)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["seed"] == 5 and manifest["settings_in_force"]["native"]
    assert "Plotly.newPlot" in (folder / "report.html").read_text()
