"""The headline metrics of a duel: one catalogue for tables, SLOs and verdicts (pure data).

Every backend reports the same keys, defined the same way (the pipeline's backlog in orders, measured time
lag; ARCHITECTURE.md "The instrument"). A value may be None; `missing` says what that means:

* "loses": the backend never reached the state the metric measures (never recovered, never drained). It is
  the worst possible result on that metric, so it counts against the backend in a comparison.
* "skip": the metric did not apply or was not measured in that run (no breach, so no reaction time); such a
  run neither wins nor loses on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["lower", "higher"]
Missing = Literal["loses", "skip"]

DURATION_UNITS = ("s", "ms")
"""Metric units that are durations; an SLO on such a metric must carry a time unit."""


@dataclass(frozen=True)
class Metric:
    key: str
    """The key in a backend's headline dict."""
    label: str
    """Short name for a table row, without the unit."""
    better: Better
    unit: str
    """Unit of the value: "s", "ms", "orders", "order·s", "ev/s", "replica·s"."""
    missing: Missing
    slo: str
    """The name an SLO uses for this metric (`--slo 'recovery<60s'`)."""
    missing_note: str = "not measured"
    """What a None means, in words, for tables and SLO notes."""
    reached: str = ""
    """For a "loses" metric: the verb for a known value ("recovered"), used when a missing value decides."""

    @property
    def heading(self) -> str:
        """Label with its unit, e.g. "time to recover (s)"."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def is_duration(self) -> bool:
        return self.unit in DURATION_UNITS


def _m(key: str, label: str, better: Better, unit: str, slo: str, missing: Missing = "skip",
       missing_note: str = "not measured", reached: str = "") -> Metric:
    return Metric(key, label, better, unit, missing, slo, missing_note, reached)


_CATALOGUE = (
    _m("peak_backlog", "peak backlog", "lower", "orders", "peak_backlog"),
    _m("backlog_area", "area under backlog", "lower", "order·s", "backlog_area"),
    _m("time_to_recover_s", "time to recover", "lower", "s", "recovery", "loses", "never recovered", "recovered"),
    _m("drain_rate_eps", "net drain rate", "higher", "ev/s", "drain_rate", "loses", "never drained", "drained"),
    _m("peak_time_lag_s", "peak time lag", "lower", "s", "time_lag"),
    _m("time_lag_p99_s", "time lag p99 (1 s samples)", "lower", "s", "time_lag.p99"),
    _m("breach_to_scale_out_s", "backlog breach → first added replica", "lower", "s", "scale_out",
       missing_note="no breach or no scale-out"),
    _m("replica_seconds", "replica-seconds (cost proxy)", "lower", "replica·s", "replica_seconds"),
    _m("cold_starts", "cold starts", "lower", "", "cold_starts"),
    _m("sustained_out_eps", "sustained output", "higher", "ev/s", "sustained"),
    _m("e2e_p50_ms", "e2e p50", "lower", "ms", "e2e.p50"),
    _m("e2e_p95_ms", "e2e p95", "lower", "ms", "e2e.p95"),
    _m("e2e_p99_ms", "e2e p99", "lower", "ms", "e2e.p99"),
    _m("e2e_p99.9_ms", "e2e p99.9", "lower", "ms", "e2e.p99.9"),
    _m("lost", "lost", "lower", "orders", "lost"),
    _m("late", "late", "lower", "orders", "late"),
    _m("misrouted", "misrouted", "lower", "orders", "misrouted"),
    _m("duplicated", "duplicated", "lower", "orders", "duplicated"),
    _m("out_of_order", "out of order (per key)", "lower", "orders", "out_of_order"),
)

METRICS: dict[str, Metric] = {m.key: m for m in _CATALOGUE}
"""Headline metric key -> its definition, in report order."""

BY_SLO_NAME: dict[str, Metric] = {m.slo: m for m in _CATALOGUE}
"""SLO name (`recovery`, `e2e.p99`, ...) -> metric, in report order."""
