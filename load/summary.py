"""The numbers of a run: per backend and stage, from the series and histograms (pure)."""

from __future__ import annotations

from typing import Any

from load import burrow
from load.backend_run import BackendRun
from load.recovery import RecoveryRules, cold_starts, lag_metrics, sustained_rate

# metric -> which way is better; the report marks the better backend per metric.
BETTER: dict[str, str] = {
    "peak_lag": "lower", "peak_time_lag_s": "lower", "time_to_recover_s": "lower", "drain_rate_eps": "higher",
    "lag_area": "lower", "breach_to_scale_out_s": "lower", "replica_seconds": "lower", "cold_starts": "lower",
    "sustained_out_eps": "higher", "e2e_p50_ms": "lower", "e2e_p95_ms": "lower", "e2e_p99_ms": "lower",
    "e2e_p99.9_ms": "lower", "lost": "lower", "duplicated": "lower", "out_of_order": "lower",
}
LABELS: dict[str, str] = {
    "peak_lag": "peak lag (events)", "peak_time_lag_s": "peak time lag, estimated (s)",
    "time_to_recover_s": "time to recover (s)", "drain_rate_eps": "net drain rate (ev/s)",
    "lag_area": "area under lag (event·s)", "breach_to_scale_out_s": "lag breach → first added replica (s)",
    "replica_seconds": "replica-seconds (cost proxy)", "cold_starts": "cold starts",
    "sustained_out_eps": "sustained output (ev/s)", "e2e_p50_ms": "e2e p50 (ms)", "e2e_p95_ms": "e2e p95 (ms)",
    "e2e_p99_ms": "e2e p99 (ms)", "e2e_p99.9_ms": "e2e p99.9 (ms)", "lost": "lost", "duplicated": "duplicated",
    "out_of_order": "out of order (per key)",
}


def backend_summary(run: BackendRun, disturbance_end: float, rules: RecoveryRules) -> dict[str, Any]:
    s = run.samples
    ts = [x.t for x in s]
    stages: dict[str, Any] = {}
    for i, st in enumerate(run.topology.stages):
        rows = [x.stages[i] for x in s]
        ready = [r.ready for r in rows]
        tl = burrow.timeline(ts, [r.partition_committed for r in rows], [r.partition_lag for r in rows], ready)
        stages[st.name] = {
            **lag_metrics(ts, [r.lag for r in rows], [r.time_lag_s for r in rows], ready, disturbance_end, rules),
            "cold_starts": cold_starts([r.cold_starts for r in rows]),
            "retries": rows[-1].retries if rows else 0, "errors": rows[-1].errors if rows else 0,
            "uncommitted_partitions_at_end": rows[-1].uncommitted if rows else None,
            "status_changes": burrow.changes(tl), "status_samples": burrow.time_in(tl),
        }
    ready_total = [x.ready for x in s]
    total = lag_metrics(ts, [x.total_lag for x in s], [_worst(x) for x in s], ready_total, disturbance_end, rules)
    e2e = run.sink["e2e_ms"]
    headline = {
        **{k: total[k] for k in ("peak_lag", "peak_time_lag_s", "time_to_recover_s", "drain_rate_eps", "lag_area",
                                 "breach_to_scale_out_s", "replica_seconds")},
        "cold_starts": sum(v["cold_starts"] for v in stages.values()),
        "sustained_out_eps": round(sustained_rate(ts, [x.output_rate for x in s], rules.throughput_window_s), 1),
        "e2e_p50_ms": e2e["p50"], "e2e_p95_ms": e2e["p95"], "e2e_p99_ms": e2e["p99"], "e2e_p99.9_ms": e2e["p99.9"],
        "lost": run.sink["lost"], "duplicated": run.sink["duplicated"], "out_of_order": run.sink["out_of_order"],
    }
    costs = sorted(x.cost_ms for x in s)
    return {
        "backend": run.backend, "headline": headline, "pipeline": total, "stages": stages,
        "generator": run.load.to_dict(), "sink": run.sink, "drained": run.drained, "drain_s": round(run.drain_s, 2),
        "samples": len(s), "sampler_cpu_ms_median": round(costs[len(costs) // 2], 2) if costs else None,
        "settings_in_force": run.settings_in_force,
    }


def _worst(sample: Any) -> float | None:
    known = [st.time_lag_s for st in sample.stages if st.time_lag_s is not None]
    return max(known) if known else None


def winners(summaries: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """metric -> the backend(s) with the better value (ties share; None values don't compete)."""
    out: dict[str, list[str]] = {}
    for metric, way in BETTER.items():
        values = {b: s["headline"].get(metric) for b, s in summaries.items()}
        known = {b: v for b, v in values.items() if v is not None}
        if len(known) < 2:
            continue
        best = min(known.values()) if way == "lower" else max(known.values())
        out[metric] = [b for b, v in known.items() if v == best]
    return out


def fairness(topology_by_backend: dict[str, Any]) -> str:
    """Whether every backend ran each stage with the same per-replica capacity."""
    facts = {}
    for b, t in topology_by_backend.items():
        facts[b] = tuple((s.name, s.concurrency, s.latency_ms, s.max_replicas, s.limits.cpu, s.limits.memory)
                         for s in t.stages)
    distinct = set(facts.values())
    if len(distinct) == 1:
        (stages,) = distinct
        parts = ", ".join(f"{n}: concurrency {c}, latency {lat:g} ms, max {m} replicas, {cpu} CPU / {mem}"
                          for n, c, lat, m, cpu, mem in stages)
        return f"Per-replica capacity was identical on every backend ({parts})."
    return "Per-replica capacity DIFFERED between backends: " + "; ".join(f"{b}: {v}" for b, v in facts.items())
