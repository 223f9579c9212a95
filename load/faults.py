"""Faults as duel scenarios: the same fault at the same moment on every backend, and what it cost (pure).

    --fault poison@20s                 a record no consumer can decode, written to the input topic
    --fault kill-replica:score@30s     SIGKILL one ready replica of a stage (the native baseline: a worker)
    --fault broker-restart@40s         the Kafka broker stopped and started again on the same port and data

What a fault cost, per backend, is measured on the neutral backlog from the fault until the next fault (or
the end of the run): the backlog it added above the level just before it, the time until the backlog was
back within the recovery threshold of that level, and the orders it touched — dead-lettered in the window,
duplicated, and lost among the orders whose intended send time fell in the window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KINDS = ("poison", "kill-replica", "broker-restart")
FAULT_HELP = ("Inject a fault at a moment of the load, the same on every backend: poison@20s (an undecodable "
              "record on the input topic), kill-replica:STAGE@30s (SIGKILL one replica of a stage), "
              "broker-restart@40s (the broker stopped and started again; needs the broker lagduel started). "
              "Repeatable.")
_SHAPE = re.compile(r"(?P<kind>[a-z-]+)(?::(?P<stage>[A-Za-z0-9_.-]+))?@(?P<at>\d+(?:\.\d+)?)(?P<unit>ms|s|m)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0}


class FaultError(ValueError):
    """A fault that does not parse or cannot apply; the message is one line naming the fix."""


@dataclass(frozen=True)
class Fault:
    text: str
    kind: str
    at_s: float
    """Seconds after the load's start."""
    stage: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.stage}" if self.stage else self.kind


def parse_fault(text: str, stages: Sequence[str], duration_s: float) -> Fault:
    m = _SHAPE.fullmatch(text.strip())
    if m is None:
        raise FaultError(f"{text!r}: expected KIND[:STAGE]@TIME, e.g. kill-replica:score@30s; kinds: {', '.join(KINDS)}")
    kind, stage = m["kind"], m["stage"]
    if kind not in KINDS:
        raise FaultError(f"{text!r}: unknown fault {kind!r}; choose from {', '.join(KINDS)}")
    if kind == "kill-replica":
        if stage not in stages:
            raise FaultError(f"{text!r}: kill-replica needs a stage, one of {', '.join(stages)} (kill-replica:STAGE@T)")
    elif stage is not None:
        raise FaultError(f"{text!r}: {kind} takes no stage")
    at = float(m["at"]) * _UNIT[m["unit"] or "s"]
    if not 0 <= at < duration_s:
        raise FaultError(f"{text!r}: {at:g} s is outside the load's {duration_s:g} s")
    return Fault(text.strip(), kind, at, stage)


def fault_cost(start: float, end: float, ts: Sequence[float], backlog: Sequence[int], recovered: int,
               dead_lettered_per_s: Mapping[int, int], duplicated_per_s: Mapping[int, int],
               lost_intended_s: Sequence[float]) -> dict[str, Any]:
    """What one fault cost in its window [start, end): see the module docstring."""
    before = [b for t, b in zip(ts, backlog) if t <= start]
    base = before[-1] if before else 0
    window = [(t, b) for t, b in zip(ts, backlog) if start <= t < end]
    peak = max((b for _, b in window), default=base)
    recovery: float | None = None
    for t, b in window:  # back within the threshold of the level before the fault, and staying there
        if b <= base + recovered:
            recovery = t - start if recovery is None else recovery
        else:
            recovery = None
    seconds = range(int(start), max(int(end), int(start) + 1))  # the window's whole seconds, [start, end)
    return {
        "window_s": [round(start, 3), round(end, 3)],
        "extra_backlog": max(peak - base, 0),
        "time_to_recover_s": None if recovery is None else round(recovery, 3),
        "dead_lettered": sum(dead_lettered_per_s.get(s, 0) for s in seconds),
        "duplicated": sum(duplicated_per_s.get(s, 0) for s in seconds),
        "lost": sum(1 for t in lost_intended_s if start <= t < end),
    }
