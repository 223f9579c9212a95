"""A whole duel: each available backend in turn on identical load, then the run folder."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from load import manifest as mf
from load.backend_run import BackendRun, DuelPlan, Live, run_backend
from load.recovery import RecoveryRules
from load.report.build import template_args
from load.report.html import render_html
from load.report.markdown import run_markdown
from load.runfolder import partition_series, series_rows, write_run
from load.summary import backend_summary, fairness, winners
from pipeline.backends import UnknownBackend
from pipeline.kafka import KafkaSettings
from pipeline.topology import Topology

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return "d" + time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]


async def run_duel(backends: list[str], base: Topology, settings: KafkaSettings, plan: DuelPlan, out: Path,
                   kafka_version: str | None = None, rules: RecoveryRules = RecoveryRules(),
                   on_live: Callable[[Live], None] = lambda _: None, run_id: str | None = None) -> Path:
    """Returns the run folder. Backends that are not installed are listed as unavailable, not fatal."""
    run_id = run_id or new_run_id()
    runs: dict[str, BackendRun] = {}
    unavailable: dict[str, str] = {}
    for name in backends:
        try:
            runs[name] = await run_backend(name, base, settings, plan, run_id, on_live)
        except UnknownBackend as exc:
            unavailable[name] = str(exc)
        except Exception as exc:  # one backend failing must not cost the others' results
            log.exception("backend %s failed", name)
            unavailable[name] = f"failed during the run: {type(exc).__name__}: {exc}"
    if not runs:
        raise UnknownBackend("no backend could run: " + "; ".join(unavailable.values()))
    summary = build_summary(run_id, base, plan, runs, unavailable, rules, kafka_version)
    series = {b: {"samples": series_rows(r), "sink": r.sink_series} for b, r in runs.items()}
    folder = out / run_id
    write_run(folder, summary["manifest"], runs, summary, render_html(template_args(summary, series)),
              run_markdown(summary))
    return folder


def build_summary(run_id: str, base: Topology, plan: DuelPlan, runs: dict[str, BackendRun],
                  unavailable: dict[str, str], rules: RecoveryRules, kafka_version: str | None) -> dict[str, Any]:
    end = plan.profile.disturbance()[1]
    summaries = {b: backend_summary(r, end, rules) for b, r in runs.items()}
    autoscaling = {s.name: {"knative": s.knative.model_dump(), "keda": s.keda.model_dump(),
                            "min_replicas": s.min_replicas, "max_replicas": s.max_replicas} for s in base.stages}
    manifest = {
        "run_id": run_id, "seed": plan.seed, "profile": plan.profile.describe(), "invalid_share": plan.invalid_share,
        "record_bytes": plan.record_bytes, "workers": plan.workers, "drain_timeout_s": plan.drain_timeout_s,
        "settle_s": plan.settle_s, "recovery_rules": rules.__dict__, "versions": mf.versions(kafka_version),
        "machine": mf.machine(), "topology": base.model_dump(mode="json"),
        "settings_in_force": {b: r.settings_in_force for b, r in runs.items()},
        "topics": {b: list(r.topology.topics) for b, r in runs.items()}, "unavailable": unavailable,
    }
    return {
        "run_id": run_id, "seed": plan.seed, "profile": plan.profile.describe(),
        "disturbance": list(plan.profile.disturbance()), "stages": [s.name for s in base.stages],
        "backends": summaries, "winners": winners(summaries), "unavailable": unavailable,
        "fairness": fairness({b: r.topology for b, r in runs.items()}), "autoscaling": autoscaling,
        "machine": manifest["machine"], "versions": manifest["versions"], "manifest": manifest,
    }


__all__ = ["run_duel", "build_summary", "new_run_id", "partition_series"]
