"""The OpenFaaS CE gateway, emulated (openfaas-keda.md §2, §3.4).

- `/function/<name>[/...]`: synchronous proxy to a ready replica, round-robin; no replica and
  desired 0 → scale to max(min, 1) and hold the request, polling every 100 ms up to 1000 times
  (the CE scale-from-zero path, `function_scaler.go`); upstream timeout or unreachable → 502;
  unknown function → 404.
- `/async-function/<name>[/...]`: 202 with `X-Call-Id`; the request goes on an in-memory queue
  drained by one worker per function (CE queue-worker: max_inflight 1, no retries, §4.5),
  which calls `/function/<name>` and POSTs the result to `X-Callback-Url` when given.
- `/system/*` behind basic auth: GET/POST/PUT /system/functions (list; deploy/update answer
  501 — functions are the topology's), GET /system/function/<name>, POST
  /system/scale-function/<name> (CE clamps to [1, 5]).
- `/metrics` (port 8082 upstream, same port here): gateway_function_invocation_total{function_name,
  code}, gateway_functions_seconds{function_name, code}, gateway_function_invocation_started,
  gateway_service_count, on an explicit registry.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.asgi import BodyTooLarge, read_body
from pipeline.autoscale.keda import CE_MAX_REPLICAS
from pipeline.delivery import RouteTimeout
from pipeline.delivery.http1 import Http1Client
from pipeline.openfaas.replicaset import FunctionReplicas

SCALE_POLL_S = 0.1  # §3.4: poll every 100 ms ...
SCALE_POLL_ATTEMPTS = 1000  # ... up to 1000 times
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "trailer", "upgrade"}
_ANY = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_NAME = re.compile(r"[-a-zA-Z_0-9.]+")  # §2: function name pattern of the routes


@dataclass(frozen=True)
class GatewayConfig:
    upstream_timeout_s: float = 60.0  # §2 code default
    namespace: str = "openfaas-fn"
    """function_name label is `<name>.<namespace>` when the gateway has function_namespace set (§2)."""
    user: str = "admin"
    password: str = ""
    """Empty: a random one is made, as the chart's generateBasicAuth does."""
    hop_s: float = 0.0
    """Modeled cost of the hops folded away in process: connector → gateway → replica, watchdog → function."""
    max_body: int = 2 << 20
    """Request bodies over this are refused with 413, not buffered: twice the stage host's limit (and the
    broker's record limit), so every body a function could take passes. Not an upstream figure
    (openfaas-keda.md records none for the gateway)."""


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.invocations = Counter("gateway_function_invocation", "Function invocations",
                                   ["function_name", "code"], registry=registry)
        self.seconds = Histogram("gateway_functions_seconds", "Function duration", ["function_name", "code"],
                                 registry=registry)
        self.started = Counter("gateway_function_invocation_started", "Invocations started", ["function_name"],
                               registry=registry)
        self.service_count = Gauge("gateway_service_count", "Replicas", ["function_name"], registry=registry)


class Gateway:
    def __init__(self, functions: Mapping[str, FunctionReplicas], config: GatewayConfig = GatewayConfig(),
                 registry: CollectorRegistry | None = None, min_replicas: Callable[[str], int] = lambda _: 0) -> None:
        self.functions = functions
        self.config = config if config.password else GatewayConfig(
            config.upstream_timeout_s, config.namespace, config.user, secrets.token_urlsafe(16), config.hop_s)
        self.registry = registry or CollectorRegistry()
        self.metrics = GatewayMetrics(self.registry)
        self.codes: dict[str, dict[str, int]] = {name: {} for name in functions}
        # The one real HTTP hop per invocation (gateway → replica, the function's run included), summed per function.
        self.hop_s: dict[str, float] = {}
        self.hops: dict[str, int] = {}
        self.held: dict[str, int] = {name: 0 for name in functions}
        self._min = min_replicas
        # One keep-alive pool for every replica, made in the running loop on first use
        # (max_idle_conns_per_host 1024 upstream, §2).
        self._session: aiohttp.ClientSession | None = None
        self._http1 = Http1Client()
        self._timeout = aiohttp.ClientTimeout(total=self.config.upstream_timeout_s)
        self._queues: dict[str, asyncio.Queue[tuple[str, dict[str, str], bytes, str]]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._slot_waiters: dict[str, deque[asyncio.Future[None]]] = {name: deque() for name in functions}

    def label(self, name: str) -> str:
        return f"{name}.{self.config.namespace}" if self.config.namespace else name

    # -- synchronous invocation ----------------------------------------------------------------
    async def function(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        status, out_headers, content = await self.invoke(name, request.method, headers, body,
                                                         request.path_params.get("path", ""))
        return Response(content, status, out_headers)

    async def _function_asgi(self, scope: Scope, receive: Receive, send: Send, name: str, path: str) -> None:
        """`/function/<name>[/<path>]` as plain ASGI: the same answer as `function`, without the
        per-request cost of Starlette's request, response and middleware objects on the hot path."""
        try:
            body = await read_body(receive, self.config.max_body)
        except BodyTooLarge as exc:
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": str(exc).encode()})
            return
        if body is None:
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k.decode("latin-1") not in _HOP}
        status, out, content = await self.invoke(name, scope["method"], headers, body, path)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out.items()]
        raw.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": content})

    async def invoke(self, name: str, method: str, headers: dict[str, str], body: bytes,
                     path: str = "") -> tuple[int, dict[str, str], bytes]:
        replicas = self.functions.get(name)
        if replicas is None:
            return 404, {}, f"error finding function {name}: not found".encode()
        label = self.label(name)
        self.metrics.started.labels(label).inc()
        start = time.monotonic()
        headers = {**headers, "X-Call-Id": headers.get("x-call-id") or str(uuid.uuid4()),
                   "X-Start-Time": str(time.time_ns())}
        url = replicas.next_url() or await self._scale_from_zero(name, replicas)
        if url is None:
            status, out, content = 500, {}, f"unable to reach a ready replica of {name}".encode()
        else:
            status = 0
            try:
                if self.config.hop_s > 0:
                    await asyncio.sleep(self.config.hop_s)
                if method == "POST":  # the hot path: the lean keep-alive client
                    host, _, port = url.removeprefix("http://").rpartition(":")
                    began = time.monotonic()
                    status, out, content = await self._http1.post(host, int(port), "/" + path, headers, body,
                                                                  self.config.upstream_timeout_s)
                    if status != 429:
                        self.hop_s[name] = self.hop_s.get(name, 0.0) + time.monotonic() - began
                        self.hops[name] = self.hops.get(name, 0) + 1
                    out = {k: v for k, v in out.items() if k not in _HOP}
                else:
                    async with self._client().request(method, f"{url}/{path}", headers=headers, data=body,
                                                      timeout=self._timeout) as r:
                        status, content = r.status, await r.read()
                        out = {k.lower(): v for k, v in r.headers.items() if k.lower() not in _HOP}
            except TimeoutError:
                status, out, content = 502, {}, f"upstream timeout for {name}".encode()
            except (aiohttp.ClientError, OSError):
                status, out, content = 502, {}, f"Can't reach service for: {name}.".encode()
                replicas.reap()  # a dead replica leaves the endpoints at once
            finally:
                if status != 429:
                    self._slot_freed(name)
        out["x-served-by"] = "openfaas-ce/emulated"
        code = str(status)
        self.metrics.invocations.labels(label, code).inc()
        self.metrics.seconds.labels(label, code).observe(time.monotonic() - start)
        self.codes[name][code] = self.codes[name].get(code, 0) + 1
        return status, out, content

    async def route(self, url: str, headers: Mapping[str, str], body: bytes,
                    timeout_s: float) -> tuple[int, dict[str, str], bytes]:
        """`/function/<name>` called in process (an HttpSender Route): the connector's one real HTTP hop is
        then the gateway's hop to the replica; the gateway's own semantics stay (round-robin, scale-from-zero
        hold, 502 when unreachable, metrics)."""
        name, _, path = urlsplit(url).path.removeprefix("/function/").partition("/")
        try:
            async with asyncio.timeout(timeout_s):  # no task per request, as wait_for would make
                return await self.invoke(name, "POST", dict(headers), body, path)
        except TimeoutError:
            raise RouteTimeout(f"no reply within {timeout_s:g} s") from None

    async def slot(self, name: str, timeout_s: float = 2.0) -> None:
        """Returns when a request to `name` finishes or a replica becomes ready (a slot may be free), at the
        latest after `timeout_s`: how the in-process connector waits after a 429 instead of sleeping blindly."""
        fut = asyncio.get_running_loop().create_future()
        waiters = self._slot_waiters.setdefault(name, deque())
        waiters.append(fut)
        try:
            await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            pass
        finally:
            if not fut.done():
                fut.cancel()
            try:
                waiters.remove(fut)
            except ValueError:
                pass

    def _slot_freed(self, name: str, slots: int = 1) -> None:
        waiters = self._slot_waiters.get(name)
        while waiters and slots > 0:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                slots -= 1

    def replica_ready(self, name: str, slots: int) -> None:
        """A new replica's slots wake that many waiters."""
        self._slot_freed(name, slots)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0), auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"))
        return self._session

    async def _scale_from_zero(self, name: str, replicas: FunctionReplicas) -> str | None:
        """§3.4: desired 0 → scale to max(min, 1); hold the request until a replica is available."""
        if replicas.desired == 0:
            replicas.scale(max(self._min(name), 1))
        self.held[name] += 1
        try:
            for _ in range(SCALE_POLL_ATTEMPTS):
                url = replicas.next_url()
                if url is not None:
                    return url
                await asyncio.sleep(SCALE_POLL_S)
            return None
        finally:
            self.held[name] -= 1

    # -- asynchronous invocation ---------------------------------------------------------------
    async def async_function(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.functions:
            return PlainTextResponse(f"error finding function {name}: not found", 404)
        call_id = request.headers.get("x-call-id") or str(uuid.uuid4())
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers["X-Call-Id"] = call_id
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = asyncio.Queue()
            self._workers.append(asyncio.create_task(self._queue_worker(name, queue)))
        await queue.put((request.path_params.get("path", ""), headers, await request.body(), call_id))
        return Response(b"", 202, {"X-Call-Id": call_id})

    async def _queue_worker(self, name: str, queue: asyncio.Queue[tuple[str, dict[str, str], bytes, str]]) -> None:
        while True:  # one at a time: the CE queue-worker's max_inflight is fixed at 1 (§4.5)
            path, headers, body, call_id = await queue.get()
            start = time.monotonic()
            status, out, content = await self.invoke(name, "POST", headers, body, path)
            callback = {k.lower(): v for k, v in headers.items()}.get("x-callback-url")
            if callback:
                try:
                    async with self._client().post(callback, data=content, timeout=self._timeout, headers={
                        **out, "X-Call-Id": call_id, "X-Function-Status": str(status), "X-Function-Name": name,
                        "X-Duration-Seconds": f"{time.monotonic() - start:.6f}"}) as r:
                        await r.read()
                except (TimeoutError, aiohttp.ClientError):
                    pass  # CE: no retries of callbacks (§4.5)

    # -- system API ----------------------------------------------------------------------------
    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.config.user}:{self.config.password}".encode()).decode()
        return secrets.compare_digest(request.headers.get("authorization", ""), f"Basic {expected}")

    async def system(self, request: Request) -> Response:
        if not self._authorised(request):
            return PlainTextResponse("Unauthorized", 401, {"WWW-Authenticate": 'Basic realm="Restricted"'})
        path = request.url.path
        if path == "/system/functions":
            if request.method == "GET":
                return JSONResponse([self._status(n) for n in self.functions])
            return PlainTextResponse("functions come from the topology in this emulation", 501)
        name = request.path_params.get("name", "")
        if name not in self.functions:
            return PlainTextResponse(f"function {name} not found", 404)
        if path.startswith("/system/function/"):
            return JSONResponse(self._status(name))
        if path.startswith("/system/scale-function/") and request.method == "POST":
            try:
                wanted = int((await request.json())["replicas"])
            except (ValueError, KeyError, TypeError):
                return PlainTextResponse("body must be JSON with an integer 'replicas'", 400)
            if wanted == 0:
                return PlainTextResponse("replicas cannot be set to 0 in OpenFaaS CE", 400)
            self.functions[name].scale(min(max(wanted, 1), CE_MAX_REPLICAS))  # §2: CE clamps to [1, 5]
            return Response(b"", 202)
        return PlainTextResponse("Method Not Allowed", 405)

    def _status(self, name: str) -> dict[str, object]:
        r = self.functions[name]
        return {"name": name, "namespace": self.config.namespace, "replicas": r.desired,
                "availableReplicas": r.ready, "invocationCount": sum(self.codes[name].values())}

    async def metrics_endpoint(self, request: Request) -> Response:
        for name, r in self.functions.items():
            self.metrics.service_count.labels(self.label(name)).set(r.ready)
        return Response(generate_latest(self.registry), 200, {"content-type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("OK")

    def app(self) -> ASGIApp:
        """The gateway's routes; `/function/...` calls, the hot path, skip Starlette (see `_function_asgi`)."""
        routes = self._routes()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/function/") and scope["method"] in _ANY:
                name, _, path = scope["path"][len("/function/"):].partition("/")
                if _NAME.fullmatch(name):
                    return await self._function_asgi(scope, receive, send, name, path)
            await routes(scope, receive, send)
        return app

    def _routes(self) -> Starlette:
        return Starlette(routes=[
            Route("/function/{name}", self.function, methods=_ANY),
            Route("/function/{name}/{path:path}", self.function, methods=_ANY),
            Route("/async-function/{name}", self.async_function, methods=["POST"]),
            Route("/async-function/{name}/{path:path}", self.async_function, methods=["POST"]),
            Route("/system/functions", self.system, methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/system/function/{name}", self.system, methods=["GET"]),
            Route("/system/scale-function/{name}", self.system, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics_endpoint, methods=["GET"]),
        ])

    async def aclose(self) -> None:
        await self._http1.close()
        for task in self._workers:
            task.cancel()
        if self._session is not None:
            await self._session.close()
