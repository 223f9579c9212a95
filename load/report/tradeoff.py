"""The trade-off page of `lagduel advise`: each trial's cost against the SLO metric (pure; no file I/O)."""

from __future__ import annotations

import html
import json
from typing import Any

from load.advice import Advice, Trial
from load.metrics import METRICS
from load.profiles import profile_text
from load.report.html import plotly_js


def _label(t: Trial) -> str:
    return "<br>".join(f"{k} = {v}" for k, v in t.settings.items())


def _settings(t: Trial) -> str:
    return ", ".join(f"{k}={v}" for k, v in t.settings.items())


def figure(advice: Advice) -> dict[str, Any]:
    slo = advice.slos[0]
    metric = METRICS[slo.metric]
    points: dict[bool, list[Trial]] = {True: [], False: []}
    for t in advice.trials:
        if t.metric is not None:
            points[t.passed].append(t)
    traces = [{"type": "scatter", "mode": "markers", "name": "meets every SLO" if ok else "misses an SLO",
               "x": [t.cost for t in ts], "y": [t.metric for t in ts], "text": [_label(t) for t in ts],
               "hovertemplate": "%{text}<br>cost %{x} replica·s<br>" + metric.label + " %{y}<extra></extra>",
               "marker": {"color": "#2ca02c" if ok else "#d62728", "size": 9, "opacity": 0.8}}
              for ok, ts in points.items() if ts]
    if advice.best.metric is not None:
        traces.append({"type": "scatter", "mode": "markers", "name": "recommended", "x": [advice.best.cost],
                       "y": [advice.best.metric], "text": [_label(advice.best)],
                       "hovertemplate": "%{text}<extra>recommended</extra>",
                       "marker": {"symbol": "star", "size": 18, "color": "#1f77b4"}})
    return {"data": traces, "layout": {
        "title": {"text": f"{advice.backend}: cost against {metric.heading}"}, "height": 480,
        "xaxis": {"title": {"text": "replica-seconds (cost proxy)"}},
        "yaxis": {"title": {"text": metric.heading}},
        "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": slo.threshold, "y1": slo.threshold,
                    "line": {"color": "#888", "dash": "dash"}}],
        "annotations": [{"xref": "paper", "x": 1, "y": slo.threshold, "text": f"SLO {slo.text}", "showarrow": False,
                         "xanchor": "right", "yanchor": "bottom"}]}}


def render(advice: Advice, profile: dict[str, Any], yaml_text: str) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{t.cost:,.0f}</td><td>{'—' if t.metric is None else f'{t.metric:g}'}</td>"
        f"<td>{'yes' if t.passed else 'no'}</td><td>{esc(_settings(t))}</td></tr>"
        for t in sorted(advice.trials, key=lambda t: (not t.passed, t.cost)))
    slos = ", ".join(s.text for s in advice.slos)
    rerun = f"lagduel duel --backends {advice.backend} " + " ".join("--set " + a for a in advice.set_args())
    warnings = "".join(f"<li>{esc(w)}</li>" for w in advice.warnings)
    verdict = ("Recommended: the cheapest settings swept that meet every SLO." if advice.met else
               "No setting swept meets every SLO; shown: the one closest to the first.")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>lagduel advise — {esc(advice.backend)}</title>
<style>body {{ font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; }}
pre {{ background: #f6f6f6; padding: 8px; }} .warn {{ color: #b00; }}</style></head><body>
<h1>lagduel advise — {esc(advice.backend)} (simulated)</h1>
<p>Profile {esc(profile_text(profile))} · SLOs {esc(slos)} · {len(advice.trials)} simulated trials, each setting
applied to every stage.</p>
<p><b>{verdict}</b></p><pre>{esc(yaml_text)}</pre>
<p>Rerun it in the emulation: <code>{esc(rerun)}</code></p>
{f'<h2>Structural limits</h2><ul class="warn">{warnings}</ul>' if warnings else ''}
<div id="tradeoff"></div>
<h2>Every trial</h2><table><tr><th>replica·s</th><th>{esc(METRICS[advice.slos[0].metric].heading)}</th>
<th>meets SLOs</th><th>settings</th></tr>{rows}</table>
<script>{plotly_js()}</script>
<script>const f = {json.dumps(figure(advice))};
Plotly.newPlot("tradeoff", f.data, f.layout, {{responsive: true, displaylogo: false}});</script>
</body></html>
"""
