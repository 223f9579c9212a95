"""The connector: the pure outcome rule, and exhausted retries dead-lettered on the real broker."""

from __future__ import annotations

import asyncio
import time

import orjson
from prometheus_client import generate_latest
import pytest

from pipeline import events
from pipeline.broker.process import free_port
from pipeline.delivery import SendResult
from pipeline.kafka import KafkaSettings, OffsetReader
from pipeline.openfaas.connector import ConnectorConfig, FunctionConnector, connector_group, outcome_of
from pipeline.openfaas.connectors import ConnectorStats, parse_metrics
from pipeline.openfaas.gateway import Gateway
from pipeline.topology import Topology, load_topology

from tests.openfaas.conftest import produce_orders

TOPO = load_topology()
STAGE = TOPO.stage("enrich")
EVENT = events.new_event(STAGE.input.type, "/t", {"a": 1}, bookkeeping=events.Bookkeeping("r", 3, 1))


def dead_reason(outcome) -> str:
    (p,) = outcome.produce
    assert p.topic == TOPO.dead_letter_topic
    ev = events.from_kafka(p.record.key, p.record.value, p.record.headers)
    assert ev.get_extension("ldstage") == "enrich" and events.bookkeeping_of(ev).seq == 3
    return events.rejection_reason(ev) or ""


def test_reply_goes_to_the_output_topic() -> None:
    reply = events.successor(EVENT, STAGE.output.type, "/enrich", {"b": 2})
    headers, body = events.to_http(reply, "binary")
    (p,) = outcome_of(STAGE, TOPO.dead_letter_topic, EVENT, SendResult(200, headers, body)).produce
    assert p.topic == STAGE.output.topic
    assert events.from_kafka(p.record.key, p.record.value, p.record.headers).get_type() == STAGE.output.type


def test_filtered_produces_nothing() -> None:
    assert outcome_of(STAGE, TOPO.dead_letter_topic, EVENT, SendResult(202)).produce == ()


def test_rejection_and_bad_request_and_exhaustion_are_dead_lettered_with_the_reason() -> None:
    rejected = outcome_of(STAGE, TOPO.dead_letter_topic, EVENT, SendResult(422, body=orjson.dumps({"error": "no items"})))
    assert rejected.cause == "rejected" and dead_reason(rejected) == "no items"
    bad = outcome_of(STAGE, TOPO.dead_letter_topic, EVENT, SendResult(400, body=b'{"error": "wrong type"}'))
    assert bad.cause == "bad_request" and dead_reason(bad) == "HTTP 400: wrong type"
    gone = outcome_of(STAGE, TOPO.dead_letter_topic, EVENT, SendResult(None, attempts=6, error="timed out after 30 s"))
    assert gone.cause == "exhausted" and "after 6 attempts; last: timed out" in dead_reason(gone)
    busy = outcome_of(STAGE, TOPO.dead_letter_topic, EVENT, SendResult(503, attempts=6))
    assert dead_reason(busy).endswith("last: HTTP 503")
    junk = outcome_of(STAGE, TOPO.dead_letter_topic, EVENT, SendResult(200, {"content-type": "text/plain"}, b"hi"))
    assert junk.cause == "invalid_reply"


def test_in_flight_bound_and_group() -> None:
    cfg = ConnectorConfig.for_stage(TOPO, "score", "http://gw:8080/")
    assert cfg.max_in_flight == STAGE.concurrency * STAGE.max_replicas
    assert cfg.function_url == "http://gw:8080/function/score"
    assert cfg.group == connector_group(TOPO, TOPO.stage("score")) == "lagduel-connector-orders-score"


@pytest.mark.kafka
async def test_unreachable_function_is_retried_then_dead_lettered_and_committed(
        fresh_topology: Topology, kafka_settings: KafkaSettings, reader) -> None:
    topo = fresh_topology.with_stage_overrides(delivery={"retry": 2, "backoff_delay_s": 0.01})
    produce_orders(kafka_settings, topo, 12, "exhaust", invalid_share=0)
    config = ConnectorConfig.for_stage(topo, "validate", f"http://127.0.0.1:{free_port()}", commit_interval_s=0.2)
    connector = FunctionConnector(kafka_settings, config)
    task = asyncio.create_task(connector.run())
    dlq = reader(topo.dead_letter_topic)
    deadline = time.monotonic() + 30
    while len(dlq.seqs) < 12:
        assert time.monotonic() < deadline, f"only {len(dlq.seqs)} dead-lettered"
        await asyncio.to_thread(dlq.poll, 0.2)
    assert set(dlq.seqs) == set(range(12))
    assert all("retries exhausted after 3 attempts" in events.rejection_reason(e) for e in dlq.events)
    assert connector.metrics.retries == 24 and connector.metrics.dead_lettered == 12
    connector.stop()
    await task
    lag = OffsetReader(kafka_settings).lag(config.group, topo.input.topic)
    assert lag.total == 0 and lag.uncommitted == sum(1 for p in lag.partitions if p.log_end == 0)
    text = generate_latest(connector.metrics.registry).decode()
    assert 'lagduel_connector_dead_lettered_total{cause="exhausted",function="validate"} 12.0' in text
    assert 'lagduel_connector_invocations_total{code="transport",function="validate"} 36.0' in text


def test_supervisor_reads_the_counts_the_connector_exports() -> None:
    connector = FunctionConnector(KafkaSettings("127.0.0.1:9"), ConnectorConfig.for_stage(TOPO, "enrich", "http://gw"))
    connector.metrics.retried(503)
    connector.metrics.retried(None)
    connector.metrics.invoked(200)
    connector.metrics.dead_letter("rejected")
    connector.stats.consumed, connector.stats.handled, connector.stats.in_flight = 9, 7, 2
    scraped = parse_metrics(generate_latest(connector.metrics.registry).decode())
    assert scraped == ConnectorStats(consumed=9, handled=7, in_flight=2, retries=2, dead_lettered=1)
    assert scraped == ConnectorStats(**connector.totals())


async def test_a_429_waits_for_a_free_slot_instead_of_sleeping() -> None:
    answers = [SendResult(429), SendResult(429), SendResult(200)]

    class Throttled:
        async def send(self, *_args: object, **_kw: object) -> SendResult:
            return answers.pop(0)

    waits: list[float] = []

    async def slot() -> None:
        waits.append(asyncio.get_running_loop().time())

    connector = FunctionConnector(KafkaSettings("127.0.0.1:9"), ConnectorConfig.for_stage(TOPO, "enrich", "http://gw"),
                                  sender=Throttled(), throttle=slot)  # type: ignore[arg-type]
    began = asyncio.get_running_loop().time()
    result = await connector.invoke({}, b"")
    assert result.status == 200 and len(waits) == 2 and connector.metrics.retries == 2
    assert connector.metrics.codes["429"] == 2
    # The delivery backoff would have slept 0.4 s, then 0.8 s: the throttle returned as soon as a slot was free.
    assert asyncio.get_running_loop().time() - began < 0.2


async def test_gateway_wakes_one_throttled_caller_per_freed_slot() -> None:
    gateway = Gateway({"enrich": None})  # type: ignore[dict-item]
    first = asyncio.create_task(gateway.slot("enrich", 5))
    second = asyncio.create_task(gateway.slot("enrich", 5))
    await asyncio.sleep(0)
    gateway._slot_freed("enrich")  # one request finished: one slot
    await asyncio.wait_for(first, 1)
    await asyncio.sleep(0.01)
    assert not second.done()
    gateway.replica_ready("enrich", 4)  # a new replica: its slots wake the rest
    await asyncio.wait_for(second, 1)
    began = asyncio.get_running_loop().time()
    await gateway.slot("enrich", 0.05)  # nobody frees a slot: back after the cap, to try again
    assert asyncio.get_running_loop().time() - began >= 0.04
