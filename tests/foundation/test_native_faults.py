"""The native Faust baseline under bad input: poison and oversize records dead-lettered, agents alive."""

from __future__ import annotations

import asyncio

import pytest

from load.batch import run_batch
from pipeline.backends import make_backend
from pipeline.broker.process import EmbeddedKafka
from pipeline.kafka import KafkaSettings, OffsetReader, create_topics
from pipeline.orders import OrderFactory
from pipeline.topology import Topology

from tests.foundation.poison import (  # noqa: F401 - private_broker is a fixture
    private_broker, poison_round, restart_when,
)

pytestmark = pytest.mark.kafka


async def test_poison_and_oversize_records_are_dead_lettered_and_committed_past(
        fresh_topology: Topology, kafka_settings: KafkaSettings) -> None:
    t = fresh_topology.with_stage_overrides(latency_ms=1)
    async with make_backend("native", t, kafka_settings) as backend:
        await backend.wait_started(60)
        await poison_round(backend, t, kafka_settings)
        assert backend.restarts == 0  # no agent crashed on the way


async def test_a_broker_restart_mid_run_loses_nothing(private_broker: EmbeddedKafka, topology: Topology) -> None:
    settings = KafkaSettings(private_broker.bootstrap, linger_ms=1)
    t = topology.with_stage_overrides(latency_ms=5)
    create_topics(settings, t.topics, t.partitions)
    async with make_backend("native", t, settings) as backend:
        await backend.wait_started(60)
        running = asyncio.create_task(run_batch(backend, t, settings, 1500, OrderFactory(seed=9, invalid_share=0.1),
                                                timeout_s=120))
        reader = OffsetReader(settings)
        group, topic = backend.lag_sources()[-1].group, backend.lag_sources()[-1].topic
        await restart_when(private_broker, lambda: sum(p.committed or 0 for p in reader.lag(group, topic).partitions) > 0)
        assert not running.done()  # the restart came mid-run
        result = await running
        r = result.report
        assert result.complete and r["lost"] == 0 and r["misrouted"] == 0, r
        reader.close()
    print(f"duplicates after a broker restart: {r['duplicated']}, worker restarts: {backend.restarts}")
