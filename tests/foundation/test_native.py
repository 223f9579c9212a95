"""The native Faust baseline on the real broker: every order where it belongs, exactly once."""

from __future__ import annotations

import pytest

from pipeline.backends import make_backend
from pipeline.kafka import KafkaSettings, OffsetReader
from pipeline.orders import OrderFactory
from pipeline.runner import run_orders
from pipeline.topology import Topology

pytestmark = pytest.mark.kafka


async def test_native_pipeline_delivers_valid_orders_and_dead_letters_invalid_ones(
        fresh_topology: Topology, kafka_settings: KafkaSettings) -> None:
    topology = fresh_topology.with_stage_overrides(latency_ms=1)
    backend = make_backend("native", topology, kafka_settings)
    async with backend:
        result = await run_orders(backend, topology, kafka_settings, 600, OrderFactory(7, invalid_share=0.2), timeout_s=120)
        d = result.delivery
        assert d.complete and d.lost == 0 and d.misrouted == 0
        assert len(d.delivered) == len(d.expected_valid) > 400
        assert len(d.dead_lettered) == len(d.expected_invalid) > 60
        assert d.duplicates == 0
        assert set(d.reasons) <= {"customer_id", "currency", "country", "items", "items[0].qty", "created_at"}
        assert [s.ready for s in backend.status()] == [1, 1, 1]
        reader = OffsetReader(kafka_settings)
        lag = {s.stage: reader.lag(s.group, s.topic) for s in backend.lag_sources()}
        assert set(lag) == {"validate", "enrich", "score"}
    assert all(p.committed is not None for p in lag["validate"].partitions)
