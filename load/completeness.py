"""Delivery completeness by sequence number: lost, duplicated, out of order (pure)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Completeness:
    """Every sent seq must come out exactly once (on the output or the dead-letter topic).

    Order is judged per key, against seq order (the generator sends a key's events in seq order).
    """

    copies: Counter[int] = field(default_factory=Counter)
    last_by_key: dict[str, int] = field(default_factory=dict)
    out_of_order: int = 0

    def observe(self, seq: int, key: str | None) -> None:
        self.copies[seq] += 1
        if self.copies[seq] > 1 or key is None:
            return  # a duplicate is counted as such, not again as a reordering
        last = self.last_by_key.get(key)
        if last is not None and seq < last:
            self.out_of_order += 1
        else:
            self.last_by_key[key] = seq

    @property
    def received(self) -> int:
        return sum(self.copies.values())

    def report(self, sent: int) -> dict[str, Any]:
        """Counts against seqs 0..sent-1; lists the first few lost seqs for debugging."""
        distinct = sum(1 for s in self.copies if 0 <= s < sent)
        lost = [s for s in range(sent) if s not in self.copies]
        return {
            "sent": sent,
            "accounted": distinct,  # distinct seqs seen on the output or dead-letter topic
            "lost": len(lost),
            "lost_examples": lost[:10],
            "duplicated": sum(c - 1 for c in self.copies.values() if c > 1),
            "out_of_order": self.out_of_order,
            "unexpected": sum(c for s, c in self.copies.items() if not 0 <= s < sent),
        }
