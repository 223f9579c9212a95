"""The whole pipeline per backend: sustained events/s end to end, replicas free to scale."""

from __future__ import annotations

import asyncio
import uuid

from pipeline.backends import make_backend
from pipeline.kafka import KafkaSettings, create_topics
from pipeline.orders import OrderFactory
from pipeline.runner import run_orders
from pipeline.topology import Topology

from bench.harness import RECORD_BYTES
from bench.memory import peak_of


def pipeline_rate(name: str, settings: KafkaSettings, topology: Topology, latency_ms: float, events: int,
                  memory: dict[str, float] | None = None) -> float:
    """Events/s from the first order sent to the last one at its sink (cold start included)."""
    t = topology.with_topic_prefix(f"pl{name[:2]}-{uuid.uuid4().hex[:6]}-").with_stage_overrides(latency_ms=latency_ms)
    create_topics(settings, t.topics, t.partitions)

    async def go() -> float:
        async with make_backend(name, t, settings) as backend:
            result = await run_orders(backend, t, settings, events, OrderFactory(5, 0.0, RECORD_BYTES), timeout_s=900)
            if memory is not None:
                for label, pattern in (("stage replica (Knative service)", "pipeline.knative.service"),
                                       ("function replica (watchdog)", "pipeline.openfaas.watchdog"),
                                       ("connector", "connector"), ("native worker", "pipeline.native.worker")):
                    peak = peak_of(pattern)
                    if peak is not None:
                        memory[label] = max(memory.get(label, 0.0), peak)
        if result.delivery.lost:
            raise RuntimeError(f"{name}: {result.delivery.lost} orders lost")
        return result.throughput

    return asyncio.run(go())
