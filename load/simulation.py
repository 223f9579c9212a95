"""A simulated duel: each backend through `load.sim`, written as the very run folder a duel writes.

The simulator's 1 s series become the duel's `Sample`s and `BackendRun`s, so the summary, the headline
metrics, the SLOs, the report and `lagduel compare` are the duel's own code (`load.duel.build_summary`,
`load.runfolder.write_run`). What differs is said in the folder: the manifest's `target` is
"simulation" with the simulator's settings and error bound, and the report is marked simulated. The
instrument check does not apply (no machine is in the loop), so no backend is ever instrument-bound here.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from load import histograms
from load.backend_run import BackendRun, DuelPlan
from load.duel import build_summary
from load.generator import LoadResult
from load.instrument import InstrumentThresholds
from load.profiles import Profile
from load.recovery import RecoveryRules
from load.report.build import template_args
from load.report.html import render_html
from load.report.markdown import run_markdown
from load.runfolder import partition_series, series_rows, write_run
from load.sampler import PipelineBacklog, Sample, StageSample
from load.sim.engine import REPORTED_PARTITIONS, GroupSecond, PipelineSecond, SimRun, simulate
from load.sim.model import Backend, SimConfig, native_slots
from load.slo import Slo
from pipeline.backends import capacity_in_force
from pipeline.topology import Topology

ERROR_BOUND = ("fluid model in fixed steps: counts exact (every order is in one place at every step); each hop's "
               "completion time within one step plus its service time; e2e latency within ±1 step per hop; "
               "control decisions at most one step late")
NO_INSTRUMENT = InstrumentThresholds(min_bound_seconds=sys.maxsize)
"""A simulation has no CPU readings and no generator to fall behind; this keeps the stage check from binding."""
INSTRUMENT_NOTE = ("does not apply to a simulation: no machine is in the loop, so no result is instrument-bound; "
                   "modeled capacity → achieved is shown for reference")


def new_sim_id() -> str:
    return "s" + time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]


def run_simulation(backends: Sequence[Backend], topology: Topology, profile: Profile, config: SimConfig, out: Path,
                   slos: Sequence[Slo] = (), rules: RecoveryRules = RecoveryRules(), run_id: str | None = None,
                   on_progress: Callable[[str, float], None] = lambda _b, _t: None) -> Path:
    """Simulate each backend on `profile` and write the run folder; returns it."""
    run_id = run_id or new_sim_id()
    sims = {b: simulate(topology, profile, b, config, lambda t, b=b: on_progress(b, t)) for b in backends}
    runs = {b: [backend_run(sim, run_id, profile)] for b, sim in sims.items()}
    plan = DuelPlan(profile, config.seed, config.invalid_share, None, 1, 0.0, config.drain_timeout_s, config.settle_s,
                    keys=config.keys)
    summary = build_summary(run_id, topology, plan, runs, {}, rules, None, slos, NO_INSTRUMENT)
    mark_simulated(summary, config, topology)
    series = {b: {"samples": series_rows(rs[0]), "sink": rs[0].sink_series, "cpu": [],
                  "partitions": partition_series(rs[0])} for b, rs in runs.items()}
    folder = out / run_id
    write_run(folder, summary["manifest"], runs, summary, render_html(template_args(summary, series)),
              run_markdown(summary))
    for b, sim in sims.items():  # the control planes' own view (panic, KEDA metric), per stage and second
        (folder / "series" / f"{b}-control.json").write_text(json.dumps(
            {"t": [s.t for s in sim.seconds],
             "stages": {st.name: sim.control_series(st.name) for st in sim.topology.stages}}) + "\n")
    return folder


def mark_simulated(summary: dict[str, Any], config: SimConfig, topology: Topology) -> None:
    """Say in the summary and manifest that this run is a simulation, and that the instrument check is moot."""
    info = {"simulator": "load.sim", "step_s": config.step_s, "partitions": topology.partitions,
            "keys": config.keys.describe(), "start_lead_s": config.lead_s,
            "reported_partitions": min(topology.partitions, REPORTED_PARTITIONS), "error_bound": ERROR_BOUND,
            "instrument": INSTRUMENT_NOTE}
    summary["simulated"] = info
    summary["manifest"].update(target="simulation", simulated=info)
    for b in summary["backends"].values():
        for doc in (b, *b.get("repeats", [])):
            doc["instrument"] = {**doc["instrument"], "bound": False, "reasons": [], "applies": False,
                                 "note": INSTRUMENT_NOTE}


def backend_run(sim: SimRun, run_id: str, profile: Profile) -> BackendRun:
    """The simulated run in the duel's shape."""
    samples = [_sample(s, sim) for s in sim.seconds]
    e2e = histograms.decode(sim.e2e_us)
    invalid = sim.dead_lettered
    empty = histograms.new_histogram()
    load = LoadResult(run_id, profile.describe(), 1, 0.0, sim.sent, sim.sent, sim.sent, 0, sim.sent - invalid, invalid,
                      profile.duration_s, profile.duration_s, histograms.encode(empty), 0.0, 0.0,
                      histograms.summary_ms(empty), False, "simulated: every order sent on schedule")
    inside = sim.sent - sim.delivered - sim.dead_lettered
    first = sim.topology.stages[0].name
    sink = {"delivered": sim.delivered, "dead_lettered": sim.dead_lettered, "negative_e2e": 0, "foreign": 0,
            "dead_letter_reasons": {f"rejected by {first}": sim.dead_lettered} if sim.dead_lettered else {},
            "sent": sim.sent, "accounted": sim.delivered + sim.dead_lettered,
            # As a duel counts them: orders that had not come out when the run ended (still queued in the model).
            "lost": inside, "in_pipeline_at_end": inside, "lost_examples": [], "late": 0, "misrouted": 0,
            "duplicated": 0, "out_of_order": 0, "unexpected": 0, "e2e_ms": histograms.summary_ms(e2e)}
    start = sim.seconds[0] if sim.seconds else None
    start_line = {"waited_s": round(-sim.start_s, 3), "simulated": True,
                  "replicas": {g.stage: g.ready for g in start.stages} if start else {}, "groups": []}
    return BackendRun(sim.backend, 0, sim.topology, settings_in_force(sim), load, samples, [], start_line, sink,
                      sim.sink_seconds, sim.e2e_us, sim.drained, sim.drain_s)


def _sample(s: PipelineSecond, sim: SimRun) -> Sample:
    first = sim.topology.stages[0].name

    def stage(g: GroupSecond) -> StageSample:
        slots = g.ready * native_slots(sim.topology.stage(g.stage)) if sim.backend == "native" else None
        return StageSample(g.stage, g.lag, 0, g.committed_total, g.consume_rate, g.time_lag_s, g.partition_lag,
                           g.partition_committed, g.desired, g.ready, g.in_flight, g.queued,
                           dead_lettered=s.dead_letter_end if g.stage == first else 0, cold_starts=g.cold_starts,
                           processed=g.processed, slots=slots)

    return Sample(s.t, s.input_end, s.produce_rate, s.output_end, s.output_rate, s.dead_letter_end,
                  tuple(stage(g) for g in s.stages), tuple(stage(g) for g in s.groups),
                  PipelineBacklog(s.acked, s.accounted, s.backlog, s.time_lag_s))


def settings_in_force(sim: SimRun) -> dict[str, Any]:
    """The settings the simulated backend ran with, in the words the emulated backends use for theirs."""
    t, emu = sim.topology, sim.topology.emulation
    out: dict[str, Any] = {"backend": sim.backend, "simulated": True, "step_s": sim.config.step_s,
                           "partitions": t.partitions, "keys": sim.config.keys.describe(),
                           "pod_start_delay_s": emu.pod_start_delay_s,
                           "commit_interval_s": emu.commit_interval_s,
                           "groups": {m.name: asdict(m) for m in sim.models}}
    capacity: dict[str, Any] = {}
    for st in t.stages:
        if sim.backend == "knative":
            capacity[st.name] = capacity_in_force(f"{st.min_replicas}..{st.max_replicas}, start "
                                                  f"{st.knative.initial_scale}", st.concurrency,
                                                  emu.knative.trigger_max_in_flight, st.latency_ms)
        elif sim.backend == "openfaas":
            start = max(st.initial_replicas, st.min_replicas)
            in_flight = emu.openfaas.connector_in_flight or st.concurrency * st.max_replicas
            capacity[st.name] = capacity_in_force(f"{st.min_replicas}..{st.max_replicas}, start {start}",
                                                  st.concurrency, in_flight, st.latency_ms)
        else:
            capacity[st.name] = capacity_in_force("1 worker(s)", native_slots(st), native_slots(st), st.latency_ms)
    out["capacity"] = capacity
    if sim.backend == "knative":
        out["knative"] = emu.knative.model_dump()
        out["stages"] = {st.name: {"knative": st.knative.model_dump()} for st in t.stages}
    elif sim.backend == "openfaas":
        out["openfaas"] = emu.openfaas.model_dump()
        out["stages"] = {st.name: {"keda": st.keda.model_dump()} for st in t.stages}
    out["hops_ms"] = emu.hops.model_dump()
    return out
