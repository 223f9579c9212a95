"""The stage service as a real process over real HTTP: every outcome and every kind of bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from pipeline import events
from pipeline.knative.service import build_app
from pipeline.replicas import ReplicaProcess, python_module
from pipeline.topology import load_topology

from tests.foundation.test_functions import GOOD

PLACED = "dev.lagduel.order.placed"


async def _ready(replica: ReplicaProcess) -> None:
    async with httpx.AsyncClient() as client:
        await replica.wait_ready(client, timeout_s=30)


@pytest.fixture(scope="module")
def validate_url() -> Iterator[str]:
    """One real service process for the module, as Knative would start it (PORT set, probes answered)."""
    replica = ReplicaProcess("validate-0", python_module("pipeline.knative.service", "--stage", "validate",
                                                         "--host", "127.0.0.1", "--log-level", "warning"),
                             ready_path="/readyz")
    replica.spawn()
    try:
        asyncio.run(_ready(replica))
        yield replica.url
    finally:
        asyncio.run(replica.stop())


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def request(data: dict, type_: str = PLACED, mode: events.Mode = "binary") -> tuple[dict, bytes]:
    ev = events.new_event(type_, "/t", data, key="c-7", bookkeeping=events.Bookkeeping("r", 5, 1))
    return events.to_http(ev, mode)


@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_order_in_next_event_out_in_binary_mode(validate_url: str, client: httpx.AsyncClient, mode) -> None:
    headers, body = request(GOOD, mode=mode)
    r = await client.post(validate_url, headers=headers, content=body)
    assert r.status_code == 200
    assert "ce-specversion" in r.headers and not r.headers["content-type"].startswith("application/cloudevents")
    out = events.from_http(dict(r.headers), r.content)
    assert out.get_type() == "dev.lagduel.order.validated"
    assert events.bookkeeping_of(out) == events.Bookkeeping("r", 5, 1)
    assert out.get_extension("partitionkey") == "c-7"


async def test_rejection_is_422_with_reason(validate_url: str, client: httpx.AsyncClient) -> None:
    r = await client.post(validate_url, headers=request({**GOOD, "currency": "XYZ"})[0],
                          content=request({**GOOD, "currency": "XYZ"})[1])
    assert r.status_code == 422 and "currency" in r.json()["error"]


async def test_filtered_is_202(validate_url: str, client: httpx.AsyncClient) -> None:
    r = await client.post(validate_url, headers=request({**GOOD, "test": True})[0], content=request({**GOOD, "test": True})[1])
    assert (r.status_code, r.content) == (202, b"")


@pytest.mark.parametrize(("headers", "body", "status", "says"), [
    ({"content-type": "application/json"}, b'{"order_id": "o-1"}', 400, "not a CloudEvent"),
    ({"ce-specversion": "1.0", "ce-type": PLACED, "content-type": "application/json"}, b"{}", 400, "malformed"),
    ({"content-type": "application/cloudevents+json"}, b"{not json", 400, "malformed"),
    ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t", "ce-type": PLACED, "content-type": "application/json"},
     b"[1, 2]", 400, "JSON object"),
    ({"content-type": "application/cloudevents+json"}, b"[]", 400, "JSON object"),
    ({"content-type": "application/cloudevents+json"}, b'"x"', 400, "JSON object"),
    ({"content-type": "application/cloudevents+json"}, b'{"type": "t", "source": "/s", "id": "1"}', 400, "specversion"),
])
async def test_bad_input_is_4xx_with_a_message(validate_url: str, client: httpx.AsyncClient, headers, body, status, says) -> None:
    r = await client.post(validate_url, headers=headers, content=body)
    assert r.status_code == status
    assert says in r.json()["error"]


async def test_wrong_type_is_400_naming_both_types(validate_url: str, client: httpx.AsyncClient) -> None:
    headers, body = request(GOOD, type_="dev.lagduel.order.scored")
    r = await client.post(validate_url, headers=headers, content=body)
    assert r.status_code == 400 and PLACED in r.json()["error"] and "scored" in r.json()["error"]


async def test_oversize_body_is_413_and_the_server_lives_on(validate_url: str, client: httpx.AsyncClient) -> None:
    headers, _ = request(GOOD)
    r = await client.post(validate_url, headers=headers, content=b"x" * (2 << 20))
    assert r.status_code == 413 and "limit" in r.json()["error"]
    ok = await client.post(validate_url, headers=request(GOOD)[0], content=request(GOOD)[1])
    assert ok.status_code == 200


async def test_probes_metrics_and_methods(validate_url: str, client: httpx.AsyncClient) -> None:
    assert (await client.get(validate_url + "/healthz")).status_code == 200
    assert (await client.get(validate_url + "/readyz")).status_code == 200
    r = await client.get(validate_url)
    assert r.status_code == 405 and "POST" in r.json()["error"]
    text = (await client.get(validate_url + "/metrics")).text
    assert 'lagduel_stage_requests_total{code="200",outcome="emitted",stage="validate"}' in text
    assert "lagduel_stage_request_seconds_bucket" in text and "lagduel_stage_in_flight" in text


async def test_metrics_go_to_the_registry_passed_in() -> None:
    registry = CollectorRegistry()
    stage = load_topology().stage("score").model_copy(update={"latency_ms": 0})
    transport = httpx.ASGITransport(app=build_app(stage, registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://stage") as c:
        h, b = request({"x": 1}, type_="dev.lagduel.order.enriched")
        r = await c.post("/", headers=h, content=b)
    assert r.status_code == 500 and "score failed" in r.json()["error"]  # a stage bug is a 5xx, not a crash
    assert registry.get_sample_value("lagduel_stage_requests_total",
                                     {"stage": "score", "code": "500", "outcome": "error"}) == 1


def test_unknown_stage_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.knative.service import main

    assert main(["--stage", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no stage named 'nope'") and "\n" not in err
