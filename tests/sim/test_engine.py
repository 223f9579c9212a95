"""The simulator end to end: deterministic, conserving, and each backend's replicas following its policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from load.profiles import Burst, Constant, Replay, expected_count
from load.sim.engine import SimRun, simulate
from load.sim.model import SimConfig
from pipeline.topology import Topology, load_topology

BURST = Burst(baseline=20, height=800, at=10, length=30, duration_s=60)
TALL = Burst(height=180.0)  # 200 ev/s for 15 s: the KPA panics at its first tick in the burst


def _wide(**more: object) -> Topology:
    """Room to scale: 20 replicas per stage (above OpenFaaS CE's 5), 40 partitions."""
    return load_topology().with_stage_overrides(**{"max_replicas": 20, "partitions": 40, **more})


def _desired(run: SimRun, stage: str) -> list[int]:
    return [next(g.desired for g in s.stages if g.stage == stage) for s in run.seconds]


@pytest.mark.parametrize("backend", ["knative", "openfaas", "native"])
def test_the_same_seed_gives_the_same_run_and_another_seed_another_spread(backend: str) -> None:
    topo = load_topology()
    a = simulate(topo, TALL, backend, SimConfig(seed=3))  # type: ignore[arg-type]
    b = simulate(topo, TALL, backend, SimConfig(seed=3))  # type: ignore[arg-type]
    c = simulate(topo, TALL, backend, SimConfig(seed=4))  # type: ignore[arg-type]
    assert a.seconds == b.seconds and a.e2e_us == b.e2e_us and a.sink_seconds == b.sink_seconds
    assert [s.stages[0].partition_lag for s in a.seconds] != [s.stages[0].partition_lag for s in c.seconds]
    assert a.sent == c.sent  # the seed spreads the orders over partitions; the profile decides how many


@pytest.mark.parametrize("backend", ["knative", "openfaas", "native"])
def test_every_order_is_somewhere_at_every_second_and_none_is_lost(backend: str) -> None:
    run = simulate(load_topology(), BURST, backend, SimConfig(invalid_share=0.1))  # type: ignore[arg-type]
    for s in run.seconds:
        inside = sum(g.pending for g in (*s.groups, *s.stages))
        assert s.acked == s.accounted + inside
        assert all(lag >= 0 for g in s.stages for lag in g.partition_lag)
    assert run.drained
    assert run.sent == run.delivered + run.dead_lettered == expected_count(BURST)
    assert run.dead_lettered == int(run.sent * 0.1)  # the first stage rejects the invalid share


def test_a_run_that_cannot_drain_keeps_what_it_did_not_deliver() -> None:
    run = simulate(load_topology(), Constant(rate_eps=2000, duration_s=20), "openfaas",
                   SimConfig(drain_timeout_s=5, settle_s=0))
    last = run.seconds[-1]
    assert not run.drained and last.backlog > 0
    assert run.sent == run.delivered + run.dead_lettered + sum(g.pending for g in last.stages)


def test_keda_never_asks_for_more_replicas_than_partitions() -> None:
    run = simulate(_wide(partitions=3), BURST, "openfaas", SimConfig())
    assert max(_desired(run, "score")) == 3  # kafka_scaler.go: the metric is capped at partitions × lagThreshold


def test_openfaas_ce_caps_every_function_at_five() -> None:
    run = simulate(_wide(emulation={"openfaas": {"ce_cap": True}}), BURST, "openfaas", SimConfig())
    assert max(_desired(run, "score")) == 5


def test_the_hpa_scales_up_at_most_by_its_rate_policies_once_per_sync() -> None:
    run = simulate(_wide(), BURST, "openfaas", SimConfig())
    score = _desired(run, "score")
    steps = [b for a, b in zip(score, score[1:]) if b != a]
    assert steps[:3] == [5, 10, 20]  # Pods 4 / 15 s, then Percent 100 / 15 s, up to maxReplicas
    first = next(i for i, d in enumerate(score) if d > 1)
    assert score[first:first + 14] == [5] * 14  # nothing more before the next 15 s sync


def test_the_kpa_panics_on_a_burst_and_scales_within_its_tick() -> None:
    run = simulate(_wide(), BURST, "knative", SimConfig())
    panic = [x["panic"] for x in run.control_series("score")]
    burst_at = BURST.at
    score = _desired(run, "score")
    first = next(i for i, d in enumerate(score) if d > 1)
    assert burst_at <= run.seconds[first].t <= burst_at + 4  # a 2 s tick on a 6 s panic window
    assert max(panic[first:first + 10]) == 1.0
    assert max(score) <= 20
    # In panic the KPA never scales down (autoscaler.go): the count holds through the burst.
    during = score[first:int(burst_at + BURST.length)]
    assert all(b >= a for a, b in zip(during, during[1:]))


def test_knative_scales_to_zero_after_the_stable_window_and_grace_period() -> None:
    topo = load_topology()
    run = simulate(topo, Constant(rate_eps=20, duration_s=10), "knative", SimConfig(settle_s=150))
    score = _desired(run, "score")
    assert score[-1] == 0 and score[int(topo.stages[2].knative.window_s)] == 1


def test_native_runs_one_worker_and_never_scales() -> None:
    run = simulate(load_topology(), BURST, "native", SimConfig())
    assert {g.ready for s in run.seconds for g in s.stages} == {1}


def test_a_replayed_trace_drives_the_simulator(tmp_path: Path) -> None:
    trace = tmp_path / "rates.csv"
    trace.write_text("t,rate\n0,10\n5,300\n10,10\n")
    profile = Replay.from_csv(trace, 15.0)
    run = simulate(load_topology(), profile, "openfaas", SimConfig())
    assert run.sent == 10 * 5 + 300 * 5 + 10 * 5
    assert max(s.backlog for s in run.seconds) > 0 and run.drained


def test_the_start_lead_sets_where_the_hpa_syncs_fall_against_the_burst() -> None:
    def first_scale_out(lead: float | None) -> float:
        run = simulate(load_topology(), TALL, "openfaas", SimConfig(lead_s=lead))
        return next(s.t for s, d in zip(run.seconds, _desired(run, "score")) if d > 1)

    # Syncs every 15 s from the backend's start: at 13 s after a 2 s lead (the pod start delay), at 10.5 s after
    # 4.5 s; the next 1 s sample shows the new count.
    assert first_scale_out(None) == 14.0
    assert first_scale_out(4.5) == 11.0


def test_an_emulated_runs_recorded_clocks_put_the_hpa_and_kpa_on_its_phase() -> None:
    stages = ("validate", "enrich", "score")

    def first_scale_out(backend: str, clock: dict[str, float]) -> float:
        config = SimConfig(lead_s=2.0, clocks={backend: {st: clock for st in stages}})
        run = simulate(load_topology(), TALL, backend, config)
        return next(s.t for s, d in zip(run.seconds, _desired(run, "score")) if d > 1)

    # OpenFaasBackend.control_clock: the HPA's next sync 12.2 s after the load's start, whatever the lead.
    assert first_scale_out("openfaas", {"created_s": 7.0, "next_poll_s": 1.0, "next_sync_s": 12.2}) == 13.0
    assert first_scale_out("openfaas", {"created_s": 3.0, "next_poll_s": 1.0, "next_sync_s": 14.0}) == 15.0
    # Revision.control_clock: the KPA decides on its 2 s ticks, on the run's phase (burst at 10 s).
    assert first_scale_out("knative", {"created_s": 5.0, "last_observe_s": -0.5, "next_tick_s": 0.5}) == 11.0
    assert first_scale_out("knative", {"created_s": 5.0, "last_observe_s": -0.5, "next_tick_s": 1.5}) == 12.0


def test_an_emulated_runs_measured_data_plane_slows_the_replicas_their_start_and_the_transit() -> None:
    def run(**measured: object) -> SimRun:
        return simulate(load_topology(), TALL, "openfaas", SimConfig(lead_s=5.0, measured={"openfaas": measured}))

    def ready_at(r: SimRun) -> float:
        return next(s.t for s in r.seconds if next(g.ready for g in s.stages if g.stage == "score") > 1)

    plain = run()
    peak = max(s.backlog for s in plain.seconds)
    # A score replica holding its slot 30 ms more per event (the real HTTP hop) carries 4 / 80 ms = 50 ev/s, not 80.
    assert max(s.backlog for s in run(replica_hop_ms={"score": 30.0}).seconds) > peak * 1.2
    assert ready_at(run(pod_start_s=4.0)) == ready_at(plain) + 2  # pods take 4 s instead of the modeled 2 s
    # Finished orders reach the sink 0.3 s later than the model's own transit: in the backlog meanwhile.
    slow = run(baseline_e2e_s=0.3 + sum(m.transit_s for m in plain.models))
    assert slow.delivered == plain.delivered and slow.drained
    assert min(s.backlog for s in slow.seconds[3:8]) > 0 == max(s.backlog for s in plain.seconds[3:8])
    # A duel reads the generator's acknowledged count as last reported: 0.2 s old, 2 steps of orders fewer.
    aged = run(acked_age_s=0.2)
    assert all(a.acked <= p.acked for a, p in zip(aged.seconds, plain.seconds))
    assert aged.seconds[12].acked == plain.seconds[12].acked - round(0.2 * TALL.rate(11.9))
    assert aged.delivered == plain.delivered and aged.drained
