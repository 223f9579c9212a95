"""How orders spread over partitions: the generator's customer keys through the producer's partitioner.

Orders are keyed by customer (`pipeline.orders.OrderFactory`, `customers` of them, drawn by `pipeline.keys`), and the
producer's default partitioner, librdkafka's `consistent_random`, puts a key on CRC-32(key) mod partitions
(librdkafka CONFIGURATION.md `partitioner`). So even uniform keys give partitions unequal shares when there are
few keys per partition (10,000 customers over 1,000 partitions: about 10 ± 3 each). A skewed key distribution
(Zipf, one hot key; `pipeline.keys`, the generator's too) weights the customers; the partition of each is the same.
"""

from __future__ import annotations

import zlib

import numpy as np

from pipeline.keys import KeySpec
from pipeline.orders import OrderFactory


def customer_partitions(customers: int, partitions: int) -> np.ndarray:
    """The partition of each customer's key: CRC-32 of `c-<n>` (the key OrderFactory gives) mod partitions."""
    return np.fromiter((zlib.crc32(f"c-{i}".encode()) % partitions for i in range(customers)), dtype=np.int64,
                       count=customers)


def partition_weights(spec: KeySpec, partitions: int, customers: int | None = None) -> np.ndarray:
    """Each partition's share of the orders."""
    n = OrderFactory().customers if customers is None else customers
    weights = np.bincount(customer_partitions(n, partitions), weights=spec.key_weights(n), minlength=partitions)
    return weights / weights.sum()
