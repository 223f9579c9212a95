"""OpenFaaS emulation under bad input and faults: poison and oversize records never stall a partition."""

from __future__ import annotations

import asyncio

import pytest

from load.batch import run_batch
from pipeline.backends import make_backend
from pipeline.broker.process import EmbeddedKafka
from pipeline.kafka import KafkaSettings
from pipeline.orders import OrderFactory
from pipeline.topology import Topology

from tests.foundation.poison import (  # noqa: F401 - private_broker is a fixture
    committed_past_everything, private_broker, poison_round, restart_when,
)
from tests.openfaas.test_backend import fast

pytestmark = pytest.mark.kafka


async def test_poison_and_oversize_records_are_dead_lettered_and_committed_past(
        fresh_topology: Topology, kafka_settings: KafkaSettings) -> None:
    t = fast(fresh_topology, latency_ms=1, min_replicas=1)
    async with make_backend("openfaas", t, kafka_settings) as backend:
        await backend.wait_started(30)
        await poison_round(backend, t, kafka_settings)

async def test_a_broker_restart_mid_run_loses_nothing(private_broker: EmbeddedKafka, topology: Topology) -> None:
    settings = KafkaSettings(private_broker.bootstrap, linger_ms=1)
    t = fast(topology, latency_ms=5, min_replicas=1)
    async with make_backend("openfaas", t, settings) as backend:
        await backend.wait_started(30)
        running = asyncio.create_task(run_batch(backend, t, settings, 1500, OrderFactory(seed=9, invalid_share=0.1),
                                                timeout_s=120))
        await restart_when(private_broker, lambda: sum(s.processed for s in backend.status()) >= 300)
        assert not running.done()  # the restart came mid-run
        result = await running
        r = result.report
        assert result.complete and r["lost"] == 0 and r["misrouted"] == 0, r
        await committed_past_everything(settings, [(s.group, s.topic) for s in backend.lag_sources()], 60)
    print(f"duplicates after a broker restart: {r['duplicated']}")
