"""Service-level objectives on headline metrics, in the spirit of k6 thresholds (benchmarks.md §5.2).

Grammar: `<name><op><number>[unit]`, e.g. `e2e.p99<2s`, `recovery <= 60s`, `lost==0`, `sustained>=900`.
Durations must carry a unit (ms, s or m) so that `e2e.p99<2` can never silently mean 2 ms or 2 s; counts,
rates and areas take a plain number. The threshold is stored in the metric's own unit (`e2e.p99<2s` is
2000 ms). Pure: parsing and evaluation only.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from load.metrics import BY_SLO_NAME, METRICS, Metric

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}
# Seconds per threshold unit.
TIME_UNITS: dict[str, Decimal] = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60)}

_NAMES = ", ".join(BY_SLO_NAME)
_OPS = " ".join(OPS)
_GRAMMAR = f"expected <name><op><number>[unit] with op one of {_OPS}, e.g. 'e2e.p99<2s'"
_SHAPE = re.compile(r"\s*(?P<name>[^<>=!\s]*?)\s*(?P<op>[<>=!]+)\s*(?P<num>[^\sA-Za-z]*)\s*(?P<unit>\S*)\s*")
_NUMBER = re.compile(r"\d+(\.\d+)?|\.\d+")

SLO_HELP = (
    "An SLO is <name><op><number>[unit], e.g. --slo 'e2e.p99<2s' --slo 'recovery<60s' --slo 'lost==0' "
    f"--slo 'sustained>=900'. Operators: {_OPS}. Names: {_NAMES}. "
    "Durations (e2e.*, recovery, time_lag, time_lag.p99, scale_out) need a unit: ms, s or m (minutes); counts and rates "
    "(orders, ev/s, order·s, replica·s) take a plain number. A backend that never recovered or never drained "
    "fails its recovery/drain_rate SLO; a metric that was not measured fails too."
)


class SloError(ValueError):
    """An SLO that does not parse; the message is one line saying what is wrong and what is accepted."""


@dataclass(frozen=True)
class Slo:
    text: str
    """As written (stripped)."""
    metric: str
    """Headline metric key, e.g. "e2e_p99_ms"."""
    op: str
    threshold: float
    """In the metric's unit (ms for e2e.*, s for recovery)."""

    def describe(self) -> str:
        """The objective in the metric's own unit, e.g. "e2e p99 < 2000 ms"."""
        m = METRICS[self.metric]
        unit = f" {m.unit}" if m.unit else ""
        return f"{m.label} {self.op} {self.threshold:g}{unit}"


@dataclass(frozen=True)
class SloResult:
    slo: Slo
    value: float | int | None
    passed: bool
    note: str
    """Empty when the value was measured; otherwise why it is missing ("never recovered", "not measured")."""


def parse_slo(text: str) -> Slo:
    written = text.strip()
    if not written:
        raise SloError(f"empty SLO: {_GRAMMAR}")
    shape = _SHAPE.fullmatch(written)
    if shape is None:
        raise SloError(f"cannot parse SLO {written!r}: {_GRAMMAR}")
    name, op, num, unit = shape["name"], shape["op"], shape["num"], shape["unit"]
    if not name:
        raise SloError(f"SLO {written!r} has no metric name before {op!r}; names: {_NAMES}")
    metric = BY_SLO_NAME.get(name)
    if metric is None:
        raise SloError(f"unknown SLO name {name!r} in {written!r}; names: {_NAMES}")
    if op not in OPS:
        raise SloError(f"unknown operator {op!r} in {written!r}; operators: {_OPS}")
    if not num:
        raise SloError(f"SLO {written!r} has no threshold number after {op!r}; {_GRAMMAR}")
    if not _NUMBER.fullmatch(num):
        raise SloError(f"threshold {num!r} in {written!r} is not a non-negative decimal number; {_GRAMMAR}")
    return Slo(written, metric.key, op, _threshold(written, metric, op, num, unit))


def _threshold(written: str, metric: Metric, op: str, num: str, unit: str) -> float:
    number, example = Decimal(num), f"{metric.slo}{op}{num}"
    if not metric.is_duration:
        if unit:
            what = f"in {metric.unit}" if metric.unit else "a count"
            raise SloError(f"{metric.slo} is {what} and takes a plain number, not {unit!r}: "
                           f"write e.g. '{example}'")
        return float(number)
    if not unit:
        raise SloError(f"{metric.slo} is a duration and needs a unit (ms, s or m): write e.g. '{example}s'")
    seconds = TIME_UNITS.get(unit)
    if seconds is None:
        raise SloError(f"unknown unit {unit!r} in {written!r}; {metric.slo} is a duration: use ms, s or m")
    return float(number * seconds / TIME_UNITS[metric.unit])


def evaluate(slos: Iterable[Slo], headline: Mapping[str, float | int | None]) -> list[SloResult]:
    """One result per SLO, in order. A missing or non-finite value fails, with the reason as the note."""
    out: list[SloResult] = []
    for slo in slos:
        value = headline.get(slo.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(SloResult(slo, None, False, METRICS[slo.metric].missing_note))
            continue
        out.append(SloResult(slo, value, OPS[slo.op](value, slo.threshold), ""))
    return out
