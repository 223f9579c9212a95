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
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.asgi import BodyTooLarge, read_body
from pipeline.settings import read_environment
from pipeline.stagehost import MAX_BODY, StageHost, error_reply
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


def build_app(stage: Stage, registry: CollectorRegistry | None = None, max_body: int = MAX_BODY,
              source: str | None = None) -> ASGIApp:
    host = StageHost(stage, source=source, max_body=max_body)
    metrics = StageMetrics(registry or CollectorRegistry(), stage.name)
    state = {"ready": False}

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

    async def handle_raw(scope: Scope, receive: Receive, send: Send) -> None:
        """POST / as plain ASGI, the hot path: `handle`'s answers without Starlette's per-request objects."""
        started = time.perf_counter()
        gauge = metrics.in_flight.labels(stage.name)
        gauge.inc()
        try:
            try:
                body = await read_body(receive, max_body)
            except BodyTooLarge:
                reply = error_reply(413, f"body exceeds the limit of {max_body} bytes")
            else:
                if body is None:
                    return  # the client went away
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}  # lower-case
                reply = host.respond(headers, body)
                if reply.ran and stage.latency_s > 0:
                    await asyncio.sleep(stage.latency_s)  # the stage's emulated downstream call
        finally:
            gauge.dec()
        metrics.requests.labels(stage.name, str(reply.status), reply.outcome).inc()
        metrics.latency.labels(stage.name).observe(time.perf_counter() - started)
        if reply.status >= 400:
            log.log(logging.WARNING if reply.status >= 500 else logging.INFO, "request answered %d", reply.status,
                    extra={"fields": {"stage": stage.name, "status": reply.status,
                                      "error": reply.body[:300].decode("utf-8", "replace")}})
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
        raw.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": raw})
        await send({"type": "http.response.body", "body": reply.body})

    routes = [
        Route("/", not_allowed, methods=["GET", "PUT", "DELETE", "PATCH"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
    ]
    framework = Starlette(routes=routes, lifespan=lifespan)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/":
            return await handle_raw(scope, receive, send)
        await framework(scope, receive, send)
    return app


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
