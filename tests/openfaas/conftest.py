"""Shared helpers of the OpenFaaS tests: produce seeded orders, read topics back by ldseq."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer

from pipeline import events
from pipeline.kafka import KafkaSettings
from pipeline.orders import OrderFactory, order_event
from pipeline.topology import Topology


def produce_orders(settings: KafkaSettings, topology: Topology, count: int, run_id: str,
                   invalid_share: float = 0.1, start: int = 0) -> tuple[set[int], set[int]]:
    """Produce `count` orders; returns the sequence numbers of the valid and of the invalid ones."""
    factory = OrderFactory(seed=7, invalid_share=invalid_share)
    producer = Producer(settings.producer())
    valid, invalid = set(), set()
    for seq in range(start, start + count):
        data, ok = factory.order(seq)
        (valid if ok else invalid).add(seq)
        rec = order_event(topology, run_id, seq, time.time_ns() // 1000, data)
        producer.produce(topology.input.topic, rec.value, rec.key, headers=rec.headers)
        producer.poll(0)
    assert producer.flush(30) == 0
    return valid, invalid


class TopicReader:
    """Reads a topic from the beginning; counts records per ldseq (duplicates stay visible)."""

    def __init__(self, settings: KafkaSettings, topic: str, group: str) -> None:
        self.consumer = Consumer(settings.consumer(group, **{"auto.offset.reset": "earliest"}))
        self.consumer.subscribe([topic])
        self.seqs: Counter[int] = Counter()
        self.events: list[events.CloudEvent] = []

    def poll(self, seconds: float = 0.2) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for msg in self.consumer.consume(500, timeout=0.05):
                if msg.error():
                    continue
                event = events.from_kafka(msg.key(), msg.value(), msg.headers())
                self.events.append(event)
                bk = events.bookkeeping_of(event)
                if bk is not None:
                    self.seqs[bk.seq] += 1

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def reader(kafka_settings: KafkaSettings, unique: Callable[[str], str]):
    made: list[TopicReader] = []

    def make(topic: str) -> TopicReader:
        made.append(TopicReader(kafka_settings, topic, unique("reader")))
        return made[-1]

    yield make
    for r in made:
        r.close()
