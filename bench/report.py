"""BENCHMARKS.md from the results document: tables of medians, ratios against same-run baselines."""

from __future__ import annotations

from typing import Any


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None or v != v:  # NaN
        return "n/a"
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"
    return f"{text} {unit}".strip()


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured {results['date']} by `make bench` on {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, "
        f"Apache Kafka {results['kafka_version']} (embedded, single node), librdkafka {m['libraries'].get('librdkafka')}.",
        "Every figure is the median of the runs listed; every ratio compares two commands measured in the same run "
        "on the same broker. Records are 512-byte orders unless stated. Raw figures: `bench/results.json`.",
        "",
        "Libraries: " + ", ".join(f"{k} {v}" for k, v in sorted(m["libraries"].items())),
        "",
    ]
    for section in results["sections"]:
        lines += [f"## {section['title']}", "", section.get("about", ""), ""]
        lines += ["| what | median | runs | note |", "| --- | ---: | --- | --- |"]
        for f in section["figures"]:
            runs = ", ".join(_fmt(v) for v in f["values"]) or "—"
            lines.append(f"| {f['name']} | {_fmt(f['median'], f['unit'])} | {runs} | {f.get('note', '')} |")
        if section.get("targets"):
            lines += ["", "| target | measured | met |", "| --- | ---: | :---: |"]
            for t in section["targets"]:
                met = "n/a" if t["measured"] is None else ("yes" if t["met"] else "**no**")
                lines.append(f"| {t['target']} | {_fmt(t['measured'])} | {met} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
