"""The stage as an OpenFaaS function: `handle(event, context)` in the python3-http contract.

openfaas-keda.md §1.1: `event` has `.body` (bytes), `.headers` (case-insensitive), `.method`,
`.query`, `.path`; `context.hostname`; the handler returns `{"statusCode", "body", "headers"}`.
The CloudEvents semantics come from :class:`pipeline.stagehost.StageHost` (binary or structured
in, binary out; 202 filtered; 422 rejected with the reason; 4xx bad requests; 500 stage error).
The stage's emulated downstream latency is paid here, in the handler thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from pipeline.settings import read_environment
from pipeline.stagehost import StageHost
from pipeline.topology import Stage, load_topology



class FunctionEvent(Protocol):
    body: bytes
    headers: Mapping[str, str]
    method: str
    path: str


class FunctionHandler:
    """`handle(event, context)` for one stage."""

    def __init__(self, stage: Stage, source: str | None = None, sleep: Any = time.sleep) -> None:
        self.stage = stage
        self.host = StageHost(stage, source)
        self._sleep = sleep

    def __call__(self, event: FunctionEvent, context: object = None) -> dict[str, Any]:
        result, ran = self._answer(event)
        if ran and self.stage.latency_s > 0:
            self._sleep(self.stage.latency_s)
        return result

    async def call_async(self, event: FunctionEvent, context: object = None) -> dict[str, Any]:
        """The same answer, the latency awaited instead of slept: what the local watchdog runs, so a replica
        does the same work as a Knative replica (the stage inline, the emulated call as a timer)."""
        result, ran = self._answer(event)
        if ran and self.stage.latency_s > 0:
            await asyncio.sleep(self.stage.latency_s)
        return result

    def _answer(self, event: FunctionEvent) -> tuple[dict[str, Any], bool]:
        if event.method not in ("POST", "PUT"):
            return _error(405, f"{event.method} not allowed: POST a CloudEvent to function {self.stage.name}"), False
        reply = self.host.respond(event.headers if isinstance(event.headers, dict) else
                                  {k.lower(): v for k, v in event.headers.items()}, event.body)
        return {"statusCode": reply.status, "body": reply.body, "headers": dict(reply.headers)}, reply.ran


def _error(status: int, message: str) -> dict[str, Any]:
    return {"statusCode": status, "body": orjson.dumps({"error": message}),
            "headers": {"content-type": "application/json"}}


_configured: FunctionHandler | None = None


def configured_handler() -> FunctionHandler:
    """The handler of the stage named by `LAGDUEL_STAGE` in `LAGDUEL_TOPOLOGY` (default pipeline.yaml)."""
    global _configured
    if _configured is None:
        env = read_environment().function
        name = env.get("LAGDUEL_STAGE")
        if not name:
            raise RuntimeError("LAGDUEL_STAGE is not set: which stage does this function serve?")
        _configured = FunctionHandler(load_topology(env.get("LAGDUEL_TOPOLOGY")).stage(name))
    return _configured


def handle(event: FunctionEvent, context: object) -> dict[str, Any]:
    """The python3-http entry point."""
    return configured_handler()(event, context)
