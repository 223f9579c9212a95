"""Keys to partitions: the producer's partitioner on the generator's customers, uniform or skewed."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from load.profiles import Burst
from load.sim.engine import simulate
from load.sim.keys import customer_partitions, partition_weights
from pipeline.keys import KeysError, KeySpec, parse_keys
from load.sim.model import SimConfig
from pipeline.topology import load_topology


def test_a_customer_lands_where_the_crc32_partitioner_puts_its_key() -> None:
    assert customer_partitions(10, 7).tolist() == [zlib.crc32(f"c-{i}".encode()) % 7 for i in range(10)]


def test_uniform_keys_share_few_partitions_evenly_and_many_unevenly() -> None:
    six = partition_weights(KeySpec(), 6)
    assert six.sum() == pytest.approx(1) and np.all(np.abs(six - 1 / 6) < 0.01)
    wide = partition_weights(KeySpec(), 1000)  # about 10 customers each: a spread of tens of percent
    assert wide.max() > 1.5 / 1000 and wide.min() < 0.6 / 1000


def test_a_hot_key_puts_its_share_on_one_partition_and_zipf_skews() -> None:
    hot = partition_weights(parse_keys("hot:share=0.8"), 12)
    assert hot.max() == pytest.approx(0.8 + 0.2 / 12, abs=0.01)
    zipf = partition_weights(parse_keys("zipf:s=1.5"), 12)
    assert zipf.max() > 0.4


@pytest.mark.parametrize(("text", "says"), [("pareto", "unknown key distribution"), ("zipf:q=1", "known: s"),
                                            ("hot:share=2", "within 0..1"), ("uniform:s=1", "takes none"),
                                            ("zipf:s=x", "must be a number")])
def test_bad_key_distributions_are_named(text: str, says: str) -> None:
    with pytest.raises(KeysError, match=says):
        parse_keys(text)


def test_limit_to_partitions_with_lag_holds_a_hot_partition_to_one_replica() -> None:
    topo = load_topology().with_stage_overrides(partitions=12, max_replicas=12)
    hot = SimConfig(keys=parse_keys("hot:share=1"), invalid_share=0.0)
    burst = Burst(baseline=20, height=600, at=10, length=30, duration_s=60)
    capped = simulate(topo.with_stage_overrides(keda={"limit_to_partitions_with_lag": True}), burst, "openfaas", hot)
    free = simulate(topo, burst, "openfaas", hot)

    def most(run: object) -> int:
        return max(g.desired for s in run.seconds for g in s.stages if g.stage == "score")  # type: ignore[attr-defined]

    assert most(capped) == 1  # kafka_scaler.go: the cap is partitions-with-lag × lagThreshold
    assert most(free) > 1
