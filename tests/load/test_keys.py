"""Skewed keys: the generator draws customers from the key distribution, the real producer's partitioner puts
them where the simulator's partition shares say, and the default stream is the uniform one it always was."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from lagduel.load_cmd import load
from load.generator import run_load
from load.producer import LoadPlan
from load.profiles import Constant
from load.sim.keys import partition_weights
from pipeline.kafka import KafkaSettings
from pipeline.kafka.offsets import OffsetReader
from pipeline.keys import KeySpec, parse_keys
from pipeline.orders import OrderFactory, _mix
from pipeline.topology import Topology


def _customers(factory: OrderFactory, n: int) -> np.ndarray:
    ids = [int(o["customer_id"][2:]) for _, o, _ in factory.orders(np.arange(n)) if "customer_id" in o]
    return np.asarray(ids)


def test_uniform_keys_leave_the_order_stream_as_it_was() -> None:
    factory = OrderFactory(seed=5, invalid_share=0.0)
    for seq in (0, 1, 77, 10_000):
        key = _mix((_mix(5) + seq * 0x9E3779B97F4A7C15) & (2**64 - 1))
        word = _mix((key + 3 * 0x9E3779B97F4A7C15) & (2**64 - 1))  # the customer's draw, the third word
        assert factory.order(seq)[0]["customer_id"] == f"c-{word % factory.customers}"


@pytest.mark.parametrize("text", ["hot:share=0.6", "zipf:s=1.2"])
def test_the_generators_customers_follow_the_distribution(text: str) -> None:
    spec = parse_keys(text)
    factory = OrderFactory(seed=3, invalid_share=0.0, customers=1000, keys=spec)
    drawn = np.bincount(_customers(factory, 40_000), minlength=1000) / 40_000
    expected = spec.key_weights(1000)
    assert abs(drawn[0] - expected[0]) < 0.01  # the hot or rank-1 customer
    assert abs(drawn[:10].sum() - expected[:10].sum()) < 0.015
    assert factory.order(9)[0] == next(factory.orders(np.array([9])))[1]  # one by one and many at once agree


def test_the_simulators_partition_shares_are_the_generators() -> None:
    spec = parse_keys("zipf:s=1.1")
    factory = OrderFactory(seed=8, invalid_share=0.0, keys=spec)
    parts = np.fromiter((zlib.crc32(f"c-{c}".encode()) % 12 for c in _customers(factory, 60_000)), dtype=np.int64)
    observed = np.bincount(parts, minlength=12) / len(parts)
    assert np.abs(observed - partition_weights(spec, 12)).max() < 0.01


@pytest.mark.kafka
def test_a_hot_key_fills_the_partition_the_producers_partitioner_gives_it(fresh_topology: Topology,
                                                                          kafka_settings: KafkaSettings) -> None:
    spec = KeySpec("hot", share=0.9)
    plan = LoadPlan(fresh_topology, "gen-hot", Constant(2000, 1), seed=4, invalid_share=0.0, keys=spec)
    assert run_load(plan, kafka_settings).acked == 2000
    ends = OffsetReader(kafka_settings).read([fresh_topology.input.topic], []).ends[fresh_topology.input.topic]
    shares = ends / ends.sum()
    # librdkafka's default partitioner puts a key on CRC-32(key) mod partitions, as the simulator assumes.
    expected = partition_weights(spec, fresh_topology.partitions)
    hot = zlib.crc32(b"c-0") % fresh_topology.partitions
    assert shares.argmax() == hot and abs(shares[hot] - expected[hot]) < 0.03, (shares, expected)


def test_a_bad_key_distribution_is_one_line() -> None:
    result = CliRunner().invoke(load, ["--keys", "hot:share=2"])
    assert result.exit_code == 2 and "keys hot: share must be within 0..1, not 2" in result.output
    assert "Traceback" not in result.output
