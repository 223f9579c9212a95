"""Seeded orders for the reference pipeline: valid ones, invalid ones, sized to a target record size.

Deterministic per (seed, seq): every backend in a duel sees the identical stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import orjson

from pipeline import events
from pipeline.topology import Topology

COUNTRIES = ("DE", "FR", "GB", "US", "JP", "SE", "PL", "BR", "IN", "ZA", "NL", "ES")
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY", "SEK", "PLN")
# Each breaks exactly one rule of the validate stage, so rejections carry varied, checkable reasons.
_BREAKERS = (
    lambda o: o.pop("customer_id"),
    lambda o: o.__setitem__("currency", "XXX"),
    lambda o: o.__setitem__("country", "Germany"),
    lambda o: o.__setitem__("items", []),
    lambda o: o["items"][0].__setitem__("qty", 0),
    lambda o: o.__setitem__("created_at", "yesterday"),
)


@dataclass(frozen=True)
class OrderFactory:
    seed: int = 42
    invalid_share: float = 0.1
    record_bytes: int | None = None
    """Approximate size of the whole Kafka record (value + CloudEvent headers), padded via `note`."""
    customers: int = 10_000

    def order(self, seq: int) -> tuple[dict[str, Any], bool]:
        """The order number `seq` and whether it is valid."""
        rnd = random.Random(self.seed * 1_000_003 + seq)
        n_items = rnd.randint(1, 4)
        order: dict[str, Any] = {
            "order_id": f"o-{self.seed}-{seq}",
            "customer_id": f"c-{rnd.randrange(self.customers)}",
            "items": [
                {"sku": f"sku-{rnd.randrange(5000)}", "qty": rnd.randint(1, 5), "price": round(rnd.uniform(1, 400), 2)}
                for _ in range(n_items)
            ],
            "currency": rnd.choice(CURRENCIES),
            "country": rnd.choice(COUNTRIES),
            "created_at": f"2026-01-{1 + seq % 28:02d}T{seq % 24:02d}:{seq % 60:02d}:00+00:00",
        }
        valid = rnd.random() >= self.invalid_share
        if not valid:
            rnd.choice(_BREAKERS)(order)
        if self.record_bytes:
            order["note"] = ""
        return order, valid


# Headers and envelope of a binary-mode order record beside its JSON value (measured, then rounded).
_ENVELOPE_BYTES = 319


@lru_cache(maxsize=16)
def _template(type_: str, source: str) -> events.BinaryRecordTemplate:
    return events.BinaryRecordTemplate(type_, source)


def order_event(topology: Topology, run_id: str, seq: int, intended_us: int, data: dict[str, Any],
                record_bytes: int | None = None) -> events.KafkaRecord:
    """The order as a binary-mode CloudEvent record, keyed by customer (so keys spread over partitions).

    The event's `time` is its intended send time. Built from a template: a load generator calls this
    tens of thousands of times a second.
    """
    if record_bytes and "note" in data:
        data = _padded(data, record_bytes)
    time_iso = datetime.fromtimestamp(intended_us / 1e6, timezone.utc).isoformat().replace("+00:00", "Z")
    return _template(topology.input.type, topology.source).record(
        f"{run_id}-{seq}", time_iso, str(data.get("customer_id", seq)), events.Bookkeeping(run_id, seq, intended_us), data)


def _padded(data: dict[str, Any], record_bytes: int) -> dict[str, Any]:
    base = len(orjson.dumps(data)) + _ENVELOPE_BYTES
    return {**data, "note": "x" * max(record_bytes - base, 0)}
