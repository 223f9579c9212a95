"""Delivery completeness by sequence number: lost, late, duplicated, misrouted, out of order (pure).

The neutral backlog of a run comes from here too: orders acknowledged into the input topic minus the
distinct orders that reached the output or dead-letter topic, and the age of the oldest order still
inside the pipeline. It is computed from the generator's acks and the sink alone, so it means the same
on every backend, whatever consumer groups the backend runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Completeness:
    """Every sent seq must come out exactly once: valid orders on the output topic, invalid ones on the
    dead-letter topic. A valid order that ends in the dead-letter topic (or an invalid one delivered) is
    *misrouted*: accounted for, but wrong.

    Order is judged per key, against seq order (the generator sends a key's events in seq order).
    """

    valid: Callable[[int], bool] | None = None
    """seq -> whether the generator made a valid order; None: misrouting is not judged."""
    copies: Counter[int] = field(default_factory=Counter)
    last_by_key: dict[str, int] = field(default_factory=dict)
    out_of_order: int = 0
    misrouted: int = 0
    distinct: int = 0
    """Distinct non-negative seqs seen."""
    watermark: int = 0
    """The lowest seq not seen yet: everything below it came out."""
    distinct_at_drain: int | None = None
    """`distinct` when the drain window closed; orders seen after it are late, not lost."""

    def observe(self, seq: int, key: str | None, dead: bool = False) -> None:
        self.copies[seq] += 1
        if self.copies[seq] > 1:
            return  # a duplicate is counted as such, not again as a reordering or misrouting
        if seq >= 0:
            self.distinct += 1
            while self.watermark in self.copies:
                self.watermark += 1
        if self.valid is not None and seq >= 0 and self.valid(seq) == dead:
            self.misrouted += 1
        if key is None:
            return
        last = self.last_by_key.get(key)
        if last is not None and seq < last:
            self.out_of_order += 1
        else:
            self.last_by_key[key] = seq

    def close_drain_window(self) -> None:
        if self.distinct_at_drain is None:
            self.distinct_at_drain = self.distinct

    @property
    def received(self) -> int:
        return sum(self.copies.values())

    def report(self, sent: int) -> dict[str, Any]:
        """Counts against seqs 0..sent-1; lists the first few lost seqs for debugging."""
        distinct = sum(1 for s in self.copies if 0 <= s < sent)
        lost = [s for s in range(sent) if s not in self.copies]
        at_drain = self.distinct_at_drain if self.distinct_at_drain is not None else distinct
        return {
            "sent": sent,
            "accounted": distinct,  # distinct seqs seen on the output or dead-letter topic
            "lost": len(lost),  # never seen by the end of the run
            "lost_examples": lost[:10],
            "late": max(distinct - at_drain, 0),  # seen only after the drain window closed
            "misrouted": self.misrouted,
            "duplicated": sum(c - 1 for c in self.copies.values() if c > 1),
            "out_of_order": self.out_of_order,
            "unexpected": sum(c for s, c in self.copies.items() if not 0 <= s < sent),
        }


def backlog(acked: int, accounted: int) -> int:
    """Orders inside the pipeline: acknowledged into the input topic, not yet out of it (never negative)."""
    return max(acked - accounted, 0)


def oldest_age_s(watermark: int, intended_s: Callable[[int], float | None], now_s: float) -> float:
    """Seconds the oldest order still inside the pipeline has waited since its intended send time; 0 when
    that order is not due yet (or the schedule has no such seq)."""
    due = intended_s(watermark)
    return max(now_s - due, 0.0) if due is not None else 0.0
