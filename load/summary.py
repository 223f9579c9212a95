"""The numbers of one backend run, from its series and histograms (pure).

Headline metrics use the neutral backlog (orders acknowledged into the input topic minus distinct
orders out, load.completeness), defined alike on every backend. Per-stage lag is each platform's
own view — what its autoscaler or dispatcher reads — and is reported per stage, never compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from load import burrow
from load.backend_run import BackendRun
from load.faults import fault_cost
from load.instrument import InstrumentThresholds, StageSecond, classify, stage_capacity_eps
from load.recovery import RecoveryRules, cold_starts, lag_metrics, sustained_rate
from load.sampler import Sample, StageSample
from pipeline.topology import Stage


def backend_summary(run: BackendRun, disturbance: tuple[float, float], rules: RecoveryRules,
                    thresholds: InstrumentThresholds = InstrumentThresholds()) -> dict[str, Any]:
    s = run.samples
    ts = [x.t for x in s]
    stages = {st.name: _stage(ts, [x.stages[i] for x in s], disturbance[1], rules)
              for i, st in enumerate(run.topology.stages)}
    groups = {g.stage: {"role": _role(g.stage), **lag_metrics(ts, [_group(x, g.stage).lag for x in s],
                                                              [_group(x, g.stage).time_lag_s for x in s],
                                                              [0] * len(s), disturbance[1], rules)}
              for g in (s[0].groups if s else ())}
    orders = [x.backlog.orders if x.backlog else 0 for x in s]
    ages = [x.backlog.time_lag_s if x.backlog else None for x in s]
    ready = [x.ready for x in s]
    pipe = lag_metrics(ts, orders, ages, ready, disturbance[1], rules)
    e2e = run.sink["e2e_ms"]
    headline = {
        "peak_backlog": pipe["peak_lag"], "backlog_area": pipe["lag_area"],
        "time_to_recover_s": pipe["time_to_recover_s"] if run.drained else None,
        "drain_rate_eps": pipe["drain_rate_eps"] if run.drained else None,
        "peak_time_lag_s": pipe["peak_time_lag_s"], "time_lag_p99_s": pipe["p99_time_lag_s"],
        "breach_to_scale_out_s": pipe["breach_to_scale_out_s"],
        "replica_seconds": pipe["replica_seconds"], "cold_starts": sum(v["cold_starts"] for v in stages.values()),
        "sustained_out_eps": round(sustained_rate(ts, [x.output_rate for x in s], rules.throughput_window_s), 1),
        "e2e_p50_ms": e2e["p50"], "e2e_p95_ms": e2e["p95"], "e2e_p99_ms": e2e["p99"], "e2e_p99.9_ms": e2e["p99.9"],
        **{k: run.sink[k] for k in ("lost", "late", "misrouted", "duplicated", "out_of_order")},
    }
    # A stage stalled by an injected fault is the system under test, not the instrument: its capacity check
    # skips each fault's window until the backlog recovered (cost below).
    stalled = _fault_windows(run.faults, ts, orders, rules.recovered_lag)
    seconds = {st: [x for x in rows if not any(a <= x.t < b for a, b in stalled)]
               for st, rows in stage_seconds(run.topology.stages, s).items()}
    instrument = classify(run.cpu, disturbance, run.load.behind, run.load.verdict, seconds, thresholds)
    costs = sorted(x.cost_ms for x in s)
    dead = {int(r["t"]): int(r["dead_lettered"]) for r in run.sink_series}
    dup = {int(r["t"]): int(r.get("duplicated", 0)) for r in run.sink_series}
    faults = [{**f, **fault_cost(start, end, ts, orders, rules.recovered_lag, dead, dup, run.lost_intended_s)}
              for f, (start, end) in zip(sorted(run.faults, key=lambda f: f["at_s"]), _windows(run.faults, ts))]
    return {
        "backend": run.backend, "repeat": run.repeat, "headline": headline, "pipeline": pipe, "stages": stages,
        "groups": groups, "instrument": instrument.to_dict(), "start_line": run.start_line, "faults": faults,
        "generator": run.load.to_dict(), "sink": run.sink, "drained": run.drained, "drain_s": round(run.drain_s, 2),
        "samples": len(s), "sampler_cpu_ms_median": round(costs[len(costs) // 2], 2) if costs else None,
        "settings_in_force": run.settings_in_force,
    }


def _windows(faults: Sequence[dict[str, Any]], ts: Sequence[float]) -> list[tuple[float, float]]:
    """Each injected fault's window: from its moment to the next fault's, or the end of the series."""
    starts = sorted(f["at_s"] for f in faults)
    return list(zip(starts, [*starts[1:], ts[-1] if ts else 0.0]))


def _fault_windows(faults: Sequence[dict[str, Any]], ts: Sequence[float], orders: Sequence[int],
                   recovered: int) -> list[tuple[float, float]]:
    """Each fault's window cut at the moment the backlog recovered from it."""
    out = []
    for start, end in _windows(faults, ts):
        ttr = fault_cost(start, end, ts, orders, recovered, {}, {}, [])["time_to_recover_s"]
        out.append((start, end if ttr is None else start + ttr))
    return out


def stage_seconds(stages: Sequence[Stage], samples: Sequence[Sample]) -> dict[str, list[StageSecond]]:
    """Per stage and second: modeled capacity (ready × concurrency ÷ service time), what the stage finished
    (the backend's processed count; its group's committed rate where the backend keeps none) and its backlog."""
    out: dict[str, list[StageSecond]] = {}
    for i, st in enumerate(stages):
        rows = [x.stages[i] for x in samples]
        counted = any(r.processed for r in rows)
        seconds = []
        for k, r in enumerate(rows):
            if counted:
                dt = samples[k].t - samples[k - 1].t if k else 0.0
                achieved = (r.processed - rows[k - 1].processed) / dt if k and dt > 0 else 0.0
            else:
                achieved = r.consume_rate
            capacity = (stage_capacity_eps(r.ready, st.concurrency, st.latency_s) if r.slots is None else
                        stage_capacity_eps(1, r.slots, st.latency_s) if r.ready else 0.0)
            seconds.append(StageSecond(samples[k].t, r.ready, capacity, round(achieved, 2), r.lag,
                                       consumed_eps=r.consume_rate or 0.0))
        out[st.name] = seconds
    return out


def _stage(ts: list[float], rows: list[StageSample], disturbance_end: float, rules: RecoveryRules) -> dict[str, Any]:
    ready = [r.ready for r in rows]
    tl = burrow.timeline(ts, [r.partition_committed for r in rows], [r.partition_lag for r in rows], ready)
    return {
        "lag_seen_by": "the platform's autoscaler (its consumer group's offset lag)",
        **lag_metrics(ts, [r.lag for r in rows], [r.time_lag_s for r in rows], ready, disturbance_end, rules),
        "cold_starts": cold_starts([r.cold_starts for r in rows]),
        "retries": rows[-1].retries if rows else 0, "errors": rows[-1].errors if rows else 0,
        "uncommitted_partitions_at_end": rows[-1].uncommitted if rows else None,
        "status_changes": burrow.changes(tl), "status_samples": burrow.time_in(tl),
    }


def _group(sample: Sample, name: str) -> StageSample:
    return next(g for g in sample.groups if g.stage == name)


def _role(name: str) -> str:
    return "KafkaSource" if name == "source" else "output Trigger" if name == "output" else name


def fairness(settings_by_backend: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The capacities really in force per stage — replicas, per-replica concurrency, the dispatcher's or
    connector's in-flight limit, agent concurrency — and where backends differ."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for backend, settings in settings_by_backend.items():
        for stage, cap in (settings.get("capacity") or {}).items():
            rows.setdefault(stage, {})[backend] = cap
    differences = []
    for stage, by_backend in rows.items():
        keys = sorted({k for cap in by_backend.values() for k in cap})
        for key in keys:
            values = {b: cap.get(key) for b, cap in by_backend.items()}
            if len({repr(v) for v in values.values()}) > 1:
                differences.append(f"{stage} {key}: " + ", ".join(f"{b} {v}" for b, v in values.items()))
    silent = [b for b, settings in settings_by_backend.items() if not settings.get("capacity")]
    if silent:
        differences.append(f"{', '.join(silent)} reported no capacities in force")
    if not rows:
        text = "The backends reported no capacities in force."
    elif differences:
        text = "Capacities in force DIFFER: " + "; ".join(differences) + "."
    else:
        text = "Capacities in force are identical on every backend."
    return {"text": text, "differences": differences, "capacities": rows}
