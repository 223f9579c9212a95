"""The Knative Service of one stage: an ASGI app answering CloudEvents over HTTP.

What a Knative user container does: listen on `$PORT`, take the event (the Kafka dispatcher always
sends binary mode, knative.md §1.3; structured is accepted too), reply with the next event in binary
mode (it goes back into the broker topic, §2.5). The semantics are `StageHost`'s; this module adds
the server edges: health probes, JSON logs, Prometheus metrics and the stage's emulated latency.

    python -m pipeline.knative.service --stage score [--topology pipeline.yaml] [--port 8080]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

import orjson
import uvicorn
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pipeline.settings import read_environment
from pipeline.stagehost import MAX_BODY, HttpReply, StageHost, error_reply
from pipeline.topology import Stage, Topology, TopologyError, load_topology

log = logging.getLogger("lagduel.knative.service")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class StageMetrics:
    """The service's Prometheus metrics, created against the registry passed in (never the global one)."""

    def __init__(self, registry: CollectorRegistry, stage: str) -> None:
        self.registry = registry
        self.requests = Counter("lagduel_stage_requests", "Requests answered, by HTTP status and outcome.",
                                ["stage", "code", "outcome"], registry=registry)
        self.latency = Histogram("lagduel_stage_request_seconds", "Time from request to reply.", ["stage"],
                                 buckets=_LATENCY_BUCKETS, registry=registry)
        self.in_flight = Gauge("lagduel_stage_in_flight", "Requests being handled now.", ["stage"], registry=registry)
        self.stage = stage


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log collectors on a cluster parse without configuration."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage()}
        doc.update(getattr(record, "fields", {}))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` (stop reading: an oversize body is not buffered whole)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(stage: Stage, registry: CollectorRegistry | None = None, max_body: int = MAX_BODY,
              source: str | None = None) -> Starlette:
    host = StageHost(stage, source=source, max_body=max_body)
    metrics = StageMetrics(registry or CollectorRegistry(), stage.name)
    state = {"ready": False}

    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        metrics.in_flight.labels(stage.name).inc()
        try:
            reply = await _answer(request)
        finally:
            metrics.in_flight.labels(stage.name).dec()
        metrics.requests.labels(stage.name, str(reply.status), reply.outcome).inc()
        metrics.latency.labels(stage.name).observe(time.perf_counter() - started)
        if reply.status >= 400:
            level = logging.WARNING if reply.status >= 500 else logging.INFO
            log.log(level, "request answered %d", reply.status,
                    extra={"fields": {"stage": stage.name, "status": reply.status, "ce_id": request.headers.get("ce-id"),
                                      "error": reply.body[:300].decode("utf-8", "replace")}})
        return Response(reply.body, reply.status, reply.headers)

    async def _answer(request: Request) -> HttpReply:
        try:
            body = await _read_body(request, max_body)
        except ClientDisconnect:
            return error_reply(400, "client disconnected before the body was read")
        if body is None:
            return error_reply(413, f"body exceeds the limit of {max_body} bytes")
        reply = host.respond(request.headers, body)
        if reply.ran and stage.latency_s > 0:
            await asyncio.sleep(stage.latency_s)  # the stage's emulated downstream call
        return reply

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        return PlainTextResponse("ready") if state["ready"] else PlainTextResponse("not ready", 503)

    async def metrics_page(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def not_allowed(request: Request) -> Response:
        r = error_reply(405, f"{request.method} is not accepted here: POST a CloudEvent to /")
        return Response(r.body, r.status, {**r.headers, "allow": "POST"})

    def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def span(_app: Starlette):  # type: ignore[no-untyped-def]
            state["ready"] = True
            yield
            state["ready"] = False  # draining: the readiness probe fails first

        return span(app)

    routes = [
        Route("/", handle, methods=["POST"]),
        Route("/", not_allowed, methods=["GET", "PUT", "DELETE", "PATCH"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _topology(path: str | None) -> Topology:
    if path and path.endswith(".json"):
        try:
            return Topology.model_validate_json(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise TopologyError(f"{path}: not a valid topology ({exc})") from None
    return load_topology(path)


def main(argv: list[str] | None = None) -> int:
    env = read_environment()
    p = argparse.ArgumentParser(prog="python -m pipeline.knative.service", description=__doc__.split("\n")[0])
    p.add_argument("--stage", required=True, help="stage name in the topology")
    p.add_argument("--topology", help="topology file (.yaml, or a .json dump); default: the reference pipeline.yaml")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=int(env.function.get("PORT", "8080")), help="default: $PORT, else 8080")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-file", help="append the JSON log lines here instead of stderr")
    args = p.parse_args(argv)

    handler: logging.Handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler], force=True)
    try:
        stage = _topology(args.topology).stage(args.stage)
    except (TopologyError, KeyError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(build_app(stage), host=args.host, port=args.port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=30, loop="auto", http="auto")
    log.info("serving stage %s on %s:%d", stage.name, args.host, args.port, extra={"fields": {"stage": stage.name}})
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
