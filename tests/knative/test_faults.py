"""Knative emulation under bad input and faults: poison and oversize records never stall a partition."""

from __future__ import annotations

import asyncio

import pytest

from load.batch import run_batch
from pipeline.broker.process import EmbeddedKafka
from pipeline.kafka import KafkaSettings
from pipeline.knative.backend import KnativeBackend
from pipeline.orders import OrderFactory
from pipeline.topology import Emulation, Topology

from tests.foundation.poison import (  # noqa: F401 - private_broker is a fixture
    NOT_AN_EVENT, committed_past_everything, private_broker, poison_round, restart_when,
)

pytestmark = pytest.mark.kafka


async def test_poison_and_oversize_records_are_dead_lettered_or_counted_and_committed_past(
        fresh_topology: Topology, kafka_settings: KafkaSettings) -> None:
    t = fresh_topology.with_stage_overrides(latency_ms=1, min_replicas=1, delivery={"backoff_delay_s": 0.05})
    t = t.model_copy(update={"emulation": Emulation(pod_start_delay_s=0.2)})
    async with KnativeBackend(t, kafka_settings) as backend:
        await backend.wait_started(30)
        # The non-CloudEvent is wrapped as dev.knative.kafka.event (knative.md §1.3), which no Trigger matches:
        # filtered everywhere as upstream, counted once by the output Trigger.
        await poison_round(backend, t, kafka_settings, dead_lettered=lambda value: value != NOT_AN_EVENT)
        assert backend.trigger_stats["output"].unrouted == 1
        assert backend.status()[0].extra["unrouted_events"] == 1


async def test_a_broker_restart_mid_run_loses_nothing(private_broker: EmbeddedKafka, topology: Topology) -> None:
    settings = KafkaSettings(private_broker.bootstrap, linger_ms=1)
    t = topology.with_stage_overrides(latency_ms=5, min_replicas=1, delivery={"backoff_delay_s": 0.05})
    t = t.model_copy(update={"emulation": Emulation(pod_start_delay_s=0.2)})
    async with KnativeBackend(t, settings) as backend:
        await backend.wait_started(30)
        running = asyncio.create_task(run_batch(backend, t, settings, 1500, OrderFactory(seed=9, invalid_share=0.1),
                                                timeout_s=120))
        await restart_when(private_broker, lambda: backend.trigger_stats["output"].processed >= 100)
        assert not running.done()  # the restart came mid-run
        result = await running
        r = result.report
        assert result.complete and r["lost"] == 0 and r["misrouted"] == 0, r
        await committed_past_everything(settings, [(s.group, s.topic) for s in backend.lag_sources()], 60)
    print(f"duplicates after a broker restart: {r['duplicated']}")
