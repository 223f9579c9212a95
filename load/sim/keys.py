"""How orders spread over partitions: the generator's customer keys through the producer's partitioner.

Orders are keyed by customer (`pipeline.orders.OrderFactory`, `customers` of them, drawn uniformly), and the
producer's default partitioner, librdkafka's `consistent_random`, puts a key on CRC-32(key) mod partitions
(librdkafka CONFIGURATION.md `partitioner`). So even uniform keys give partitions unequal shares when there are
few keys per partition (10,000 customers over 1,000 partitions: about 10 ± 3 each). A skewed key distribution
(Zipf, one hot key) is modeled by weighting the customers; the partition of each is the same.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pipeline.orders import OrderFactory

KEYS_HELP = ("How orders' keys (customers) are drawn: uniform (the generator's), zipf[:s=1.1] (customer of rank r "
             "with probability ∝ r^-s), hot[:share=0.5] (one customer gets this share of the orders). Keys reach "
             "partitions by the producer's CRC-32 partitioner.")


class KeysError(ValueError):
    """A key distribution that does not parse; the message names the parameter."""


@dataclass(frozen=True)
class KeySpec:
    kind: Literal["uniform", "zipf", "hot"] = "uniform"
    s: float = 1.1
    """Zipf exponent."""
    share: float = 0.5
    """The hot key's share of the orders."""

    def key_weights(self, customers: int) -> np.ndarray:
        """Probability of each customer's key, customer 0 first (rank 1 for Zipf, the hot key for hot)."""
        if self.kind == "zipf":
            w = np.arange(1, customers + 1, dtype=np.float64) ** -self.s
            return w / w.sum()
        w = np.full(customers, 1.0 / customers)
        if self.kind == "hot":
            w *= 1.0 - self.share
            w[0] += self.share
        return w

    def describe(self) -> str:
        return {"uniform": "uniform", "zipf": f"zipf:s={self.s:g}", "hot": f"hot:share={self.share:g}"}[self.kind]


def parse_keys(text: str) -> KeySpec:
    """`uniform`, `zipf`, `zipf:s=1.3`, `hot`, `hot:share=0.8`."""
    kind, _, rest = text.strip().partition(":")
    if kind not in ("uniform", "zipf", "hot"):
        raise KeysError(f"unknown key distribution {kind!r}; choose from uniform, zipf, hot")
    params: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        allowed = {"zipf": ("s",), "hot": ("share",)}.get(kind, ())
        if not eq or key not in allowed:
            raise KeysError(f"keys {kind}: unknown parameter {item!r}" + (f"; known: {', '.join(allowed)}"
                                                                          if allowed else "; it takes none"))
        try:
            params[key] = float(value)
        except ValueError:
            raise KeysError(f"keys {kind}: {key} must be a number, not {value!r}") from None
    spec = KeySpec(kind, **params)  # type: ignore[arg-type]
    if not spec.s > 0:
        raise KeysError(f"keys zipf: s must be > 0, not {spec.s:g}")
    if not 0 <= spec.share <= 1:
        raise KeysError(f"keys hot: share must be within 0..1, not {spec.share:g}")
    return spec


def customer_partitions(customers: int, partitions: int) -> np.ndarray:
    """The partition of each customer's key: CRC-32 of `c-<n>` (the key OrderFactory gives) mod partitions."""
    return np.fromiter((zlib.crc32(f"c-{i}".encode()) % partitions for i in range(customers)), dtype=np.int64,
                       count=customers)


def partition_weights(spec: KeySpec, partitions: int, customers: int | None = None) -> np.ndarray:
    """Each partition's share of the orders."""
    n = OrderFactory().customers if customers is None else customers
    weights = np.bincount(customer_partitions(n, partitions), weights=spec.key_weights(n), minlength=partitions)
    return weights / weights.sum()
