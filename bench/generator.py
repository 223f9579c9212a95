"""The load generator's maximum sustained open-loop rate, beside Kafka's own producer on the same broker."""

from __future__ import annotations

import uuid

from load.generator import run_load
from load.producer import LoadPlan
from load.profiles import Constant
from pipeline.kafka import KafkaSettings, create_topics
from pipeline.topology import Topology

from bench.harness import RECORD_BYTES

SATURATE_EPS = 250_000.0


def _run(settings: KafkaSettings, topology: Topology, workers: int, rate: float, seconds: float):  # type: ignore[no-untyped-def]
    t = topology.with_topic_prefix(f"gen-{uuid.uuid4().hex[:6]}-")
    create_topics(settings, [t.input.topic], t.partitions)
    plan = LoadPlan(t, uuid.uuid4().hex[:8], Constant(rate, seconds), seed=3, invalid_share=0.0,
                    record_bytes=RECORD_BYTES, workers=workers)
    return run_load(plan, settings)


def max_sustained_rate(settings: KafkaSettings, topology: Topology, workers: int) -> float:
    """Saturate to find the ceiling, then step down until a run keeps its schedule (not flagged behind)."""
    ceiling = _run(settings, topology, workers, SATURATE_EPS, 4.0).achieved_rate
    for share in (0.9, 0.8, 0.7, 0.6, 0.5):
        rate = ceiling * share
        result = _run(settings, topology, workers, rate, 6.0)
        if not result.behind and result.acked == result.scheduled:
            return rate
    return ceiling * 0.4
