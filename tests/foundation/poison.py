"""Bad input for the end-to-end fault tests: poison records on a pipeline's input topic, one oversize event,
and the checks that each was dead-lettered (or counted) and that every group committed past it."""

from __future__ import annotations

import asyncio
import time
import uuid

from confluent_kafka import Consumer, Producer

from pipeline import events
from pipeline.delivery.dispatcher import BROKER_MAX_MESSAGE_BYTES
from pipeline.kafka import KafkaSettings, OffsetReader
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
