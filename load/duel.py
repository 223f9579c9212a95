"""A whole duel: every backend on identical seeded load, `repeats` times in a seeded interleaved order,
then verdicts (winners only where repeats separate them, none from an instrument-bound backend), SLOs
and the run folder."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from load import manifest as mf
from load.backend_run import BackendRun, DuelPlan, Live, run_backend
from load.instrument import InstrumentThresholds
from load.metrics import METRICS
from load.recovery import RecoveryRules
from load.report.build import template_args
from load.report.html import render_html
from load.report.markdown import run_markdown
from load.runfolder import partition_series, series_rows, write_run
from load.slo import Slo, evaluate
from load.summary import backend_summary, fairness
from load.verdict import decide, interleaved_order, spread
from pipeline.backends import UnknownBackend
from pipeline.kafka import KafkaSettings
from pipeline.topology import Topology

log = logging.getLogger(__name__)

# Exit statuses of `lagduel duel`, as k6 fails a run on its thresholds.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_SLO, EXIT_INSTRUMENT = 0, 1, 2, 3, 4


class DuelInterrupted(Exception):
    """The duel was interrupted; the run folder holds the backends that finished."""

    def __init__(self, folder: Path) -> None:
        super().__init__(f"interrupted; the report of the completed runs is in {folder}")
        self.folder = folder


def new_run_id() -> str:
    return "d" + time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]


async def run_duel(backends: list[str], base: Topology, settings: KafkaSettings, plan: DuelPlan, out: Path,
                   kafka_version: str | None = None, rules: RecoveryRules = RecoveryRules(),
                   on_live: Callable[[Live], None] = lambda _: None, run_id: str | None = None,
                   slos: Sequence[Slo] = (), thresholds: InstrumentThresholds = InstrumentThresholds()) -> Path:
    """Returns the run folder. Backends that are not installed are listed as unavailable, not fatal."""
    run_id = run_id or new_run_id()
    runs: dict[str, list[BackendRun]] = {}
    unavailable: dict[str, str] = {}
    interrupted: asyncio.CancelledError | None = None
    incomplete: dict[str, str] = {}
    for repeat, name in interleaved_order(backends, plan.repeats, plan.seed):
        if name in unavailable:
            continue
        try:
            runs.setdefault(name, []).append(await run_backend(name, base, settings, plan, run_id, on_live, repeat))
        except UnknownBackend as exc:
            unavailable[name] = str(exc)
        except asyncio.CancelledError as exc:  # SIGINT/SIGTERM: keep what was measured so far
            interrupted = exc
            break
        except Exception as exc:  # one backend failing must not cost the others' results
            log.exception("backend %s failed", name)
            unavailable[name] = f"failed during the run: {type(exc).__name__}: {exc}"
    if interrupted is not None:
        for name in backends:
            done = len(runs.get(name, []))
            if name not in unavailable and done < plan.repeats:
                (unavailable if not done else incomplete)[name] = f"interrupted after {done} of {plan.repeats} run(s)"
    runs = {b: sorted(rs, key=lambda r: r.repeat) for b, rs in runs.items() if b not in unavailable and rs}
    if not runs:
        if interrupted is not None:
            raise interrupted
        raise UnknownBackend("no backend could run: " + "; ".join(unavailable.values()))
    summary = build_summary(run_id, base, plan, runs, unavailable, rules, kafka_version, slos, thresholds)
    summary["interrupted"] = summary["manifest"]["interrupted"] = incomplete
    series = {b: {"samples": series_rows(rs[0]), "sink": rs[0].sink_series, "cpu": [asdict(c) for c in rs[0].cpu],
                  "partitions": partition_series(rs[0])} for b, rs in runs.items()}
    folder = out / run_id
    write_run(folder, summary["manifest"], runs, summary, render_html(template_args(summary, series)),
              run_markdown(summary))
    if interrupted is not None:
        raise DuelInterrupted(folder) from interrupted
    return folder


def build_summary(run_id: str, base: Topology, plan: DuelPlan, runs: dict[str, list[BackendRun]],
                  unavailable: dict[str, str], rules: RecoveryRules, kafka_version: str | None,
                  slos: Sequence[Slo] = (), thresholds: InstrumentThresholds = InstrumentThresholds()) -> dict[str, Any]:
    disturbance = plan.profile.disturbance()
    per_run = {b: [backend_summary(r, disturbance, rules, thresholds) for r in rs] for b, rs in runs.items()}
    backends = {b: _aggregate(b, summaries, plan.seed, slos) for b, summaries in per_run.items()}
    excluded = {b: "instrument-bound" for b, s in backends.items() if s["instrument"]["bound"]}
    decisions = {m: decide(m, {b: [r["headline"][m] for r in per_run[b]] for b in per_run}, excluded, plan.seed)
                 for m in METRICS}
    first = {b: rs[0] for b, rs in runs.items()}
    manifest = {
        "run_id": run_id, "seed": plan.seed, "profile": plan.profile.describe(), "invalid_share": plan.invalid_share,
        "keys": plan.keys.describe(),
        "record_bytes": plan.record_bytes, "workers": plan.workers, "drain_timeout_s": plan.drain_timeout_s,
        "settle_s": plan.settle_s, "repeats": plan.repeats, "order": [[r.repeat, r.backend] for r in _in_run_order(runs)],
        "recovery_rules": rules.__dict__, "instrument_thresholds": asdict(thresholds),
        "slos": [s.text for s in slos], "faults": [f.text for f in plan.faults], "versions": mf.versions(kafka_version), "machine": mf.machine(),
        "topology": base.model_dump(mode="json"),
        "settings_in_force": {b: r.settings_in_force for b, r in first.items()},
        "start_line": {b: [r.start_line for r in rs] for b, rs in runs.items()},
        "topics": {b: list(r.topology.topics) for b, r in first.items()}, "unavailable": unavailable,
    }
    return {
        "run_id": run_id, "seed": plan.seed, "profile": plan.profile.describe(), "repeats": plan.repeats,
        "disturbance": list(disturbance), "stages": [s.name for s in base.stages],
        "backends": backends, "winners": {m: list(d.winners) for m, d in decisions.items() if d.winners},
        "decisions": {m: {"winners": list(d.winners), "reason": d.reason} for m, d in decisions.items()},
        "fault_plan": [{"fault": f.text, "at_s": f.at_s} for f in plan.faults],
        "instrument_bound": sorted(excluded), "slo_failed": sorted(b for b, s in backends.items() if not s["slo_passed"]),
        "unavailable": unavailable, "fairness": fairness({b: r.settings_in_force for b, r in first.items()}),
        "machine": manifest["machine"], "versions": manifest["versions"], "manifest": manifest,
    }


def _aggregate(backend: str, runs: list[dict[str, Any]], seed: int, slos: Sequence[Slo]) -> dict[str, Any]:
    """One backend over its repeats: each metric's median and spread; bound if any repeat was bound."""
    spreads = {m: spread([r["headline"][m] for r in runs], seed) for m in METRICS}
    headline = {m: sp.median for m, sp in spreads.items()}
    bound = [r for r in runs if r["instrument"]["bound"]]
    reasons = [f"run {r['repeat'] + 1}: {why}" if len(runs) > 1 else why for r in bound
               for why in r["instrument"]["reasons"]]
    instrument = {**runs[0]["instrument"], "bound": bool(bound), "reasons": reasons,
                  "cpu_busy_p95": max((r["instrument"]["cpu_busy_p95"] for r in runs
                                       if r["instrument"]["cpu_busy_p95"] is not None), default=None)}
    results = [_slo_dict(x) for x in evaluate(slos, headline)]
    return {
        **runs[0], "backend": backend, "headline": headline, "spread": {m: sp.to_dict() for m, sp in spreads.items()},
        "instrument": instrument, "slo": results, "slo_passed": all(x["passed"] for x in results),
        "drained": all(r["drained"] for r in runs), "repeats": runs,
    }


def _slo_dict(result: Any) -> dict[str, Any]:
    return {"slo": result.slo.text, "metric": result.slo.metric, "value": result.value, "passed": result.passed,
            "note": result.note}


def _in_run_order(runs: dict[str, list[BackendRun]]) -> list[BackendRun]:
    return sorted((r for rs in runs.values() for r in rs), key=lambda r: (r.repeat, r.load.start_wall))


def exit_status(summary: dict[str, Any]) -> int:
    """4 when a backend was instrument-bound (its numbers describe the machine), else 3 when an SLO failed."""
    if summary["instrument_bound"]:
        return EXIT_INSTRUMENT
    if summary["slo_failed"]:
        return EXIT_SLO
    return EXIT_OK


__all__ = ["run_duel", "build_summary", "exit_status", "new_run_id", "partition_series"]
