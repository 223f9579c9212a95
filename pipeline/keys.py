"""How orders' keys are drawn: the customers of the order stream, uniform or skewed.

Orders are keyed by customer, and the producer's partitioner puts a key on a partition, so the key
distribution decides how load spreads over partitions: uniform (every customer alike), Zipf (customer of
rank r with probability ∝ r^-s — a few big customers, a long tail) or one hot key (one customer takes a
share of every order). The same distribution drives the load generator (`pipeline.orders.OrderFactory`)
and the simulator (`load.sim.keys`), customer 0 being the rank-1 or hot customer in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

KEYS_HELP = ("How orders' keys (customers) are drawn: uniform, zipf[:s=1.1] (customer of rank r with probability "
             "∝ r^-s), hot[:share=0.5] (one customer gets this share of the orders). Keys reach partitions by the "
             "producer's partitioner.")


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


class CustomerDraw:
    """Maps a uniform 64-bit word to a customer under a key distribution (inverse CDF; uniform keys keep
    the plain `word mod customers`, so the default order stream is what it always was)."""

    def __init__(self, spec: KeySpec, customers: int) -> None:
        self.customers = customers
        self._cdf = None if spec.kind == "uniform" else np.cumsum(spec.key_weights(customers))

    def __call__(self, word: int) -> int:
        if self._cdf is None:
            return word % self.customers
        u = (word >> 11) * 2.0**-53  # 53 random bits in [0, 1)
        return min(int(np.searchsorted(self._cdf, u, side="right")), self.customers - 1)


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
