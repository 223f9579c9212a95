"""`lagduel run`: feed N seeded orders through a backend and check every one arrives where it should.

Valid orders must reach the output topic exactly once; invalid ones the dead-letter topic with a
reason. Counts are by the sequence number each order carries, so loss and duplication are exact.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from pipeline import events
from pipeline.backends import Backend, StageStatus
from pipeline.kafka import KafkaSettings
from pipeline.orders import OrderFactory, order_event
from pipeline.topology import Topology


@dataclass
class Delivery:
    """What arrived at the sinks, by sequence number."""

    expected_valid: set[int] = field(default_factory=set)
    expected_invalid: set[int] = field(default_factory=set)
    delivered: Counter[int] = field(default_factory=Counter)
    dead_lettered: Counter[int] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    foreign: int = 0

    @property
    def lost(self) -> int:
        return len(self.expected_valid - self.delivered.keys()) + len(self.expected_invalid - self.dead_lettered.keys())

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.delivered.values() if n > 1) + sum(n - 1 for n in self.dead_lettered.values() if n > 1)

    @property
    def misrouted(self) -> int:
        """Valid orders dead-lettered or invalid ones delivered: a stage or adapter bug."""
        return len(self.expected_valid & self.dead_lettered.keys()) + len(self.expected_invalid & self.delivered.keys())

    @property
    def complete(self) -> bool:
        return self.expected_valid <= self.delivered.keys() and self.expected_invalid <= self.dead_lettered.keys()


class SinkReader:
    """Reads the output and dead-letter topics from the beginning, keeping only this run's events."""

    def __init__(self, settings: KafkaSettings, topology: Topology, run_id: str, delivery: Delivery) -> None:
        self.run_id, self.delivery, self.topology = run_id, delivery, topology
        self._consumer = Consumer(settings.consumer(f"lagduel-sink-{run_id}"))
        parts = []
        for topic in (topology.output.topic, topology.dead_letter_topic):
            md = self._consumer.list_topics(topic, timeout=10).topics[topic]
            parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions]
        self._consumer.assign(parts)

    def poll(self) -> int:
        msgs = self._consumer.consume(num_messages=1000, timeout=0.05)
        for msg in msgs:
            if msg.error():
                continue
            try:
                event = events.from_kafka(msg.key(), msg.value(), msg.headers())
            except events.EventError:
                self.delivery.foreign += 1
                continue
            book = events.bookkeeping_of(event)
            if book is None or book.run_id != self.run_id:
                self.delivery.foreign += 1
                continue
            if msg.topic() == self.topology.output.topic:
                self.delivery.delivered[book.seq] += 1
            else:
                self.delivery.dead_lettered[book.seq] += 1
                self.delivery.reasons[_reason_kind(events.rejection_reason(event))] += 1
        return len(msgs)

    def close(self) -> None:
        self._consumer.close()


def _reason_kind(reason: str | None) -> str:
    """'items[0].qty: 0 is not…' -> 'items[0].qty': reasons grouped by the field they name."""
    return (reason or "no reason").split(":", 1)[0]


@dataclass
class RunResult:
    run_id: str
    events: int
    seconds: float
    delivery: Delivery
    replicas_seen: dict[str, int]

    @property
    def throughput(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


Progress = Callable[[Delivery, list[StageStatus]], None]


def produce_orders(settings: KafkaSettings, topology: Topology, run_id: str, count: int, factory: OrderFactory,
                   delivery: Delivery) -> None:
    """The built-in producer: `count` orders as fast as the broker takes them."""
    producer = Producer(settings.producer())
    for seq in range(count):
        data, valid = factory.order(seq)
        (delivery.expected_valid if valid else delivery.expected_invalid).add(seq)
        rec = order_event(topology, run_id, seq, time.time_ns() // 1000, data, factory.record_bytes)
        while True:
            try:
                producer.produce(topology.input.topic, rec.value, rec.key, headers=rec.headers)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60) != 0:
        raise RuntimeError("the broker did not acknowledge every order within 60 s")


async def run_orders(backend: Backend, topology: Topology, settings: KafkaSettings, count: int, factory: OrderFactory,
                     timeout_s: float = 600.0, progress: Progress | None = None) -> RunResult:
    """Produce `count` orders into a running backend and wait until every one reached its sink (or time out)."""
    run_id = uuid.uuid4().hex[:12]
    delivery = Delivery()
    reader = SinkReader(settings, topology, run_id, delivery)
    peak: dict[str, int] = {}
    started = time.monotonic()
    producing = asyncio.create_task(asyncio.to_thread(produce_orders, settings, topology, run_id, count, factory, delivery))
    try:
        last_tick = 0.0
        while time.monotonic() - started < timeout_s:
            got = await asyncio.to_thread(reader.poll)
            if producing.done():
                producing.result()
                if delivery.complete:
                    break
            now = time.monotonic()
            if now - last_tick >= 0.5:
                statuses = backend.status()
                for s in statuses:
                    peak[s.stage] = max(peak.get(s.stage, 0), s.ready)
                if progress:
                    progress(delivery, statuses)
                last_tick = now
            if not got:
                await asyncio.sleep(0.02)
        elapsed = time.monotonic() - started
        # Linger briefly so late duplicates are counted rather than missed.
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            if not await asyncio.to_thread(reader.poll):
                await asyncio.sleep(0.05)
    finally:
        if not producing.done():
            await asyncio.wait([producing], timeout=60)
        reader.close()
    return RunResult(run_id, count, elapsed, delivery, peak)
