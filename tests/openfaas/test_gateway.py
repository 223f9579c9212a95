"""The emulated gateway over real HTTP: scale from zero, async invocations, basic auth, metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline import events
from pipeline.broker.process import free_port
from pipeline.openfaas.gateway import Gateway, GatewayConfig
from pipeline.openfaas.replicaset import FunctionReplicas, write_topology
from pipeline.orders import OrderFactory
from pipeline.topology import load_topology


async def serve(app: Starlette) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # pytest owns the signals
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server, task, f"http://127.0.0.1:{port}"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Gateway, str, FunctionReplicas]]:
    topo = load_topology()
    replicas = FunctionReplicas(topo.stage("validate"), write_topology(topo, tmp_path / "t.yaml"), 0.2)
    gw = Gateway({"validate": replicas}, GatewayConfig(password="pw"))
    server, task, url = await serve(gw.app())
    yield gw, url, replicas
    await replicas.close()
    server.should_exit = True
    await task
    await gw.aclose()


def order_request() -> tuple[dict[str, str], bytes]:
    topo = load_topology()
    data, _ = OrderFactory(invalid_share=0).order(5)
    return events.to_http(events.new_event(topo.input.type, topo.source, data), "binary")


async def test_scale_from_zero_holds_the_request_until_a_replica_is_ready(gateway) -> None:
    gw, url, replicas = gateway
    assert replicas.desired == 0
    headers, body = order_request()
    async with httpx.AsyncClient(timeout=60) as client:
        call = asyncio.create_task(client.post(f"{url}/function/validate", headers=headers, content=body))
        while gw.held["validate"] == 0 and not call.done():
            await asyncio.sleep(0.01)
        assert replicas.desired == 1  # the gateway scaled the function itself (§3.4)
        r = await call
        assert r.status_code == 200 and r.headers["x-served-by"].startswith("openfaas-ce")
        assert gw.held["validate"] == 0 and replicas.ready == 1
        assert (await client.post(f"{url}/function/nope", content=b"")).status_code == 404
        metrics = (await client.get(f"{url}/metrics")).text
    assert 'gateway_function_invocation_total{code="200",function_name="validate.openfaas-fn"} 1.0' in metrics
    assert 'gateway_function_invocation_total{code="404"' not in metrics  # unknown functions are not counted
    assert 'gateway_service_count{function_name="validate.openfaas-fn"} 1.0' in metrics


async def test_system_api_needs_basic_auth_and_clamps_scaling_like_ce(gateway) -> None:
    gw, url, replicas = gateway
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/system/functions")).status_code == 401
        assert (await client.get(f"{url}/system/functions", auth=("admin", "nope"))).status_code == 401
        listing = (await client.get(f"{url}/system/functions", auth=("admin", "pw"))).json()
        assert listing[0]["name"] == "validate" and listing[0]["replicas"] == 0
        r = await client.post(f"{url}/system/scale-function/validate", auth=("admin", "pw"), json={"replicas": 0})
        assert r.status_code == 400 and "cannot be set to 0" in r.text
        r = await client.post(f"{url}/system/scale-function/validate", auth=("admin", "pw"), json={"replicas": 9})
        assert r.status_code == 202 and replicas.desired == 5
        replicas.scale(0)


async def test_async_function_answers_202_and_calls_back(gateway) -> None:
    gw, url, _ = gateway
    got: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()

    async def callback(request: Request) -> Response:
        await got.put((dict(request.headers), await request.body()))
        return Response(b"")

    server, task, cb_url = await serve(Starlette(routes=[Route("/cb", callback, methods=["POST"])]))
    try:
        headers, body = order_request()
        async with httpx.AsyncClient() as client:
            r = await client.post(f"{url}/async-function/validate", headers={**headers, "X-Callback-Url": f"{cb_url}/cb"},
                                  content=body)
        assert r.status_code == 202 and r.headers["x-call-id"]
        cb_headers, cb_body = await asyncio.wait_for(got.get(), 60)
        assert cb_headers["x-function-status"] == "200" and cb_headers["x-call-id"] == r.headers["x-call-id"]
        assert events.from_http(cb_headers, cb_body).get_type() == load_topology().stage("validate").output.type
    finally:
        server.should_exit = True
        await task


async def test_an_oversize_body_is_413_with_a_message_and_a_malformed_one_400(gateway) -> None:
    gw, url, replicas = gateway
    headers, body = order_request()
    async with httpx.AsyncClient(timeout=60) as client:
        r = await client.post(f"{url}/function/validate", headers=headers, content=b"x" * (gw.config.max_body + 1))
        assert r.status_code == 413 and "limit" in r.text
        assert replicas.desired == 0  # refused at the gateway: no replica was woken for it
        r = await client.post(f"{url}/function/validate", content=b"[]",
                              headers={"content-type": "application/cloudevents+json"})
        assert r.status_code == 400 and "JSON object" in r.text
