"""Trigger delivery over real HTTP: filter, retry with backoff, reply, dead-letter with the reason."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import orjson
import pytest
import uvicorn
from confluent_kafka import Message
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline import events
from pipeline.broker.process import free_port
from pipeline.delivery import HttpSender
from pipeline.kafka import KafkaSettings
from pipeline.knative.trigger import TriggerDispatcher
from pipeline.topology import load_topology

T = load_topology().with_stage_overrides(delivery={"retry": 2, "backoff_delay_s": 0.01}, timeout_s=0.5)
ENRICHED = "dev.lagduel.order.enriched"


@pytest.fixture
async def subscriber() -> AsyncIterator[tuple[str, list[str]]]:
    """A real HTTP subscriber whose answer is chosen by the event's `script` extension; it logs each call."""
    calls: list[str] = []

    async def handle(request: Request) -> Response:
        script = request.headers["ce-script"]
        calls.append(script)
        if script == "flaky" and calls.count("flaky") < 3:
            return Response(b"busy", 503)
        if script == "slow":
            await asyncio.sleep(2)
        if script == "reject":
            return Response(orjson.dumps({"error": "currency: 'XXX' is bad"}), 422)
        if script == "garbage":
            return Response(b"not an event", 200)
        if script == "filtered":
            return Response(b"", 202)
        reply = events.new_event("dev.lagduel.order.scored", "/score", {"ok": True}, key="c-1")
        headers, body = events.to_http(reply)
        return Response(body, 200, headers)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/", handle, methods=["POST"])]),
                                           host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}/", calls
    server.should_exit = True
    await task


@pytest.fixture
async def sender() -> AsyncIterator[HttpSender]:
    s = HttpSender()
    yield s
    await s.aclose()


def trigger(url: str, sender: HttpSender) -> TriggerDispatcher:
    score = T.stage("score")
    return TriggerDispatcher(T, KafkaSettings("127.0.0.1:1"), "orders-score", "g", score.input.type, score, sender, url,
                             "lagduel", score)


def message(type_: str, script: str) -> Message:
    rec = events.to_kafka(events.new_event(type_, "/t", {"n": 1}, key="c-1", script=script,
                                           bookkeeping=events.Bookkeeping("r", 9, 1)))
    return Message(topic=T.broker_topic, partition=0, offset=1, key=rec.key, value=rec.value, headers=rec.headers)


async def test_other_types_are_filtered_out_without_a_call(subscriber, sender) -> None:
    url, calls = subscriber
    assert await trigger(url, sender)._handle(message("dev.lagduel.order.placed", "ok")) == []
    assert calls == []


async def test_reply_goes_back_into_the_broker_topic(subscriber, sender) -> None:
    url, _ = subscriber
    out = await trigger(url, sender)._handle(message(ENRICHED, "ok"))
    assert [p.topic for p in out] == [T.broker_topic]
    assert events.from_kafka(out[0].record.key, out[0].record.value, out[0].record.headers).get_type() == "dev.lagduel.order.scored"
    assert out[0].record.key == b"c-1"  # partitionkey → record key


async def test_retryable_status_is_retried_then_succeeds(subscriber, sender) -> None:
    url, calls = subscriber
    tr = trigger(url, sender)
    out = await tr._handle(message(ENRICHED, "flaky"))
    assert calls == ["flaky"] * 3 and tr.stats.retries == 2 and out[0].topic == T.broker_topic


async def test_rejection_is_dead_lettered_at_once_with_its_reason(subscriber, sender) -> None:
    url, calls = subscriber
    tr = trigger(url, sender)
    out = await tr._handle(message(ENRICHED, "reject"))
    assert calls == ["reject"] and [p.topic for p in out] == [T.dead_letter_topic]
    dl = events.from_kafka(out[0].record.key, out[0].record.value, out[0].record.headers)
    assert events.rejection_reason(dl) == "currency: 'XXX' is bad"
    assert dl.get_extension("ldstage") == "score" and dl.get_extension("knativeerrorcode") == "422"
    assert dl.get_extension("knativeerrordest") == url
    assert b"currency" in base64.b64decode(dl.get_extension("knativeerrordata"))
    assert events.bookkeeping_of(dl) == events.Bookkeeping("r", 9, 1)


async def test_timeouts_exhaust_the_retries_then_dead_letter(subscriber, sender) -> None:
    url, calls = subscriber
    tr = trigger(url, sender)
    out = await tr._handle(message(ENRICHED, "slow"))
    assert len(calls) == 3 and tr.stats.dead_lettered == 1  # 1 try + retry 2
    reason = events.rejection_reason(events.from_kafka(None, out[0].record.value, out[0].record.headers))
    assert "no reply after 3 attempts" in reason


async def test_non_cloudevent_reply_fails_the_dispatch(subscriber, sender) -> None:
    url, _ = subscriber
    out = await trigger(url, sender)._handle(message(ENRICHED, "garbage"))
    assert out[0].topic == T.dead_letter_topic


async def test_empty_reply_is_success_with_nothing_to_produce(subscriber, sender) -> None:
    url, _ = subscriber
    assert await trigger(url, sender)._handle(message(ENRICHED, "filtered")) == []
