"""The Markdown summary of a run (fit for a PR comment), and the table of `lagduel compare`."""

from __future__ import annotations

from typing import Any

from load.summary import LABELS


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def run_markdown(summary: dict[str, Any]) -> str:
    backends = summary["backends"]
    names = list(backends)
    lines = [f"### lagduel: {summary['profile']['kind']} profile ({', '.join(names)})", "",
             f"Run `{summary['run_id']}`, seed {summary['seed']}, profile `{summary['profile']}`.", ""]
    lines += ["| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for metric, label in LABELS.items():
        cells = []
        for b in names:
            v = _fmt(backends[b]["headline"].get(metric))
            cells.append(f"**{v}**" if b in summary["winners"].get(metric, []) else v)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", summary["fairness"], ""]
    for b, s in backends.items():
        g = s["generator"]
        lines.append(f"- {b}: generator {g['verdict']}; drained: {'yes' if s['drained'] else 'NO'}; "
                     f"lost {s['sink']['lost']}, duplicated {s['sink']['duplicated']}")
    for b, why in summary.get("unavailable", {}).items():
        lines.append(f"- {b}: not run ({why})")
    return "\n".join(lines) + "\n"


def compare_rows(summaries: list[tuple[str, dict[str, Any]]]) -> list[list[str]]:
    """Rows of backend × metric; the change of each later run against the first, in percent."""
    rows = []
    backends = list(dict.fromkeys(b for _, s in summaries for b in s["backends"]))
    for b in backends:
        for metric, label in LABELS.items():
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
