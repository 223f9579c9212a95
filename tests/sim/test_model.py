"""The simulator's building blocks: the load it offers, how it spreads work over partitions, its settings."""

from __future__ import annotations

import numpy as np
import pytest

from load.profiles import Burst, Ramp, Replay, expected_count, schedule_array
from load.sim.model import SimConfig, SimError, cumulative_sent, stage_models, with_partitions
from load.sim.plant import GroupQueues, Pods, even, share
from pipeline.topology import load_topology


@pytest.mark.parametrize("profile", [Burst(), Burst(baseline=7.3, height=91.1, at=3.37, length=5.55, duration_s=13.0),
                                     Ramp(start=3.0, end=170.0, duration_s=9.0),
                                     Replay(((0.0, 5.0), (2.5, 0.0), (4.0, 300.0)), 7.0)])
def test_the_load_is_the_generators_schedule_counted_per_step(profile) -> None:
    steps = int(np.ceil(profile.duration_s / 0.1))
    sent = cumulative_sent(profile, 0.1, steps)
    assert sent[-1] == expected_count(profile)
    times = schedule_array(profile)
    edges = np.minimum(np.arange(1, steps + 1) * 0.1, profile.duration_s)
    # By every step edge the generator has sent exactly the orders whose intended time came before it.
    assert np.all(np.abs(sent - np.searchsorted(times, edges - 1e-9)) <= 1)


def test_share_is_proportional_exact_and_never_takes_more_than_a_partition_holds() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        pending = rng.integers(0, 50, size=rng.integers(1, 40))
        total = int(pending.sum())
        if not total:
            continue
        n = int(rng.integers(0, total + 1))
        for take in (share, even):
            got = take(pending, n, total)
            assert got.sum() == n and np.all(got >= 0) and np.all(got <= pending)
        got = share(pending, n, total)
        assert np.all(np.abs(got - pending * n / total) < 1 + 1e-9)


def test_even_takes_from_every_busy_partition_alike() -> None:
    got = even(np.array([100, 1, 0, 100]), 30, 201)
    assert got.tolist() == [15, 1, 0, 14]  # a drained partition's share goes to the others


def test_a_group_serves_what_its_dispatcher_and_replicas_allow() -> None:
    topo = load_topology()
    score = stage_models(topo, "openfaas", 0.0)[2]
    q = GroupQueues(score, 6)
    q.append(np.full(6, 1000), 6000)
    served = sum(int(d.sum()) for d in (q.step(0.1, 5 * score.concurrency) for _ in range(100)) if d is not None)
    # 5 replicas × 4 slots / 50 ms = 400 ev/s for 10 s (the connector's 20 in flight is no tighter).
    assert 3900 <= served <= 4000
    assert q.pending + served == 6000 and q.processed == served


def test_knative_groups_start_with_the_kafkasource_and_openfaas_with_the_first_stage() -> None:
    topo = load_topology()
    assert [m.name for m in stage_models(topo, "knative", 0.1)] == ["source", "validate", "enrich", "score"]
    assert [m.name for m in stage_models(topo, "openfaas", 0.1)] == ["validate", "enrich", "score"]
    assert [m.rejects for m in stage_models(topo, "native", 0.1)] == [0.1, 0.0, 0.0]


def test_pods_become_ready_after_the_start_delay_and_starting_pods_go_first() -> None:
    pods = Pods(2.0)
    pods.scale(3, 0.0)
    pods.advance(1.9)
    assert pods.ready == 0
    pods.advance(2.0)
    assert (pods.ready, pods.cold_starts) == (3, 3)
    pods.scale(5, 3.0)
    pods.scale(3, 3.5)
    assert (pods.ready, pods.starting) == (3, [])


def test_bad_settings_are_refused_with_the_setting_named() -> None:
    with pytest.raises(SimError, match="step"):
        SimConfig(step_s=0.3)
    with pytest.raises(SimError, match="invalid share"):
        SimConfig(invalid_share=2)
    assert with_partitions(load_topology(), 40).partitions == 40
