"""The native Faust baseline on the real broker: every order where it belongs, exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from load.batch import run_batch
from pipeline.backends import make_backend
from pipeline.native.app import app_id
from pipeline.kafka import KafkaSettings, OffsetReader
from pipeline.orders import OrderFactory
from pipeline.topology import Topology

pytestmark = pytest.mark.kafka


async def test_native_pipeline_delivers_valid_orders_and_dead_letters_invalid_ones(
        fresh_topology: Topology, kafka_settings: KafkaSettings) -> None:
    topology = fresh_topology.with_stage_overrides(latency_ms=1)
    backend = make_backend("native", topology, kafka_settings)
    async with backend:
        result = await run_batch(backend, topology, kafka_settings, 600, OrderFactory(7, invalid_share=0.2), timeout_s=120)
        r = result.report
        assert result.complete and r["lost"] == 0 and r["misrouted"] == 0
        assert r["delivered"] == result.valid > 400
        assert r["dead_lettered"] == result.events - result.valid > 60
        assert r["duplicated"] == 0
        assert set(r["dead_letter_reasons"]) <= {"customer_id", "currency", "country", "items", "items[0].qty", "created_at"}
        assert [s.ready for s in backend.status()] == [1, 1, 1]
        reader = OffsetReader(kafka_settings)
        lag = {s.stage: reader.lag(s.group, s.topic) for s in backend.lag_sources()}
        assert set(lag) == {"validate", "enrich", "score"}
    assert all(p.committed is not None for p in lag["validate"].partitions)


async def test_a_killed_worker_is_replaced_and_nothing_is_lost(fresh_topology: Topology,
                                                               kafka_settings: KafkaSettings) -> None:
    import asyncio

    topology = fresh_topology.with_stage_overrides(latency_ms=5)
    async with make_backend("native", topology, kafka_settings) as backend:
        running = asyncio.create_task(run_batch(backend, topology, kafka_settings, 1500, OrderFactory(3, 0.1),
                                                timeout_s=180))
        await asyncio.sleep(2.0)
        assert backend.kill_replica("score") == "native-worker-0"
        result = await running
        assert result.complete and result.report["lost"] == 0, result.report
        assert backend.restarts == 1 and [s.ready for s in backend.status()] == [1, 1, 1]
    # Faust's data directory went to the backend's scratch folder, not the user's working directory.
    assert not [p for p in Path.cwd().iterdir() if p.name.startswith(app_id(topology))]
