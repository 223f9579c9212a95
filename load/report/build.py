"""Template arguments of the HTML report, from the summary and series dicts (pure; no file I/O).

Plots are plotly figure specs (JSON); the page inlines plotly.js once, so it is self-contained.
"""

from __future__ import annotations

import json
from typing import Any

from load.metrics import METRICS
from load.profiles import profile_text

COLORS = {"knative": "#1f77b4", "openfaas": "#d62728", "native": "#2ca02c"}
BOUND = "—, instrument-bound"


def _line(name: str, x: list[Any], y: list[Any], dash: str = "solid", group: str | None = None) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines", "name": name, "x": x, "y": y, "legendgroup": group or name,
            "line": {"color": COLORS.get(group or name), "dash": dash, "width": 2}}


def _figure(title: str, traces: list[dict[str, Any]], y_title: str, spike: tuple[float, float] | None,
            log_y: bool = False, x_title: str = "seconds since load start",
            marks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    shapes = [{"type": "rect", "xref": "x", "yref": "paper", "x0": spike[0], "x1": spike[1], "y0": 0, "y1": 1,
               "fillcolor": "#999", "opacity": 0.12, "line": {"width": 0}}] if spike else []
    notes = []
    for m in marks or ():  # injected faults: a dashed line and its name
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": m["at_s"], "x1": m["at_s"], "y0": 0,
                       "y1": 1, "line": {"color": "#b00", "width": 1.5, "dash": "dash"}})
        notes.append({"x": m["at_s"], "y": 1, "xref": "x", "yref": "paper", "text": m["fault"], "showarrow": False,
                      "font": {"color": "#b00", "size": 11}, "xanchor": "left", "yanchor": "top"})
    return {"data": traces, "layout": {
        "title": {"text": title}, "height": 340, "margin": {"l": 60, "r": 20, "t": 40, "b": 40}, "shapes": shapes,
        "annotations": notes,
        "xaxis": {"title": {"text": x_title}}, "yaxis": {"title": {"text": y_title}, "type": "log" if log_y else "linear"},
        "legend": {"orientation": "h"}}}


def _rows(samples: list[dict[str, Any]], stage: str) -> list[dict[str, Any]]:
    return [r for r in samples if r["stage"] == stage]


def figures(series: dict[str, dict[str, Any]], stages: list[str], spike: tuple[float, float] | None,
            summaries: dict[str, Any], marks: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    backlog, platform, replicas, rates, age, cpu = [], [], [], [], [], []
    dashes = ("dash", "dot", "dashdot", "longdash", "longdashdot")
    for b, doc in series.items():
        pipe = _rows(doc["samples"], "pipeline")
        ts = [r["t"] for r in pipe]
        backlog.append(_line(b, ts, [r.get("backlog") for r in pipe], group=b))
        age.append(_line(b, ts, [r.get("backlog_time_lag_s") for r in pipe], group=b))
        replicas.append(_line(f"{b} (all stages)", ts, [r["ready"] for r in pipe], group=b))
        rates.append(_line(f"{b} in", ts, [r["produce_rate"] for r in pipe], "dot", group=b))
        rates.append(_line(f"{b} out", ts, [r["output_rate"] for r in pipe], group=b))
        groups = list(dict.fromkeys(r["stage"] for r in doc["samples"] if r["stage"] != "pipeline"))
        for i, st in enumerate(groups):
            rows = _rows(doc["samples"], st)
            platform.append(_line(f"{b} {st}", [r["t"] for r in rows], [r["lag"] for r in rows], dashes[i % 5], group=b))
            if st in stages:
                replicas.append(_line(f"{b} {st}", [r["t"] for r in rows], [r["ready"] for r in rows], dashes[i % 5],
                                      group=b))
        points = doc.get("cpu", [])
        cpu.append(_line(f"{b} machine busy %", [c["t"] for c in points],
                         [round(100 * c["busy_share"], 1) for c in points], group=b))
    heat = [heatmap(b, doc["partitions"], spike) for b, doc in series.items() if doc.get("partitions")]
    pct = ["p50", "p90", "p95", "p99", "p99.9", "max"]
    bars = [{"type": "bar", "name": b, "x": pct, "y": [s["sink"]["e2e_ms"].get(p) for p in pct],
             "marker": {"color": COLORS.get(b)}} for b, s in summaries.items()]
    return [
        {"id": "backlog", **_figure("Pipeline backlog (orders acked in − distinct orders out): the same on every backend",
                                    backlog, "orders", spike, marks=marks)},
        {"id": "age", **_figure("Measured time lag: age of the oldest order still in the pipeline", age, "s", spike, marks=marks)},
        {"id": "platform-lag", **_figure("Per-stage lag as each platform's autoscaler sees it (consumer-group offset "
                                         "lag; not comparable across backends)", platform, "events", spike, marks=marks)},
        {"id": "replicas", **_figure("Ready replicas", replicas, "replicas", spike, marks=marks)},
        {"id": "throughput", **_figure("Throughput in (dotted) and out (events/s)", rates, "events/s", spike, marks=marks)},
        {"id": "cpu", **_figure("Instrument: machine CPU busy (90 % and more = saturated)", cpu, "%", spike, marks=marks)},
        {"id": "latency", **_figure("End-to-end latency percentiles (from intended send time)", bars, "ms", None,
                                    log_y=True, x_title="percentile")},
        *(h for h in heat if h is not None),
    ]


def heatmap(backend: str, partitions: list[dict[str, Any]], spike: tuple[float, float] | None) -> dict[str, Any] | None:
    """Per-partition lag over time of the backend's stage with the highest peak lag: where a hot key shows."""
    stages = list(partitions[0]["stages"]) if partitions else []
    if not stages:
        return None

    def peak(stage: str) -> int:
        return max(sum(x or 0 for x in p["stages"][stage]["lag"]) for p in partitions)

    stage = max(stages, key=peak)
    ts = [p["t"] for p in partitions]
    rows = list(zip(*(p["stages"][stage]["lag"] for p in partitions)))
    trace = {"type": "heatmap", "x": ts, "y": [f"p{i}" for i in range(len(rows))], "z": [list(r) for r in rows],
             "colorscale": "Reds", "colorbar": {"title": {"text": "events"}}}
    fig = _figure(f"{backend}: lag per partition of {stage} (its stage with the highest peak lag; the platform's "
                  "consumer group)", [trace], "partition", spike)
    fig["layout"]["height"] = 300
    return {"id": f"partition-lag-{backend}", **fig}


def cell(backend: dict[str, Any], metric: str) -> str:
    """One table cell: the median, its spread over repeats, or why it is not a measurement."""
    if backend["instrument"]["bound"]:
        return BOUND
    sp = backend["spread"][metric]
    med = sp["median"]
    if med is None:
        return "—"
    text = _num(med)
    if sp.get("missing"):
        text += f" ({sp['missing']} of {sp['n']} runs: none)"
    if sp["n"] > 1 and sp["lo"] is not None and sp["lo"] != sp["hi"]:
        text += f" ({_num(sp['lo'])}–{_num(sp['hi'])}"
        text += f"; 95 % CI {_num(sp['ci_lo'])}–{_num(sp['ci_hi'])})" if sp.get("ci_lo") is not None else ")"
    return text


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    backends = summary["backends"]
    rows = []
    for metric, m in METRICS.items():
        decision = summary["decisions"].get(metric, {"winners": [], "reason": ""})
        rows.append({"metric": metric, "label": m.label, "better": m.better,
                     "values": {b: cell(s, metric) for b, s in backends.items()},
                     "winners": decision["winners"], "reason": decision["reason"]})
    return rows


def instrument(summary: dict[str, Any]) -> dict[str, Any]:
    return {b: {**s["instrument"], "calibration": s["settings_in_force"].get("calibration")}
            for b, s in summary["backends"].items()}


def template_args(summary: dict[str, Any], series: dict[str, dict[str, Any]]) -> dict[str, Any]:
    backends = summary["backends"]
    spike = tuple(summary["disturbance"]) if summary.get("disturbance") else None
    repeats = summary.get("repeats", 1)
    return {
        "title": f"lagduel{' (simulated)' if summary.get('simulated') else ''} — {summary['profile']['kind']} profile, "
                 f"{', '.join(backends)}",
        "simulated": summary.get("simulated"),
        "run_id": summary["run_id"], "profile": profile_text(summary["profile"]), "seed": summary["seed"], "repeats": repeats,
        "confidence": "1 run: no confidence interval" if repeats == 1 else
                      f"{repeats} runs per backend: median (min–max{'; bootstrap 95 % CI of the median' if repeats >= 3 else ''})",
        "backends": list(backends), "unavailable": summary.get("unavailable", {}),
        "interrupted": summary.get("interrupted", {}),
        "bound": {b: s["instrument"]["reasons"] for b, s in backends.items() if s["instrument"]["bound"]},
        "rows": table(summary), "fairness": summary["fairness"],
        "figures_json": json.dumps(figures(series, summary["stages"], spike, backends, summary.get("fault_plan"))),
        "faults": {b: s.get("faults", []) for b, s in backends.items() if s.get("faults")},
        "instrument": instrument(summary),
        "slos": {b: s["slo"] for b, s in backends.items() if s["slo"]},
        "start_line": {b: s["start_line"] for b, s in backends.items()},
        "settings": {b: json.dumps(s["settings_in_force"], indent=2, default=str) for b, s in backends.items()},
        "generators": {b: s["generator"] for b, s in backends.items()},
        "sinks": {b: s["sink"] for b, s in backends.items()},
        "platform_lag": {b: {f"{st} ({v['role']})" if "role" in v else st:
                             {k: v.get(k) for k in ("peak_lag", "time_to_recover_s", "lag_area")}
                             for st, v in (*s["stages"].items(), *s.get("groups", {}).items())}
                         for b, s in backends.items()},
        "statuses": {b: {st: v["status_changes"] for st, v in s["stages"].items()} for b, s in backends.items()},
        "drained": {b: (s["drained"], s["drain_s"]) for b, s in backends.items()},
        "machine": summary.get("machine", {}), "versions": summary.get("versions", {}),
    }
