"""The OpenFaaS + KEDA emulation end to end on the real broker: delivery, dead letters, scaling, failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from pipeline import events
from pipeline.backends import make_backend
from pipeline.kafka import KafkaSettings, OffsetReader
from pipeline.topology import Topology

from tests.openfaas.conftest import produce_orders

pytestmark = pytest.mark.kafka


def fast(topology: Topology, **stage: object) -> Topology:
    """Test settings: KEDA polling 1 s, cooldown 3 s, stabilization 2 s, pods start after 0.2 s."""
    t = topology.with_stage_overrides(keda={"polling_interval_s": 1, "cooldown_period_s": 3, "initial_cooldown_period_s": 3,
                                            "scale_down_stabilization_s": 2, "lag_threshold": 10},
                                      delivery={"backoff_delay_s": 0.05}, **stage)
    return t.model_copy(update={"emulation": t.emulation.model_copy(update={"pod_start_delay_s": 0.2})})


async def until(condition: Callable[[], bool], timeout_s: float, what: str, tick: Callable[[], None] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:.0f} s waiting for {what}"
        if tick:
            await asyncio.to_thread(tick)
        await asyncio.sleep(0.1)


async def test_burst_delivers_every_order_scales_out_and_back_to_zero(
        fresh_topology: Topology, kafka_settings: KafkaSettings, reader) -> None:
    topo = fast(fresh_topology, latency_ms=20)
    valid, invalid = produce_orders(kafka_settings, topo, 600, "burst")
    out, dlq = reader(topo.output.topic), reader(topo.dead_letter_topic)
    peak: dict[str, int] = {}
    async with make_backend("openfaas", topo, kafka_settings, hpa_sync_period_s=1.0) as backend:
        def observe() -> None:
            for s in backend.status():
                peak[s.stage] = max(peak.get(s.stage, 0), s.ready)
            out.poll(0.1)
            dlq.poll(0.1)

        await until(lambda: set(out.seqs) >= valid and set(dlq.seqs) >= invalid, 60, "all orders", observe)
        assert set(out.seqs) == valid  # nothing extra, nothing missing (duplicates would show as counts > 1)
        assert set(dlq.seqs) == invalid
        for event in dlq.events:
            assert event.get_extension("ldstage") == "validate"
            assert events.rejection_reason(event)
        assert max(peak.values()) >= 2, f"no scale-out under the burst: {peak}"
        # Idle: KEDA returns every function to zero after the cooldown.
        await until(lambda: all(s.desired == 0 and s.ready == 0 for s in backend.status()), 30, "scale to zero")
        status = {s.stage: s for s in backend.status()}
        assert status["validate"].dead_lettered == len(invalid)
        assert status["score"].cold_starts >= 1 and status["score"].extra["gateway_200"] >= len(valid)
        lag = OffsetReader(kafka_settings)
        for source in backend.lag_sources():
            assert lag.lag(source.group, source.topic).total == 0


async def test_at_least_once_through_replica_kill_and_connector_crash(
        fresh_topology: Topology, kafka_settings: KafkaSettings, reader) -> None:
    # One replica per function, and score slower than its feed: score's replica is always full when the
    # SIGKILL comes, so it certainly hits requests in flight.
    topo = fast(fresh_topology, latency_ms=30, min_replicas=1, max_replicas=1)
    topo = topo.model_copy(update={"stages": (*topo.stages[:2], topo.stages[2].model_copy(update={"latency_ms": 80}))})
    valid, invalid = produce_orders(kafka_settings, topo, 400, "failures")
    out, dlq = reader(topo.output.topic), reader(topo.dead_letter_topic)
    async with make_backend("openfaas", topo, kafka_settings, hpa_sync_period_s=1.0) as backend:
        await backend.wait_started(30)
        score = backend.replicas["score"]
        await until(lambda: backend.connector_stats("score").handled >= 20
                    and backend.connector_stats("score").in_flight > 0, 30, "score under way")
        assert score.kill_one() is not None  # SIGKILL with requests in flight: 502s, retried
        validate = backend.connectors["validate"]
        await until(lambda: backend.connector_stats("validate").handled >= 40, 30, "validate under way")
        validate.crash()  # a crashed connector pod: replaced; its uncommitted records come again
        await until(lambda: validate.restarts >= 1 and bool(validate.current.dispatcher.assignment), 30,
                    "validate connector replaced")
        await until(lambda: set(out.seqs) >= valid and set(dlq.seqs) >= invalid, 60, "all orders",
                    lambda: (out.poll(0.1), dlq.poll(0.1)))
        assert set(out.seqs) == valid and set(dlq.seqs) == invalid  # every order once at least, nothing extra
        status = {s.stage: s for s in backend.status()}
        assert status["score"].extra["gateway_502"] >= 1 and status["score"].retries >= 1, "the kill went unnoticed"
        assert status["score"].extra["replica_crashes"] == 1 and status["score"].cold_starts >= 2  # replaced
        assert status["validate"].extra["connector_restarts"] == 1
        assert status["score"].processed >= len(valid)
        async with httpx.AsyncClient() as client:  # the gateway's metric names and labels
            text = (await client.get(backend.gateway_url + "/metrics")).text
        assert 'gateway_function_invocation_total{code="200",function_name="score.openfaas-fn"}' in text
        assert "gateway_service_count" in text and "gateway_functions_seconds_bucket" in text
    duplicates = sum(n - 1 for n in out.seqs.values()) + sum(n - 1 for n in dlq.seqs.values())
    print(f"duplicates after kill + crash: {duplicates}")
