"""Seeded orders for the reference pipeline: valid ones, invalid ones, sized to a target record size.

Deterministic per (seed, seq) and stateless: order `seq` comes from a counter-based generator
(splitmix64 of the seed and the sequence number, Steele et al. 2014), so any process can build any
order without replaying the ones before it. Every backend in a duel sees the identical stream, and
the load workers' shares add up to the same stream whatever their number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import orjson

from pipeline import events
from pipeline.keys import CustomerDraw, KeySpec
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

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
# The random draws of one order, each its own 64-bit word: validity, breaker, customer, item count,
# currency, country, then one word per item slot (sku, qty and price from its bit fields).
_VALID, _BREAKER, _CUSTOMER, _N_ITEMS, _CURRENCY, _COUNTRY, _ITEM0 = range(7)
_WORDS = _ITEM0 + 4
_PRICES = 39_901  # cents 100 ... 40,000


def _mix(z: int) -> int:
    """splitmix64's finalizer: a bijection of 64-bit words with full avalanche."""
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def _mix_array(z: np.ndarray) -> np.ndarray:
    """`_mix` on uint64 arrays (wrapping arithmetic), bit for bit."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def _uniform(word: int) -> float:
    return (word >> 11) * 2.0**-53


@dataclass(frozen=True)
class OrderFactory:
    seed: int = 42
    invalid_share: float = 0.1
    record_bytes: int | None = None
    """Approximate size of the whole Kafka record (value + CloudEvent headers), padded via `note`."""
    customers: int = 10_000
    keys: KeySpec = KeySpec()
    """How the customer (the record's key) is drawn: uniform by default, or skewed (Zipf, one hot key)."""

    @cached_property
    def _seed_key(self) -> int:
        return _mix(self.seed & _MASK)

    @cached_property
    def _customer(self) -> CustomerDraw:
        return CustomerDraw(self.keys, self.customers)

    def _key(self, seq: int) -> int:
        return _mix((self._seed_key + seq * _GAMMA) & _MASK)

    def _word(self, key: int, i: int) -> int:
        return _mix((key + (i + 1) * _GAMMA) & _MASK)

    def valid(self, seq: int) -> bool:
        """Whether order `seq` is valid, without building it (the same answer as `order(seq)[1]`)."""
        return _uniform(self._word(self._key(seq), _VALID)) >= self.invalid_share

    def order(self, seq: int) -> tuple[dict[str, Any], bool]:
        """The order number `seq` and whether it is valid."""
        key = self._key(seq)
        return self._build(seq, [self._word(key, i) for i in range(_WORDS)])

    def orders(self, seqs: np.ndarray) -> Iterator[tuple[int, dict[str, Any], bool]]:
        """(seq, order, valid) for many sequence numbers at once: the draws computed as arrays, the same
        orders as `order(seq)` gives one by one."""
        s = np.asarray(seqs, dtype=np.uint64)
        keys = _mix_array(np.uint64(self._seed_key) + s * np.uint64(_GAMMA))
        steps = np.arange(1, _WORDS + 1, dtype=np.uint64) * np.uint64(_GAMMA)
        words = _mix_array(keys[:, None] + steps[None, :]).tolist()
        for seq, w in zip(s.tolist(), words):
            data, valid = self._build(seq, w)
            yield seq, data, valid

    def _build(self, seq: int, w: list[int]) -> tuple[dict[str, Any], bool]:
        items = []
        for word in w[_ITEM0:_ITEM0 + 1 + w[_N_ITEMS] % 4]:
            items.append({"sku": f"sku-{word % 5000}", "qty": 1 + (word >> 16) % 5,
                          "price": (100 + (word >> 32) % _PRICES) / 100})
        order: dict[str, Any] = {
            "order_id": f"o-{self.seed}-{seq}",
            "customer_id": f"c-{self._customer(w[_CUSTOMER])}",
            "items": items,
            "currency": CURRENCIES[w[_CURRENCY] % len(CURRENCIES)],
            "country": COUNTRIES[w[_COUNTRY] % len(COUNTRIES)],
            "created_at": f"2026-01-{1 + seq % 28:02d}T{seq % 24:02d}:{seq % 60:02d}:00+00:00",
        }
        valid = _uniform(w[_VALID]) >= self.invalid_share
        if not valid:
            _BREAKERS[w[_BREAKER] % len(_BREAKERS)](order)
        if self.record_bytes:
            order["note"] = ""
        return order, valid


# Headers and envelope of a binary-mode order record beside its JSON value (measured, then rounded).
_ENVELOPE_BYTES = 319
_EMPTY_NOTE = b',"note":""}'


@lru_cache(maxsize=16)
def _template(type_: str, source: str) -> events.BinaryRecordTemplate:
    return events.BinaryRecordTemplate(type_, source)


def iso_time(us: int) -> str:
    """RFC 3339 UTC time of a Unix time in µs, as the CloudEvent `time` attribute carries it."""
    return datetime.fromtimestamp(us / 1e6, timezone.utc).isoformat().replace("+00:00", "Z")


def order_event(topology: Topology, run_id: str, seq: int, intended_us: int, data: dict[str, Any],
                record_bytes: int | None = None) -> events.KafkaRecord:
    """The order as a binary-mode CloudEvent record, keyed by customer (so keys spread over partitions).

    The event's `time` is its intended send time. Built from a template that the CloudEvents SDK encoded
    once: a load generator builds hundreds of thousands of these.
    """
    rec = _template(topology.input.type, topology.source).record(
        f"{run_id}-{seq}", iso_time(intended_us), str(data.get("customer_id", seq)),
        events.Bookkeeping(run_id, seq, intended_us), {})
    return events.KafkaRecord(rec.key, _value(data, record_bytes), rec.headers)


def _value(data: dict[str, Any], record_bytes: int | None) -> bytes:
    raw = orjson.dumps(data)
    if not record_bytes or not raw.endswith(_EMPTY_NOTE):  # `note` is the last key when the factory pads
        return raw
    pad = max(record_bytes - len(raw) - _ENVELOPE_BYTES, 0)
    return b"%s%s\"}" % (raw[:-2], b"x" * pad)


class OrderRecords:
    """A load generator's encoder: the records `order_event` makes, split in two steps so the costly one
    runs ahead of the send cursor. `encode` builds each order's key and value before the run;
    `headers` adds the per-send CloudEvent attributes (id, time, partition key, bookkeeping) at send time,
    patched into a header list the SDK encoded once, since the intended time is known only then."""

    def __init__(self, topology: Topology, run_id: str, factory: OrderFactory) -> None:
        self.factory = factory
        self.run_id = run_id
        sample = _template(topology.input.type, topology.source).record(
            "x", "x", "x", events.Bookkeeping(run_id, 0, 0), {})
        self._sample = sample.headers
        names = [name for name, _ in sample.headers]
        self._id, self._time, self._key, self._seq, self._intended = (
            names.index(n) for n in ("ce_id", "ce_time", "ce_partitionkey", "ce_ldseq", "ce_ldintended"))
        self._id_prefix = f"{run_id}-".encode()
        self._second = -1
        self._second_iso = b""

    def encode(self, seqs: np.ndarray) -> Iterator[tuple[bytes, bytes, bool]]:
        """(key, value, valid) of each order in `seqs`: the key is the partition key (customer, else seq)."""
        record_bytes = self.factory.record_bytes
        for seq, data, valid in self.factory.orders(seqs):
            yield str(data.get("customer_id", seq)).encode(), _value(data, record_bytes), valid

    def headers(self, seq: int, key: bytes, intended_us: int) -> list[tuple[str, bytes]]:
        h = self._sample.copy()
        seq_b = b"%d" % seq
        h[self._id] = ("ce_id", self._id_prefix + seq_b)
        h[self._time] = ("ce_time", self._iso(intended_us))
        h[self._key] = ("ce_partitionkey", key)
        h[self._seq] = ("ce_ldseq", seq_b)
        h[self._intended] = ("ce_ldintended", b"%d" % intended_us)
        return h

    def _iso(self, us: int) -> bytes:
        """`iso_time(us)`, with the date and clock part formatted once a second."""
        second, micros = divmod(us, 1_000_000)
        if second != self._second:
            self._second = second
            self._second_iso = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S").encode()
        return b"%s.%06dZ" % (self._second_iso, micros) if micros else self._second_iso + b"Z"
