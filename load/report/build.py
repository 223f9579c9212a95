"""Template arguments of the HTML report, from the summary and series dicts (pure; no file I/O).

Plots are plotly figure specs (JSON); the page inlines plotly.js once, so it is self-contained.
"""

from __future__ import annotations

import json
from typing import Any

from load.summary import BETTER, LABELS

COLORS = {"knative": "#1f77b4", "openfaas": "#d62728", "native": "#2ca02c"}


def _line(name: str, x: list[Any], y: list[Any], dash: str = "solid", group: str | None = None) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines", "name": name, "x": x, "y": y, "legendgroup": group or name,
            "line": {"color": COLORS.get(group or name), "dash": dash, "width": 2}}


def _figure(title: str, traces: list[dict[str, Any]], y_title: str, spike: tuple[float, float] | None,
            log_y: bool = False, x_title: str = "seconds since load start") -> dict[str, Any]:
    shapes = [{"type": "rect", "xref": "x", "yref": "paper", "x0": spike[0], "x1": spike[1], "y0": 0, "y1": 1,
               "fillcolor": "#999", "opacity": 0.12, "line": {"width": 0}}] if spike else []
    return {"data": traces, "layout": {
        "title": {"text": title}, "height": 340, "margin": {"l": 60, "r": 20, "t": 40, "b": 40}, "shapes": shapes,
        "xaxis": {"title": {"text": x_title}}, "yaxis": {"title": {"text": y_title}, "type": "log" if log_y else "linear"},
        "legend": {"orientation": "h"}}}


def _pipeline(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["stage"] == "pipeline"]


def figures(series: dict[str, dict[str, Any]], stages: list[str], spike: tuple[float, float] | None,
            summaries: dict[str, Any]) -> list[dict[str, Any]]:
    lag, replicas, rates, e2e = [], [], [], []
    for b, doc in series.items():
        pipe = _pipeline(doc["samples"])
        ts = [r["t"] for r in pipe]
        lag.append(_line(f"{b} (all stages)", ts, [r["lag"] for r in pipe], group=b))
        replicas.append(_line(f"{b} (all stages)", ts, [r["ready"] for r in pipe], group=b))
        rates.append(_line(f"{b} in", ts, [r["produce_rate"] for r in pipe], "dot", group=b))
        rates.append(_line(f"{b} out", ts, [r["output_rate"] for r in pipe], group=b))
        for i, st in enumerate(stages):
            rows = [r for r in doc["samples"] if r["stage"] == st]
            dash = ("dash", "dot", "dashdot", "longdash")[i % 4]
            lag.append(_line(f"{b} {st}", [r["t"] for r in rows], [r["lag"] for r in rows], dash, group=b))
            replicas.append(_line(f"{b} {st}", [r["t"] for r in rows], [r["ready"] for r in rows], dash, group=b))
        sink = doc.get("sink", [])
        e2e.append(_line(b, [r["t"] for r in sink], [r["max_e2e_ms"] for r in sink], group=b))
    pct = ["p50", "p90", "p95", "p99", "p99.9", "max"]
    bars = [{"type": "bar", "name": b, "x": pct, "y": [s["sink"]["e2e_ms"].get(p) for p in pct],
             "marker": {"color": COLORS.get(b)}} for b, s in summaries.items()]
    return [
        {"id": "lag", **_figure("Consumer lag (events; solid = all stages)", lag, "events", spike)},
        {"id": "replicas", **_figure("Ready replicas", replicas, "replicas", spike)},
        {"id": "throughput", **_figure("Throughput in (dotted) and out (events/s)", rates, "events/s", spike)},
        {"id": "e2e", **_figure("Measured time lag: worst end-to-end latency per second", e2e, "ms", spike)},
        {"id": "latency", **_figure("End-to-end latency percentiles (from intended send time)", bars, "ms", None,
                                    log_y=True, x_title="percentile")},
    ]


def table(summaries: dict[str, Any], winners: dict[str, list[str]]) -> list[dict[str, Any]]:
    rows = []
    for metric, label in LABELS.items():
        values = {b: s["headline"].get(metric) for b, s in summaries.items()}
        rows.append({"metric": metric, "label": label, "better": BETTER[metric], "values": values,
                     "winners": winners.get(metric, [])})
    return rows


def template_args(summary: dict[str, Any], series: dict[str, dict[str, Any]]) -> dict[str, Any]:
    backends = summary["backends"]
    spike = tuple(summary["disturbance"]) if summary.get("disturbance") else None
    return {
        "title": f"lagduel — {summary['profile']['kind']} profile, {', '.join(backends)}",
        "run_id": summary["run_id"], "profile": summary["profile"], "seed": summary["seed"],
        "backends": list(backends), "unavailable": summary.get("unavailable", {}),
        "rows": table(backends, summary["winners"]), "fairness": summary["fairness"],
        "figures_json": json.dumps(figures(series, summary["stages"], spike, backends)),
        "settings": {b: json.dumps(s["settings_in_force"], indent=2, default=str) for b, s in backends.items()},
        "autoscaling": json.dumps(summary.get("autoscaling", {}), indent=2),
        "generators": {b: s["generator"] for b, s in backends.items()},
        "sinks": {b: s["sink"] for b, s in backends.items()},
        "statuses": {b: {st: v["status_changes"] for st, v in s["stages"].items()} for b, s in backends.items()},
        "drained": {b: (s["drained"], s["drain_s"]) for b, s in backends.items()},
        "machine": summary.get("machine", {}), "versions": summary.get("versions", {}),
    }
