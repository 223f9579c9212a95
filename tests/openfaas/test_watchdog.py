"""The function adapter and the watchdog emulation, over real HTTP against real processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from pipeline import events
from pipeline.openfaas.handler import FunctionHandler
from pipeline.openfaas.index import format_response
from pipeline.openfaas.replicaset import write_topology
from pipeline.openfaas.watchdog import parse_duration
from pipeline.orders import OrderFactory
from pipeline.replicas import ReplicaProcess, python_module
from pipeline.topology import Topology, load_topology

ORDER, _ = OrderFactory(invalid_share=0).order(1)


def order_http(topology: Topology, data: dict, mode: str = "binary") -> tuple[dict[str, str], bytes]:
    event = events.new_event(topology.input.type, topology.source, data,
                             bookkeeping=events.Bookkeeping("r1", 7, 123))
    return events.to_http(event, mode)  # type: ignore[arg-type]


class _Event:
    def __init__(self, headers: dict[str, str], body: bytes, method: str = "POST") -> None:
        self.headers, self.body, self.method, self.path = headers, body, method, "/"


def test_handler_contract_status_body_headers() -> None:
    topo = load_topology()
    handle = FunctionHandler(topo.stage("validate"))
    out = handle(_Event(*order_http(topo, ORDER)), None)
    assert out["statusCode"] == 200
    reply = events.from_http(out["headers"], out["body"])
    assert reply.get_type() == topo.stage("validate").output.type
    assert events.bookkeeping_of(reply) == events.Bookkeeping("r1", 7, 123)
    assert handle(_Event(*order_http(topo, {**ORDER, "test": True})), None)["statusCode"] == 202
    rejected = handle(_Event(*order_http(topo, {**ORDER, "currency": "XXX"})), None)
    assert rejected["statusCode"] == 422 and b"currency" in rejected["body"]
    assert handle(_Event({"content-type": "application/json"}, b"{}"), None)["statusCode"] == 400
    assert handle(_Event({}, b"", method="GET"), None)["statusCode"] == 405


def test_handler_pays_the_stage_latency_only_when_the_stage_ran() -> None:
    topo = load_topology()
    slept: list[float] = []
    handle = FunctionHandler(topo.stage("score"), sleep=slept.append)
    handle(_Event({"content-type": "text/plain"}, b"x"), None)
    assert slept == []
    bad_type_ok = FunctionHandler(topo.stage("validate").model_copy(update={"latency_ms": 5}), sleep=slept.append)
    bad_type_ok(_Event(*order_http(topo, ORDER)), None)
    assert slept == [0.005]


def test_format_response_like_the_template() -> None:
    assert format_response(None) == (200, {}, b"")
    assert format_response({"body": {"a": 1}}) == (200, {"content-type": "application/json"}, b'{"a":1}')
    assert format_response({"statusCode": 201, "body": "hi", "headers": {"x": "1"}}) == (201, {"x": "1"}, b"hi")


def test_watchdog_durations() -> None:
    assert parse_duration("30") == 30 and parse_duration("1m5s") == 65 and parse_duration("500ms") == 0.5
    with pytest.raises(ValueError):
        parse_duration("soon")


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Callable[..., ReplicaProcess]]:
    started: list[ReplicaProcess] = []

    async def start(topology: Topology, stage: str, **env: str) -> ReplicaProcess:
        path = write_topology(topology, tmp_path / f"topology-{len(started)}.yaml")
        replica = ReplicaProcess(f"{stage}-{len(started)}", python_module(
            "pipeline.openfaas.watchdog", "--stage", stage, "--topology", str(path), "--port", "{port}"),
            ready_path="/_/health", env={"healthcheck_interval": "100ms", **env})
        replica.spawn()
        started.append(replica)
        async with httpx.AsyncClient() as client:
            await replica.wait_ready(client, timeout_s=30)
        return replica

    yield start  # type: ignore[misc]
    for r in started:
        await r.stop(grace_s=2)


async def test_watchdog_serves_cloudevents_binary_and_structured(spawn) -> None:
    topo = load_topology()
    replica = await spawn(topo, "validate")
    async with httpx.AsyncClient(base_url=replica.url) as client:
        for mode in ("binary", "structured"):
            headers, body = order_http(topo, ORDER, mode)
            r = await client.post("/", headers=headers, content=body)
            assert r.status_code == 200, r.text
            assert events.from_http(dict(r.headers), r.content).get_type() == topo.stage("validate").output.type
        headers, body = order_http(topo, {**ORDER, "items": []})
        r = await client.post("/", headers=headers, content=body)
        assert r.status_code == 422 and "items" in r.json()["error"]
        r = await client.post("/", content=b"not an event")
        assert r.status_code == 400 and "not a CloudEvent" in r.json()["error"]
        assert (await client.get("/_/ready")).status_code == 200
        assert (await client.post("/_/health")).status_code == 405


async def test_watchdog_max_inflight_answers_429_at_once_and_ready_429(spawn) -> None:
    topo = load_topology().with_stage_overrides(latency_ms=1500, concurrency=1)
    replica = await spawn(topo, "validate")
    headers, body = order_http(topo, ORDER)
    async with httpx.AsyncClient(base_url=replica.url, timeout=10) as client:
        slow = asyncio.create_task(client.post("/", headers=headers, content=body))
        async def busy() -> bool:
            return (await client.get("/_/ready")).status_code == 429
        deadline = asyncio.get_running_loop().time() + 5
        while not await busy():
            assert asyncio.get_running_loop().time() < deadline, "first request never became in-flight"
            await asyncio.sleep(0.02)
        t0 = asyncio.get_running_loop().time()
        r = await client.post("/", headers=headers, content=body)
        assert r.status_code == 429 and r.text == "Concurrent request limit exceeded"
        assert r.headers["x-openfaas-internal"] == "faas-middleware"
        assert asyncio.get_running_loop().time() - t0 < 1.0  # immediate, not queued behind the slow one
        assert (await slow).status_code == 200


async def test_watchdog_exec_timeout_answers_504(spawn) -> None:
    topo = load_topology().with_stage_overrides(latency_ms=3000)
    replica = await spawn(topo, "validate", exec_timeout="300ms")
    headers, body = order_http(topo, ORDER)
    async with httpx.AsyncClient(base_url=replica.url, timeout=10) as client:
        r = await client.post("/", headers=headers, content=body)
    assert r.status_code == 504 and r.headers["x-openfaas-internal"] == "of-watchdog"


async def test_watchdog_sigterm_drops_health_then_finishes_in_flight(spawn) -> None:
    topo = load_topology().with_stage_overrides(latency_ms=800, concurrency=1)
    replica = await spawn(topo, "validate", healthcheck_interval="300ms", write_timeout="5s")
    headers, body = order_http(topo, ORDER)
    async with httpx.AsyncClient(base_url=replica.url, timeout=10) as client:
        slow = asyncio.create_task(client.post("/", headers=headers, content=body))
        deadline = asyncio.get_running_loop().time() + 5
        while (await client.get("/_/ready")).status_code != 429:  # the request is in flight
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        replica.terminate()
        while (await client.get("/_/health")).status_code != 503:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        assert (await slow).status_code == 200


async def test_an_oversize_body_is_refused_before_it_is_buffered() -> None:
    import httpx

    from pipeline.openfaas.handler import FunctionHandler
    from pipeline.openfaas.index import FunctionServer
    from pipeline.openfaas.watchdog import Watchdog, WatchdogConfig
    from pipeline.stagehost import MAX_BODY
    from pipeline.topology import load_topology

    stage = load_topology().stage("validate")
    watchdog = Watchdog(WatchdogConfig.for_stage(stage, {}), FunctionServer(FunctionHandler(stage), 1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=watchdog.app()), base_url="http://wd") as client:
        r = await client.post("/", content=b"x" * (MAX_BODY + 1))
    assert r.status_code == 413 and b"over the limit" in r.content
