"""KafkaDispatcher on the real broker: everything handled, nothing committed before it is handled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from pipeline.delivery import DispatcherConfig, KafkaDispatcher, Produce
from pipeline.events import KafkaRecord
from pipeline.kafka import KafkaSettings, OffsetReader, create_topics

pytestmark = pytest.mark.kafka


def fill(settings: KafkaSettings, topic: str, n: int, partitions: int = 3) -> None:
    create_topics(settings, [topic], partitions)
    p = Producer(settings.producer())
    for i in range(n):
        p.produce(topic, str(i).encode(), partition=i % partitions)
    assert p.flush(10) == 0


def read_all(settings: KafkaSettings, topic: str, group: str, expect: int, timeout_s: float = 20) -> list[bytes]:
    c = Consumer(settings.consumer(group))
    c.subscribe([topic])
    out: list[bytes] = []
    end = time.monotonic() + timeout_s
    while len(out) < expect and time.monotonic() < end:
        out += [m.value() for m in c.consume(500, timeout=0.5) if not m.error()]
    c.close()
    return out


async def until(cond, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("ordering", ["ordered", "unordered"])
async def test_every_record_is_handled_produced_and_committed(kafka_settings: KafkaSettings, unique, ordering: str) -> None:
    src, dst, group = unique("src"), unique("dst"), unique("g")
    fill(kafka_settings, src, 300)
    create_topics(kafka_settings, [dst], 3)
    failures = {"left": 3}

    async def handler(msg: Message) -> Sequence[Produce]:
        if failures["left"] and int(msg.value()) % 50 == 7:  # a flaky handler: the record must still get through
            failures["left"] -= 1
            raise RuntimeError("flaky")
        await asyncio.sleep(0.001)
        return [Produce(dst, KafkaRecord(None, b"out-" + msg.value(), []))]

    d = KafkaDispatcher(kafka_settings, DispatcherConfig(group, (src,), ordering, 20, 0.2), handler)  # type: ignore[arg-type]
    task = asyncio.create_task(d.run())
    await until(lambda: d.stats.handled == 300)
    await until(lambda: sum(d.stats.committed.values()) == 300)
    d.stop()
    await task
    assert d.stats.handler_errors == 3
    out = read_all(kafka_settings, dst, unique("check"), 300)
    assert sorted(out) == sorted(b"out-" + str(i).encode() for i in range(300))
    assert OffsetReader(kafka_settings).lag(group, src).total == 0


async def test_commit_waits_for_the_slowest_record(kafka_settings: KafkaSettings, unique) -> None:
    src, group = unique("src"), unique("g")
    fill(kafka_settings, src, 20, partitions=1)
    release = asyncio.Event()

    async def handler(msg: Message) -> Sequence[Produce]:
        if msg.offset() == 5:
            await release.wait()  # offset 5 is stuck; 6..19 finish first
        return []

    d = KafkaDispatcher(kafka_settings, DispatcherConfig(group, (src,), "unordered", 50, 0.1), handler)
    task = asyncio.create_task(d.run())
    await until(lambda: d.stats.handled == 19)
    await asyncio.sleep(0.3)  # several commit intervals pass
    assert d.stats.committed.get((src, 0)) == 5
    assert OffsetReader(kafka_settings).lag(group, src).total == 15
    release.set()
    await until(lambda: d.stats.committed.get((src, 0)) == 20)
    d.stop()
    await task


async def test_a_stopped_dispatcher_resumes_where_it_committed(kafka_settings: KafkaSettings, unique) -> None:
    src, group = unique("src"), unique("g")
    fill(kafka_settings, src, 100, partitions=2)
    seen: list[int] = []

    async def handler(msg: Message) -> Sequence[Produce]:
        seen.append(int(msg.value()))
        return []

    for _ in range(2):  # two lives of the same group
        d = KafkaDispatcher(kafka_settings, DispatcherConfig(group, (src,), "ordered", 10, 0.1), handler)
        task = asyncio.create_task(d.run())
        await until(lambda: len(set(seen)) >= 50)
        d.stop()
        await task
    d = KafkaDispatcher(kafka_settings, DispatcherConfig(group, (src,), "ordered", 10, 0.1), handler)
    task = asyncio.create_task(d.run())
    await until(lambda: len(set(seen)) == 100)
    d.stop()
    await task
    assert set(seen) == set(range(100))
    assert len(seen) - 100 <= 20  # redelivery is bounded by what was in flight at each stop
    tp_committed = Consumer(kafka_settings.consumer(group)).committed([TopicPartition(src, 0), TopicPartition(src, 1)], timeout=10)
    assert sum(tp.offset for tp in tp_committed) == 100


async def test_a_crash_commits_nothing_in_flight_and_a_supervised_successor_finishes(
        kafka_settings: KafkaSettings, unique) -> None:
    from pipeline.delivery import Supervised

    src, dst, group = unique("src"), unique("dst"), unique("g")
    fill(kafka_settings, src, 120)
    create_topics(kafka_settings, [dst], 3)
    stuck = asyncio.Event()

    class Worker:
        def __init__(self) -> None:
            self.dispatcher = KafkaDispatcher(kafka_settings, DispatcherConfig(group, (src,), "unordered", 10, 0.1),
                                              self.handle)
            self.first = not hasattr(Worker, "made")
            Worker.made = True  # type: ignore[attr-defined]

        async def handle(self, msg: Message) -> Sequence[Produce]:
            if self.first and int(msg.value()) >= 30:
                stuck.set()
                await asyncio.Event().wait()  # hangs until the crash cancels it
            return [Produce(dst, KafkaRecord(None, b"out-" + msg.value(), []))]

        async def run(self) -> None:
            await self.dispatcher.run()

    sup = Supervised("test", Worker)
    sup.start()
    await until(lambda: stuck.is_set())
    sup.crash()
    await until(lambda: sup.restarts == 1 and sup.current.dispatcher.stats.handled > 0)
    got = await asyncio.to_thread(read_all, kafka_settings, dst, unique("r"), 120)
    sup.stop()
    await sup.wait()
    assert {v.removeprefix(b"out-") for v in got} == {str(i).encode() for i in range(120)}  # nothing lost
    assert len(got) >= 120  # the crashed worker's unacknowledged records came again: duplicates, counted


async def test_a_skipped_record_is_handled_without_the_handler(kafka_settings: KafkaSettings, unique) -> None:
    src, group = unique("src"), unique("g")
    fill(kafka_settings, src, 60)
    seen: list[bytes] = []

    async def handler(msg: Message) -> Sequence[Produce]:
        seen.append(msg.value())
        return []

    # Unordered: a skipped record never waits behind others (ordered, it does, and the handler must filter it).
    d = KafkaDispatcher(kafka_settings, DispatcherConfig(group, (src,), "unordered", 10, 0.1,
                                                         skip=lambda m: int(m.value()) % 2 == 1), handler)
    task = asyncio.create_task(d.run())
    await until(lambda: d.stats.handled == 60)
    d.stop()
    await task
    assert sorted(int(v) for v in seen) == list(range(0, 60, 2))
    assert OffsetReader(kafka_settings).lag(group, src).total == 0


async def test_a_record_the_handler_always_fails_on_is_dead_lettered_and_committed_past(
        kafka_settings: KafkaSettings, unique) -> None:
    src, dst, dlq, group = unique("src"), unique("dst"), unique("dlq"), unique("g")
    fill(kafka_settings, src, 30, partitions=1)
    create_topics(kafka_settings, [dst, dlq], 1)

    async def handler(msg: Message) -> Sequence[Produce]:
        if msg.value() == b"7":
            raise AttributeError("'list' object has no attribute 'get'")
        return [Produce(dst, KafkaRecord(None, msg.value(), []))]

    config = DispatcherConfig(group, (src,), "ordered", 10, 0.1, dead_letter_topic=dlq, stage="test", handler_attempts=2)
    d = KafkaDispatcher(kafka_settings, config, handler)
    task = asyncio.create_task(d.run())
    await until(lambda: d.stats.committed.get((src, 0)) == 30)
    d.stop()
    await task
    assert d.stats.handler_errors == 2 and d.stats.dead_lettered == 1
    assert sorted(int(v) for v in read_all(kafka_settings, dst, unique("r"), 29)) == [i for i in range(30) if i != 7]
    c = Consumer(kafka_settings.consumer(unique("r")))
    c.subscribe([dlq])
    dead = None
    end = time.monotonic() + 20
    while dead is None and time.monotonic() < end:
        dead = next((m for m in c.consume(10, timeout=0.5) if not m.error()), None)
    c.close()
    assert dead is not None and dead.value() == b"7"
    assert b"AttributeError" in dict(dead.headers())["ldreason"]


async def test_an_output_too_large_for_the_broker_is_dead_lettered_with_the_reason(
        kafka_settings: KafkaSettings, unique) -> None:
    src, dst, dlq, group = unique("src"), unique("dst"), unique("dlq"), unique("g")
    fill(kafka_settings, src, 20, partitions=1)
    create_topics(kafka_settings, [dst, dlq], 1)

    async def handler(msg: Message) -> Sequence[Produce]:
        size = 1_100_000 if msg.value() == b"3" else 1_000_100  # over the broker's 1 MiB limit / just under it
        return [Produce(dst, KafkaRecord(None, msg.value() + b" " * size, []))]

    config = DispatcherConfig(group, (src,), "ordered", 10, 0.1, dead_letter_topic=dlq, stage="test")
    d = KafkaDispatcher(kafka_settings, config, handler)
    task = asyncio.create_task(d.run())
    await until(lambda: d.stats.committed.get((src, 0)) == 20)
    d.stop()
    await task
    assert d.stats.dead_lettered == 1 and d.stats.produced == 20  # 19 outputs + 1 dead letter
    assert len(read_all(kafka_settings, dst, unique("r"), 19)) == 19  # records over librdkafka's 1,000,000 pass
    dead = read_all(kafka_settings, dlq, unique("r"), 1)
    assert len(dead) == 1 and dead[0].startswith(b"3 ") and len(dead[0]) == 64 * 1024
