"""The run folder: every file a duel writes, and reading summaries back for `compare`."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from load.backend_run import BackendRun

SERIES_FIELDS = ("t", "stage", "lag", "uncommitted", "time_lag_s", "consume_rate", "desired", "ready", "in_flight",
                 "queued", "retries", "errors", "dead_lettered", "cold_starts", "processed")


def series_rows(run: BackendRun) -> list[dict[str, Any]]:
    """One row per sample and stage, plus a `pipeline` row with the run-wide values."""
    rows: list[dict[str, Any]] = []
    for s in run.samples:
        b = s.backlog
        rows.append({"t": s.t, "stage": "pipeline", "backlog": b.orders if b else None,
                     "backlog_time_lag_s": b.time_lag_s if b else None, "acked": b.acked if b else None,
                     "accounted": b.accounted if b else None, "platform_lag": s.platform_lag, "ready": s.ready,
                     "produce_rate": round(s.produce_rate, 2), "output_rate": round(s.output_rate, 2),
                     "input_end": s.input_end, "output_end": s.output_end, "dead_letter_end": s.dead_letter_end,
                     "cost_ms": round(s.cost_ms, 3)})
        for st in (*s.stages, *s.groups):
            row = {f: getattr(st, f, None) for f in SERIES_FIELDS if f != "t"}
            row["t"] = s.t
            row["consume_rate"] = round(st.consume_rate, 2)
            rows.append(row)
    return rows


def _flat_cpu(c: dict[str, Any]) -> dict[str, Any]:
    return {"t": c["t"], "busy_share": round(c["busy_share"], 4),
            **{f"cores_{k}": round(v, 3) for k, v in c["groups"].items()}}


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


def write_run(folder: Path, manifest: dict[str, Any], runs: dict[str, list[BackendRun]], summary: dict[str, Any],
              html: str, markdown: str) -> None:
    """Files per backend and repeat: `<backend>` for the first run, `<backend>-r<N>` for repeat N ≥ 2."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "series").mkdir(exist_ok=True)
    (folder / "histograms").mkdir(exist_ok=True)
    _json(folder / "manifest.json", manifest)
    for backend, repeats in runs.items():
        for run in repeats:
            name = backend if run.repeat == 0 else f"{backend}-r{run.repeat + 1}"
            rows = series_rows(run)
            cpu = [asdict(c) for c in run.cpu]
            (folder / "series" / f"{name}.csv").write_text(to_csv(rows))
            (folder / "series" / f"{name}-sink.csv").write_text(to_csv(run.sink_series))
            (folder / "series" / f"{name}-cpu.csv").write_text(to_csv([_flat_cpu(c) for c in cpu]))
            _json(folder / "series" / f"{name}.json", {"samples": rows, "partitions": partition_series(run),
                                                       "sink": run.sink_series, "cpu": cpu})
            (folder / "histograms" / f"{name}-e2e.hdr").write_text(run.e2e_us + "\n")
            (folder / "histograms" / f"{name}-send-lateness.hdr").write_text(run.load.lateness_us + "\n")
    _json(folder / "summary.json", summary)
    (folder / "report.html").write_text(html)
    (folder / "summary.md").write_text(markdown)


def read_summary(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json" if folder.is_dir() else folder
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise FileNotFoundError(f"{path}: not a lagduel run folder ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a lagduel run summary (not valid JSON: {exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("backends"), dict) or "run_id" not in doc:
        raise ValueError(f"{path}: not a lagduel run summary (no run_id and backends)")
    return doc


def _json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
