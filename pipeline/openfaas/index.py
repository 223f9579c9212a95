"""The function process: serves `handle(event, context)` over HTTP, the role of the python3-http
template's `index.py` (openfaas-keda.md §1.1), as an ASGI app.

In the image, of-watchdog (http mode) forks `python -m pipeline.openfaas.index` and proxies to
it on 127.0.0.1:5000. The local watchdog emulation calls the same app in-process.
Differences from the upstream template, on purpose: a `bytes` body is sent as-is (upstream sends
`str(body)` unless the Debian variant sees `Content-type: application/octet-stream`), and the
handler runs on `threads` worker threads (upstream: waitress, 4 threads by default).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline.settings import read_environment

log = logging.getLogger("lagduel.function")
FunctionFn = Callable[[Any, Any], Any]
METHODS = ["GET", "PUT", "POST", "PATCH", "DELETE"]


@dataclass(frozen=True, slots=True)
class Event:
    body: bytes
    headers: Mapping[str, str]
    method: str
    query: Mapping[str, str]
    path: str


@dataclass(frozen=True, slots=True)
class Context:
    hostname: str


def format_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a handler's return value, as the template's `format_response` does."""
    if result is None:
        return 200, {}, b""
    if not isinstance(result, dict):
        return 200, {}, str(result).encode()
    status = int(result.get("statusCode", 200))
    headers = {str(k): str(v) for k, v in dict(result.get("headers") or {}).items()}
    body = result.get("body", "")
    if isinstance(body, dict):
        headers.setdefault("content-type", "application/json")
        return status, headers, orjson.dumps(body)
    if isinstance(body, (bytes, bytearray)):
        return status, headers, bytes(body)
    return status, headers, str(body).encode()


class FunctionServer:
    """Calls the handler for each request on a bounded pool of worker threads."""

    def __init__(self, handler: FunctionFn, threads: int = 4) -> None:
        self.handler = handler
        self.limiter = anyio.CapacityLimiter(max(threads, 1))
        self.context = Context(socket.gethostname())

    async def invoke(self, request: Request) -> Response:
        event = Event(await request.body(), request.headers, request.method, request.query_params, request.url.path)
        status, headers, body = await self.call(event)
        return Response(body, status, headers)

    async def call(self, event: Event) -> tuple[int, dict[str, str], bytes]:
        """Run the handler on a worker thread; (status, headers, body) of its answer."""
        try:
            call_async = getattr(self.handler, "call_async", None)
            if call_async is not None:  # a handler that never blocks: inline, no thread hand-off
                result = await call_async(event, self.context)
            else:
                result = await anyio.to_thread.run_sync(self.handler, event, self.context, limiter=self.limiter,
                                                       abandon_on_cancel=True)
        except Exception as exc:  # Flask answers an unhandled exception with 500
            log.exception("function handler raised")
            return 500, {"content-type": "application/json"}, orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
        return format_response(result)

    def app(self) -> Starlette:
        async def route(request: Request) -> Response:
            return await self.invoke(request)
        return Starlette(routes=[Route("/", route, methods=METHODS), Route("/{path:path}", route, methods=METHODS)])


def serve(handler: FunctionFn, port: int = 5000) -> None:  # pragma: no cover - the image's fprocess
    """Serve `handler` on 127.0.0.1:`port`, the `upstream_url` of the watchdog (§1.1)."""
    import uvicorn

    threads = int(read_environment().function.get("max_inflight") or 4)
    uvicorn.run(FunctionServer(handler, threads).app(), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":  # pragma: no cover
    from pipeline.openfaas.handler import handle

    serve(handle)
