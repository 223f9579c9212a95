"""One stage hop: events/s through a single stage (validate, 0 ms latency), four ways.

(a) the limit: a plain confluent-kafka consume → stage function → produce loop with batching;
(b) the native Faust agent; (c) the Knative path; (d) the OpenFaaS path. Each reads a prefilled
topic of 512-byte orders; the rate is taken from the first output record to the last.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import uuid
from collections.abc import Callable
from typing import Any

import uvloop
from confluent_kafka import Consumer, Producer, TopicPartition

from functions import STAGES, Emit
from pipeline import events
from pipeline.backends import make_backend
from pipeline.kafka import KafkaSettings, create_topics
from pipeline.topology import Topology

from bench.harness import prefill, steady_rate

HOP_EVENTS = 20_000


def single_stage(topology: Topology, prefix: str) -> Topology:
    """The pipeline cut down to its first stage, on fresh topics, with no emulated latency."""
    t = topology.with_topic_prefix(prefix).with_stage_overrides(latency_ms=0)
    return t.model_copy(update={"stages": t.stages[:1]})


def raw_loop(bootstrap: str, topology_json: str, group: str, index: int = 0) -> None:
    """(a): consume a batch, run stage `index`, produce the batch, wait for acks, commit. At-least-once."""
    topology = Topology.model_validate_json(topology_json)
    stage = topology.stages[index]
    fn = STAGES[stage.function]
    settings = KafkaSettings(bootstrap)
    consumer = Consumer(settings.consumer(group))
    producer = Producer(settings.producer(**{"linger.ms": 5}))
    consumer.subscribe([stage.input.topic])
    source = f"{topology.source}/{stage.name}"
    while True:
        msgs = consumer.consume(1000, timeout=0.5)
        positions: dict[tuple[str, int], int] = {}
        for msg in msgs:
            if msg.error():
                continue
            positions[(msg.topic(), msg.partition())] = msg.offset() + 1
            event = events.from_kafka(msg.key(), msg.value(), msg.headers())
            result = fn(events.data_of(event))
            if isinstance(result, Emit):
                rec = events.to_kafka(events.successor(event, stage.output.type, source, result.data))
                producer.produce(stage.output.topic, rec.value, rec.key, headers=rec.headers)
        if positions:
            producer.flush()  # every output acknowledged before the inputs are committed
            consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()], asynchronous=False)


def measure_raw(settings: KafkaSettings, topology: Topology, partitions: int) -> float:
    t = single_stage(topology, f"hopa-{uuid.uuid4().hex[:6]}-")
    stage = t.stages[0]
    prefill(settings, t, stage.input.topic, HOP_EVENTS, partitions)
    create_topics(settings, [stage.output.topic], partitions)
    proc = mp.get_context("spawn").Process(target=raw_loop, args=(settings.bootstrap_servers, t.model_dump_json(), "hop-a"),
                                          daemon=True)
    proc.start()
    try:
        return steady_rate(settings, [stage.output.topic], HOP_EVENTS, alive=proc.is_alive)
    finally:
        proc.kill()
        proc.join()


def measure_backend(name: str, settings: KafkaSettings, topology: Topology, partitions: int,
                    options: dict[str, Any] | None = None) -> float:
    """(b), (c), (d): the backend runs the single stage; the rate is read at its output topic."""
    t = single_stage(topology, f"hop{name[:2]}-{uuid.uuid4().hex[:6]}-")
    stage = t.stages[0]
    create_topics(settings, t.topics, partitions)
    prefill(settings, t, stage.input.topic, HOP_EVENTS, partitions)

    async def go() -> float:
        async with make_backend(name, t, settings, **(options or {})):
            return await asyncio.to_thread(steady_rate, settings, [stage.output.topic], HOP_EVENTS)

    return uvloop.run(go())


HOPS: dict[str, Callable[[KafkaSettings, Topology, int], float]] = {
    "a_confluent_loop": measure_raw,
    "b_native_faust": lambda s, t, p: measure_backend("native", s, t, p),
    "c_knative": lambda s, t, p: measure_backend("knative", s, t, p),
    "d_openfaas": lambda s, t, p: measure_backend("openfaas", s, t, p),
}
