"""The Knative emulation end to end on the real broker: source, broker, triggers, KPA-scaled replicas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from load.batch import run_batch

from pipeline import events
from pipeline.kafka import KafkaSettings
from pipeline.knative.backend import KnativeBackend
from pipeline.knative.source import wrap_record
from pipeline.orders import OrderFactory
from pipeline.topology import Emulation, Topology


def test_non_cloudevent_records_are_wrapped_as_upstream() -> None:
    ev = wrap_record("ns", "src", "orders", 3, 17, b"k-1", b'{"a":1}',
                     [("content-type", b"Application/JSON"), ("X-Trace_Id", b"t1")], 1_700_000_000_000)
    attrs = ev.get_attributes()
    assert attrs["type"] == "dev.knative.kafka.event"
    assert attrs["source"] == "/apis/v1/namespaces/ns/kafkasources/src#orders"
    assert (attrs["subject"], attrs["id"]) == ("partition:3#17", "partition:3/offset:17")
    assert attrs["key"] == attrs["partitionkey"] == "k-1"
    assert attrs["datacontenttype"] == "application/json" and attrs["kafkaheaderxtraceid"] == "t1"
    assert (attrs["knativekafkapartition"], attrs["knativekafkaoffset"]) == ("3", "17")


def test_cloudevent_records_pass_through_with_partition_and_offset() -> None:
    rec = events.to_kafka(events.new_event("t.x", "/s", {"a": 1}, id="e-1", key="c-9"), "binary")
    ev = wrap_record("ns", "src", "orders", 0, 5, rec.key, rec.value, rec.headers, None)
    assert (ev.get_type(), ev.get_id(), ev.get_source()) == ("t.x", "e-1", "/s")
    assert ev.get_extension("knativekafkaoffset") == "5" and ev.get_extension("key") is None


@pytest.mark.kafka
async def test_pipeline_delivers_everything_scales_out_and_back_to_zero(
        fresh_topology: Topology, kafka_settings: KafkaSettings) -> None:
    t = fresh_topology.with_stage_overrides(knative={"window_s": 6}, latency_ms=2)
    # 80 ms per order at concurrency 4: ~7 s of work for one replica, so the burst outlasts a cold start
    # even on a loaded machine, and the KPA must scale out to finish it quickly.
    score = t.stage("score").model_copy(update={"latency_ms": 80})
    t = t.model_copy(update={"stages": (*t.stages[:-1], score), "emulation": Emulation(pod_start_delay_s=0.2)})
    async with KnativeBackend(t, kafka_settings, scale_to_zero_grace_period_s=4) as backend:
        result = await run_batch(backend, t, kafka_settings, 400, OrderFactory(seed=7, invalid_share=0.1), timeout_s=60)
        r = result.report
        assert result.complete and r["lost"] == 0 and r["misrouted"] == 0, r
        invalid = result.events - result.valid
        assert invalid > 10 and "unknown" not in r["dead_letter_reasons"]  # each names the field it broke
        assert result.replicas_seen["score"] > 1  # the burst scaled the slow stage out
        by = {s.stage: s for s in backend.status()}
        assert by["validate"].dead_lettered == invalid
        # Idle: every service goes back to zero (window 6 s, then the grace period).
        deadline = time.monotonic() + 40
        while any(s.ready or s.desired for s in backend.status()):
            assert time.monotonic() < deadline, backend.status()
            await asyncio.sleep(0.2)
        assert all(s.cold_starts >= 1 for s in backend.status())


@pytest.mark.kafka
async def test_at_least_once_through_replica_kill_and_dispatcher_crash(
        fresh_topology: Topology, kafka_settings: KafkaSettings) -> None:
    """The same failures as the OpenFaaS test: a SIGKILLed replica under load, a crashed Trigger dispatcher."""
    t = fresh_topology.with_stage_overrides(latency_ms=30, min_replicas=1, max_replicas=1,
                                            delivery={"backoff_delay_s": 0.05})
    score = t.stage("score").model_copy(update={"latency_ms": 80})
    t = t.model_copy(update={"stages": (*t.stages[:-1], score), "emulation": Emulation(pod_start_delay_s=0.2)})
    async with KnativeBackend(t, kafka_settings) as backend:
        await backend.wait_started(30)
        running = asyncio.create_task(run_batch(backend, t, kafka_settings, 400, OrderFactory(seed=7, invalid_share=0.1),
                                                timeout_s=90))
        rev = backend.revisions["score"]
        await until(lambda: backend.trigger_stats["score"].processed >= 20 and rev.in_flight > 0, 30)
        assert rev.kill_one() is not None  # SIGKILL with requests in flight: 502s, retried
        validate = backend.triggers["validate"]
        await until(lambda: backend.trigger_stats["validate"].processed >= 40, 30)
        validate.crash()  # a crashed dispatcher pod: replaced; its uncommitted records come again
        await until(lambda: validate.restarts >= 1 and bool(validate.current.dispatcher.assignment), 30)
        result = await running
        r = result.report
        assert result.complete and r["lost"] == 0 and r["misrouted"] == 0, r
        by = {s.stage: s for s in backend.status()}
        assert by["score"].retries >= 1 and by["score"].extra["replica_crashes"] == 1, "the kill went unnoticed"
        assert by["score"].cold_starts >= 2  # the dead replica was replaced
        assert by["validate"].extra["dispatcher_restarts"] == 1
        assert by["score"].processed >= r["delivered"] - r["duplicated"]
    print(f"duplicates after kill + crash: {r['duplicated']}")


async def until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {timeout_s:.0f} s"
        await asyncio.sleep(0.05)
