"""The Faust app: one agent per stage, each a thin loop around the pure stage function.

At-least-once, as on every backend: an input event is acknowledged to Faust, and so becomes
committable, only when the broker acknowledged its output. Sends are not awaited one by one: the
agent takes the stream in small batches, hands each output to the producer and goes on; each
output's delivery acknowledges its input. Faust commits, per partition, the offset below the first
event not yet acknowledged, so an output still in flight holds the commit back whatever completes
after it; a failed output stops the worker with its input uncommitted, so a restart takes it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import faust
from aiokafka.errors import (
    ClusterAuthorizationFailedError, InvalidMessageError, MessageSizeTooLargeError, TopicAuthorizationFailedError,
)

from functions import STAGES, Emit, Rejected
from pipeline import events
from pipeline.delivery.producer import BROKER_MAX_MESSAGE_BYTES
from pipeline.topology import Stage, Topology

log = logging.getLogger("lagduel.native")

TAKE_MAX = 500
"""Events the agent takes from its stream at a time: Faust hands over a batch far more cheaply than
event by event."""
TAKE_WITHIN_S = 0.002
"""How long a batch waits to fill: the most it adds to an event's latency when the stream is slow."""
LINGER_S = 0.005
"""The producer's linger, as every other lagduel producer's (`KafkaSettings.linger_ms`)."""
PERMANENT_SEND_ERRORS = (MessageSizeTooLargeError, TopicAuthorizationFailedError, ClusterAuthorizationFailedError,
                         InvalidMessageError)
"""Send errors a retry cannot cure: the output is dead-lettered (reason + truncated bytes) instead."""


def agent_concurrency(stage: Stage) -> int:
    """In-flight events per agent: the serverless backends' full capacity (concurrency × max replicas),
    so the baseline is not handicapped."""
    return stage.concurrency * stage.max_replicas


def app_id(topology: Topology) -> str:
    return f"lagduel-native-{topology.pipeline}-{topology.input.topic}"


def build_app(topology: Topology, bootstrap: str, on_started: Callable[[], None] | None = None) -> faust.App:
    app = faust.App(
        app_id(topology),
        broker=f"kafka://{bootstrap}",
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        producer_acks=-1,
        producer_linger=LINGER_S,
        producer_max_request_size=BROKER_MAX_MESSAGE_BYTES,  # what the broker takes, not aiokafka's 1,000,000
        topic_replication_factor=topology.replication_factor,
        topic_partitions=topology.partitions,
    )
    dlq = app.topic(topology.dead_letter_topic, value_serializer="raw", key_serializer="raw")
    for stage in topology.stages:
        _add_agent(app, stage, dlq, topology.source)
    if on_started:
        @app.task
        async def started() -> None:
            on_started()
    return app


def _add_agent(app: faust.App, stage: Stage, dlq: faust.TopicT, source: str) -> None:
    inbound = app.topic(stage.input.topic, value_serializer="raw", key_serializer="raw")
    fn = STAGES[stage.function]
    stage_source = f"{source}/{stage.name}"
    out_topic, dlq_topic = stage.output.topic, dlq.get_topic_name()
    in_flight = asyncio.Semaphore(agent_concurrency(stage))
    tasks: set[asyncio.Task[None]] = set()  # referenced until done, as asyncio requires

    def unproducible(topic: str, rec: events.KafkaRecord, exc: BaseException) -> events.KafkaRecord | None:
        """The dead letter that replaces an output the broker refuses for good; None when a retry may cure it."""
        if topic == dlq_topic or not isinstance(exc, PERMANENT_SEND_ERRORS):
            return None
        log.error("stage %s: cannot produce to %s (%r); dead-lettered", stage.name, topic, exc)
        return events.poison_record(rec.key, rec.value, rec.headers, stage.name,
                                    f"cannot produce to {topic}: {type(exc).__name__}: {exc}")

    def acknowledge(record: faust.EventT, topic: str, rec: events.KafkaRecord) -> Callable[[asyncio.Future[Any]], None]:
        def on_delivery(fut: asyncio.Future[Any]) -> None:
            exc = asyncio.CancelledError() if fut.cancelled() else fut.exception()
            if exc is None:
                record.ack()
                return
            dead = unproducible(topic, rec, exc)
            if dead is not None:  # its dead letter acknowledges the input instead
                track(asyncio.ensure_future(send_record(dlq_topic, dead, record)))
                return
            log.error("stage %s: output not acknowledged, stopping with its input uncommitted: %r", stage.name, exc)
            asyncio.ensure_future(app.crash(exc))
        return on_delivery

    def track(task: asyncio.Future[Any]) -> None:
        tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(tasks.discard)  # type: ignore[arg-type]

    async def send_record(topic: str, rec: events.KafkaRecord, record: faust.EventT) -> None:
        try:
            delivery = await app.producer.send(topic, rec.key, rec.value, None, None, rec.headers)
        except PERMANENT_SEND_ERRORS as exc:  # refused before it left (e.g. over the request size)
            dead = unproducible(topic, rec, exc)
            if dead is None:
                raise
            topic, rec = dlq_topic, dead
            delivery = await app.producer.send(topic, rec.key, rec.value, None, None, rec.headers)
        delivery.add_done_callback(acknowledge(record, topic, rec))  # type: ignore[attr-defined]

    async def send(topic: str, event: events.CloudEvent, record: faust.EventT) -> None:
        await send_record(topic, events.to_kafka(event, "binary"), record)

    async def handle(record: faust.EventT) -> None:
        msg = record.message
        headers = _headers(msg.headers)
        try:
            event = events.from_kafka(msg.key, msg.value, headers)
            if event.get_type() != stage.input.type:
                raise events.EventError(f"stage {stage.name} takes {stage.input.type!r}, not {event.get_type()!r}")
            data = events.data_of(event)
        except events.EventError as exc:
            # Undecodable: the original headers (a binary event's bookkeeping), key and bytes, with the reason.
            await send_record(dlq_topic, events.poison_record(msg.key, msg.value, headers, stage.name, str(exc)), record)
            return
        try:
            result = fn(data)
        except Exception as exc:  # a stage bug: dead-lettered with the reason, as the HTTP backends' 5xx end
            log.exception("stage %s failed on event %s", stage.name, event.get_id())
            reason = f"stage {stage.name} failed: {type(exc).__name__}: {exc}"
            await send(dlq_topic, events.dead_letter(event, stage.name, reason), record)
            return
        if stage.latency_s:
            await asyncio.sleep(stage.latency_s)
        if isinstance(result, Emit):
            await send(out_topic, events.successor(event, stage.output.type, stage_source, result.data), record)
        elif isinstance(result, Rejected):
            await send(dlq_topic, events.dead_letter(event, stage.name, result.reason), record)
        else:  # filtered: nothing goes on, nothing to wait for
            record.ack()

    async def handle_in_flight(record: faust.EventT) -> None:
        try:
            await handle(record)
        except Exception as exc:  # an unacknowledged input must not go unnoticed
            log.exception("stage %s: handling an event failed", stage.name)
            await app.crash(exc)
        finally:
            in_flight.release()

    async def agent(stream: faust.StreamT) -> None:
        async for batch in stream.noack_take(TAKE_MAX, within=TAKE_WITHIN_S):
            for record in batch:
                if stage.latency_s:  # the emulated downstream call: up to agent_concurrency() at once
                    await in_flight.acquire()
                    task = asyncio.create_task(handle_in_flight(record))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                else:
                    await handle(record)

    agent.__name__ = agent.__qualname__ = f"stage_{stage.name}"
    app.agent(inbound, name=f"stage-{stage.name}")(agent)


def _headers(headers: object) -> list[tuple[str, bytes]]:
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers or [])

