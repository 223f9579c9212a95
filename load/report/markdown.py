"""The Markdown summary of a run (fit for a PR comment), and the table of `lagduel compare`."""

from __future__ import annotations

from typing import Any

from load.metrics import METRICS
from load.profiles import profile_text
from load.report.build import cell


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def run_markdown(summary: dict[str, Any]) -> str:
    backends = summary["backends"]
    names = list(backends)
    repeats = summary.get("repeats", 1)
    lines = [f"### lagduel: {summary['profile']['kind']} profile ({', '.join(names)})", "",
             f"Run `{summary['run_id']}`, seed {summary['seed']}, profile `{profile_text(summary['profile'])}`, "
             + ("1 run: no confidence interval." if repeats == 1 else f"{repeats} runs per backend (median, min–max"
                + ("; bootstrap 95 % CI)." if repeats >= 3 else ").")), ""]
    sim = summary.get("simulated")
    if sim:
        lines += [f"> **Simulated** (`lagduel simulate`, {sim['partitions']} partitions, {sim.get('keys', 'uniform')} "
                  f"keys, {sim['step_s']} s steps): "
                  f"{sim['error_bound']}. Instrument check: {sim['instrument']}.", ""]
    for b, s in backends.items():
        if s["instrument"]["bound"]:
            lines.append(f"> **⚠ {b} is instrument-bound** — its numbers describe this machine, not the autoscaler: "
                         + "; ".join(s["instrument"]["reasons"]))
            lines.append("")
    lines += ["| metric | " + " | ".join(names) + " | verdict |", "|---|" + "---:|" * len(names) + "---|"]
    for metric, m in METRICS.items():
        cells = []
        decision = summary["decisions"].get(metric, {"winners": [], "reason": ""})
        for b in names:
            v = cell(backends[b], metric)
            cells.append(f"**{v}**" if b in decision["winners"] else v)
        lines.append(f"| {m.label} | " + " | ".join(cells) + f" | {decision['reason']} |")
    lines += ["", summary["fairness"]["text"], ""]
    for b, s in backends.items():
        g, i = s["generator"], s["instrument"]
        lines.append(f"- {b}: generator {g['verdict']}; drained: {'yes' if s['drained'] else 'NO'}; "
                     f"lost {s['sink']['lost']}, late {s['sink']['late']}, misrouted {s['sink']['misrouted']}, "
                     f"duplicated {s['sink']['duplicated']}; machine CPU busy p95 {_pct(i['cpu_busy_p95'])}; "
                     + ", ".join(f"{st} capacity {_cap(v['capacity_eps'])} → {_fmt(v['achieved_eps'])} ev/s"
                                 for st, v in i["stages"].items()))
        for f in s.get("faults", []):
            recovered = "never recovered" if f["time_to_recover_s"] is None else f"recovered in {f['time_to_recover_s']:g} s"
            lines.append(f"  - fault `{f['fault']}` at {f['at_s']:g} s ({f['note']}): +{f['extra_backlog']} backlog, "
                         f"{recovered}, {f['dead_lettered']} dead-lettered, {f['duplicated']} duplicated, "
                         f"{f['lost']} lost")
        for x in s.get("slo", []):
            lines.append(f"  - SLO `{x['slo']}`: {'pass' if x['passed'] else '**FAIL**'} (value {_fmt(x['value'])}"
                         + (f", {x['note']}" if x["note"] else "") + ")")
    for b, why in summary.get("unavailable", {}).items():
        lines.append(f"- {b}: not run ({why})")
    for b, why in summary.get("interrupted", {}).items():
        lines.append(f"- {b}: {why}; the table holds the finished runs only")
    return "\n".join(lines) + "\n"


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.0f} %"


def _cap(v: Any) -> str:
    return "unbounded" if v is None else _fmt(v)


def compare_rows(summaries: list[tuple[str, dict[str, Any]]]) -> list[list[str]]:
    """Rows of backend × metric; the change of each later run against the first, in percent."""
    rows = []
    backends = list(dict.fromkeys(b for _, s in summaries for b in s["backends"]))
    for b in backends:
        for metric, label in ((k, m.label) for k, m in METRICS.items()):
            vals = [s["backends"].get(b, {}).get("headline", {}).get(metric) for _, s in summaries]
            row = [b, label, _fmt(vals[0])]
            for v in vals[1:]:
                row.append(_fmt(v) + _change(vals[0], v))
            rows.append(row)
    return rows


def _change(base: Any, v: Any) -> str:
    if not isinstance(base, (int, float)) or not isinstance(v, (int, float)):
        return ""
    if base == 0:
        return "" if v == 0 else " (new)"
    return f" ({(v - base) / abs(base):+.0%})"


def compare_markdown(summaries: list[tuple[str, dict[str, Any]]]) -> str:
    head = ["backend", "metric", *(name for name, _ in summaries)]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * len(summaries)]
    lines += ["| " + " | ".join(r) + " |" for r in compare_rows(summaries)]
    return "\n".join(lines) + "\n"
