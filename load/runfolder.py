"""The run folder: every file a duel writes, and reading summaries back for `compare`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from load.backend_run import BackendRun

SERIES_FIELDS = ("t", "stage", "lag", "uncommitted", "time_lag_s", "consume_rate", "desired", "ready", "in_flight",
                 "queued", "retries", "errors", "dead_lettered", "cold_starts")


def series_rows(run: BackendRun) -> list[dict[str, Any]]:
    """One row per sample and stage, plus a `pipeline` row with the run-wide values."""
    rows: list[dict[str, Any]] = []
    for s in run.samples:
        rows.append({"t": s.t, "stage": "pipeline", "lag": s.total_lag, "ready": s.ready,
                     "produce_rate": round(s.produce_rate, 2), "output_rate": round(s.output_rate, 2),
                     "input_end": s.input_end, "output_end": s.output_end, "dead_letter_end": s.dead_letter_end,
                     "cost_ms": round(s.cost_ms, 3)})
        for st in s.stages:
            row = {f: getattr(st, f, None) for f in SERIES_FIELDS if f != "t"}
            row["t"] = s.t
            row["consume_rate"] = round(st.consume_rate, 2)
            rows.append(row)
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    fields: list[str] = []
    for r in rows:
        fields.extend(k for k in r if k not in fields)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def partition_series(run: BackendRun) -> list[dict[str, Any]]:
    return [{"t": s.t, "stages": {st.stage: {"lag": list(st.partition_lag), "committed": list(st.partition_committed)}
                                  for st in s.stages}} for s in run.samples]


def write_run(folder: Path, manifest: dict[str, Any], runs: dict[str, BackendRun], summary: dict[str, Any],
              html: str, markdown: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "series").mkdir(exist_ok=True)
    (folder / "histograms").mkdir(exist_ok=True)
    _json(folder / "manifest.json", manifest)
    for name, run in runs.items():
        rows = series_rows(run)
        (folder / "series" / f"{name}.csv").write_text(to_csv(rows))
        (folder / "series" / f"{name}-sink.csv").write_text(to_csv(run.sink_series))
        _json(folder / "series" / f"{name}.json", {"samples": rows, "partitions": partition_series(run),
                                                   "sink": run.sink_series})
        (folder / "histograms" / f"{name}-e2e.hdr").write_text(run.e2e_us + "\n")
        (folder / "histograms" / f"{name}-send-lateness.hdr").write_text(run.load.lateness_us + "\n")
    _json(folder / "summary.json", summary)
    (folder / "report.html").write_text(html)
    (folder / "summary.md").write_text(markdown)


def read_summary(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json" if folder.is_dir() else folder
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise FileNotFoundError(f"{path}: not a lagduel run folder ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: summary.json is not valid JSON ({exc})") from None


def _json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
