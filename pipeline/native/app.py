"""The Faust app: one agent per stage, each a thin loop around the pure stage function."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import faust

from functions import STAGES, Emit, Rejected
from pipeline import events
from pipeline.topology import Stage, Topology

log = logging.getLogger("lagduel.native")


def agent_concurrency(stage: Stage) -> int:
    """In-flight events per agent: the serverless backends' full capacity (concurrency × max replicas),
    so the baseline is not handicapped; it also hides the wait for each output's broker ack."""
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
    outbound = app.topic(stage.output.topic, value_serializer="raw", key_serializer="raw")
    fn = STAGES[stage.function]
    stage_source = f"{source}/{stage.name}"

    async def send(topic: faust.TopicT, event: events.CloudEvent) -> None:
        rec = events.to_kafka(event, "binary")
        # Wait for the broker's ack: Faust commits the input offset once this agent moves on.
        fut = await topic.send(key=rec.key, value=rec.value, headers=rec.headers)
        await fut

    async def agent(stream: faust.StreamT) -> None:
        async for record in stream.events():
            msg = record.message
            try:
                event = events.from_kafka(msg.key, msg.value, _headers(msg.headers))
                if event.get_type() != stage.input.type:
                    raise events.EventError(f"stage {stage.name} takes {stage.input.type!r}, not {event.get_type()!r}")
                result = fn(events.data_of(event))
            except events.EventError as exc:
                # Not a CloudEvent at all: wrap the raw bytes so the dead letter still carries them.
                wrapped = events.new_event("dev.lagduel.invalid", stage_source, {"raw": (msg.value or b"")[:1024].decode("utf-8", "replace")})
                await send(dlq, events.dead_letter(wrapped, stage.name, str(exc)))
                continue
            if stage.latency_s:
                await asyncio.sleep(stage.latency_s)
            if isinstance(result, Emit):
                await send(outbound, events.successor(event, stage.output.type, stage_source, result.data))
            elif isinstance(result, Rejected):
                await send(dlq, events.dead_letter(event, stage.name, result.reason))

    agent.__name__ = agent.__qualname__ = f"stage_{stage.name}"
    app.agent(inbound, name=f"stage-{stage.name}", concurrency=agent_concurrency(stage))(agent)


def _headers(headers: object) -> list[tuple[str, bytes]]:
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers or [])
