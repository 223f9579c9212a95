"""The emulated OpenFaaS gateway with faas-netes' deploy behind it, for `deploy openfaas --apply`.

The emulation's gateway answers 501 to deploys (its functions come from the topology); here a deploy
does what faas-netes does: server-side apply the function's Deployment into the function namespace
(its pods bound to the KWOK node, which makes them Ready). Everything else is the emulated gateway.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from pipeline.broker.process import free_port
from pipeline.openfaas.gateway import Gateway, GatewayConfig
from tests.controlplane.processes import NODE, ControlPlane

PASSWORD = "secret"


def function_deployment(body: dict[str, Any]) -> dict[str, Any]:
    """faas-netes' Deployment for a FunctionDeployment body: named after the function, `faas_function` label,
    replicas from com.openfaas.scale.min."""
    name, labels = body["service"], {**body.get("labels", {}), "faas_function": body["service"]}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": body["namespace"], "labels": labels},
        "spec": {
            "replicas": int(labels.get("com.openfaas.scale.min", "1")),
            "selector": {"matchLabels": {"faas_function": name}},
            "template": {"metadata": {"labels": labels}, "spec": {
                "nodeName": NODE,  # no scheduler here: bound to the fake node directly
                "automountServiceAccountToken": False,
                "containers": [{"name": name, "image": body["image"],
                                "env": [{"name": k, "value": v} for k, v in body.get("envVars", {}).items()]}]}},
        },
    }


def apply_object(cp: ControlPlane, obj: dict[str, Any], manager: str) -> None:
    meta = obj["metadata"]
    r = cp.http().patch(f"/apis/apps/v1/namespaces/{meta['namespace']}/deployments/{meta['name']}",
                        params={"fieldManager": manager, "force": "true"}, json=obj,
                        headers={"Content-Type": "application/apply-patch+yaml"})
    assert r.status_code in (200, 201), r.text


class FaasNetesGateway:
    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.gateway = Gateway({}, GatewayConfig(password=PASSWORD))
        self.deployed: list[str] = []
        self._inner = self.gateway.app()
        expected = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        self._auth = f"Basic {expected}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/system/functions" and scope["method"] in ("POST", "PUT"):
            request = Request(scope, receive)
            if request.headers.get("authorization") != self._auth:
                await _answer(send, 401, b"Unauthorized")
                return
            body = await request.json()
            apply_object(self.cp, function_deployment(body), "faas-netes")
            self.deployed.append(body["service"])
            await _answer(send, 202, b"")
            return
        await self._inner(scope, receive, send)


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def serve(cp: ControlPlane) -> Iterator[tuple[FaasNetesGateway, str]]:
    """The gateway over real HTTP on 127.0.0.1, in a thread of its own (apply is synchronous)."""
    app = FaasNetesGateway(cp)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.02)
        assert thread.is_alive(), "the gateway did not start"
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
