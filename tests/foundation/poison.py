"""Faults for the end-to-end tests: poison records on a pipeline's input topic, one oversize event, the checks
that each was dead-lettered (or counted) and that every group committed past it; a private, restartable broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from load.batch import run_batch
from pipeline import events
from pipeline.backends import Backend
from pipeline.broker.maven import resolve_jars
from pipeline.broker.process import EmbeddedKafka
from pipeline.delivery.producer import BROKER_MAX_MESSAGE_BYTES
from pipeline.kafka import KafkaSettings, OffsetReader
from pipeline.orders import OrderFactory
from pipeline.settings import read_environment
from pipeline.topology import Topology

STRUCTURED = [("content-type", b"application/cloudevents+json")]
NOT_AN_EVENT = b"not an event at all"


def poison(topology: Topology) -> dict[bytes, list[tuple[str, bytes]]]:
    """Value -> headers of each poison record: structured JSON that is not an object, a binary event whose data
    is not JSON, and a record that is no CloudEvent."""
    binary = [("ce_specversion", b"1.0"), ("ce_type", topology.input.type.encode()), ("ce_source", b"/poison"),
              ("ce_id", b"poison-binary"), ("content-type", b"application/json")]
    return {b"[]": STRUCTURED, b'"x"': STRUCTURED, b"\xff\xfe not json": binary, NOT_AN_EVENT: []}


def write_poison(settings: KafkaSettings, topology: Topology) -> dict[bytes, list[tuple[str, bytes]]]:
    records = poison(topology)
    p = Producer(settings.producer())
    for i, (value, headers) in enumerate(records.items()):
        p.produce(topology.input.topic, value, f"poison-{i}".encode(), headers=headers)
    assert p.flush(10) == 0
    return records


def write_oversize(settings: KafkaSettings, topology: Topology) -> str:
    """A valid order event just under the broker's record limit (its note far over validate's limit); its id."""
    id_ = f"oversize-{uuid.uuid4().hex[:8]}"
    ev = events.new_event(topology.input.type, "/poison", {"order_id": id_, "note": "n" * 1_046_000}, id=id_, key=id_)
    rec = events.to_kafka(ev, "binary")
    p = Producer(settings.producer(**{"message.max.bytes": BROKER_MAX_MESSAGE_BYTES}))
    p.produce(topology.input.topic, rec.value, rec.key, headers=rec.headers)
    assert p.flush(10) == 0
    return id_


async def dead_letters(settings: KafkaSettings, topic: str, values: set[bytes], ids: set[str],
                       timeout_s: float = 30.0) -> dict[bytes | str, dict[str, bytes]]:
    """Wait for dead letters whose value is one of `values` or whose `ce_id` is one of `ids`; their headers."""
    def read() -> dict[bytes | str, dict[str, bytes]]:
        c = Consumer(settings.consumer(f"poison-check-{uuid.uuid4().hex[:8]}"))
        c.subscribe([topic])
        found: dict[bytes | str, dict[str, bytes]] = {}
        end = time.monotonic() + timeout_s
        try:
            while len(found) < len(values) + len(ids) and time.monotonic() < end:
                for m in c.consume(200, timeout=0.5):
                    if m.error():
                        continue
                    headers = {k: v for k, v in m.headers() or [] if v is not None}
                    id_ = headers.get("ce_id", b"").decode()
                    if m.value() in values:
                        found[m.value()] = headers
                    elif id_ in ids:
                        found[id_] = headers
        finally:
            c.close()
        return found
    return await asyncio.to_thread(read)


def reason(headers: dict[str, bytes]) -> str:
    return (headers.get("ldreason") or headers.get("ce_ldreason") or b"").decode()


async def committed_past_everything(settings: KafkaSettings, groups: list[tuple[str, str]], timeout_s: float = 30.0) -> None:
    """Wait until every (group, topic) has committed up to its topic's end: nothing stuck behind a poison record."""
    reader = OffsetReader(settings)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            lags = {g: reader.lag(g, t).total for g, t in groups}
            if not any(lags.values()):
                return
            assert time.monotonic() < deadline, f"commits stuck: {lags}"
            await asyncio.sleep(0.5)
    finally:
        reader.close()


async def poison_round(backend: Backend, topology: Topology, settings: KafkaSettings,
                       dead_lettered: Callable[[bytes], bool] = lambda value: True) -> None:
    """Write every poison record and one oversize event into a running pipeline, run 300 orders through it, and
    check: every order accounted for, each poison record for which `dead_lettered(value)` holds and the oversize
    event dead-lettered with a reason, and every group committed past all of it."""
    bad = write_poison(settings, topology)
    big = write_oversize(settings, topology)
    result = await run_batch(backend, topology, settings, 300, OrderFactory(seed=5, invalid_share=0.1), timeout_s=60)
    r = result.report
    assert result.complete and r["lost"] == 0 and r["misrouted"] == 0, r
    expected = {value for value in bad if dead_lettered(value)}
    found = await dead_letters(settings, topology.dead_letter_topic, expected, {big})
    assert set(found) == expected | {big}, found
    assert all(reason(h) for h in found.values()), found
    await committed_past_everything(settings, [(s.group, s.topic) for s in backend.lag_sources()])


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[EmbeddedKafka]:
    """A broker of the test's own, which the test may restart (never the session's broker)."""
    env = read_environment()
    broker = EmbeddedKafka(resolve_jars(env.cache_dir, env.kafka_version), tmp_path / "broker").start()
    try:
        yield broker
    finally:
        broker.stop()


async def restart_when(broker: EmbeddedKafka, ready: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Once `ready()` (the run is under way), stop the broker and start it on the same port and data."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, "the run never got under way"
        await asyncio.sleep(0.05)
    await asyncio.to_thread(broker.restart)
