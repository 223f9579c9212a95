"""of-watchdog in http mode, emulated: one real process per function replica.

openfaas-keda.md §1.3: requests over `max_inflight` get an immediate 429 "Concurrent request
limit exceeded" (`X-OpenFaaS-Internal: faas-middleware`); a request running past `exec_timeout`
gets 504 (`X-OpenFaaS-Internal: of-watchdog`); `/_/health` is 200 while the lock is held, else
503; `/_/ready` is 503 without the lock and 429 while the in-flight limit is met; on SIGTERM the
lock goes first, the server stops `healthcheck_interval` later and drains for `write_timeout`.
Unlike the real watchdog, the function runs in this process (no proxy hop to 127.0.0.1:5000).

    python -m pipeline.openfaas.watchdog --stage score [--topology FILE] [--port N]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.asgi import BodyTooLarge, read_body
from pipeline.openfaas.handler import FunctionHandler
from pipeline.openfaas.index import METHODS, Event, FunctionServer
from pipeline.settings import read_environment
from pipeline.stagehost import MAX_BODY
from pipeline.topology import Stage, load_topology

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_TEXT = (b"content-type", b"text/plain; charset=utf-8")


def parse_duration(text: str) -> float:
    """A watchdog duration in seconds: an integer means seconds, else a Go duration ("1m5s", "500ms")."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


@dataclass(frozen=True)
class WatchdogConfig:
    """The of-watchdog variables this emulation honours, with the upstream defaults (§1.3)."""

    port: int = 8080
    max_inflight: int = 0
    exec_timeout_s: float = 30.0
    write_timeout_s: float = 30.0
    healthcheck_interval_s: float | None = None
    """None: equal to write_timeout, as upstream."""

    @property
    def drain_wait_s(self) -> float:
        return self.write_timeout_s if self.healthcheck_interval_s is None else self.healthcheck_interval_s

    @classmethod
    def for_stage(cls, stage: Stage, env: Mapping[str, str] | None = None) -> WatchdogConfig:
        """Topology values (max_inflight = concurrency, exec_timeout = timeout_s), then the environment."""
        cfg = cls(max_inflight=stage.concurrency, exec_timeout_s=stage.timeout_s)
        env = env or {}
        port = env.get("port") or env.get("PORT")
        if port:
            cfg = replace(cfg, port=int(port))
        if env.get("max_inflight"):
            cfg = replace(cfg, max_inflight=int(env["max_inflight"]))
        if env.get("exec_timeout"):
            cfg = replace(cfg, exec_timeout_s=parse_duration(env["exec_timeout"]))
        if env.get("write_timeout"):
            cfg = replace(cfg, write_timeout_s=parse_duration(env["write_timeout"]))
        if env.get("healthcheck_interval"):
            cfg = replace(cfg, healthcheck_interval_s=parse_duration(env["healthcheck_interval"]))
        return cfg


class Watchdog:
    """The watchdog's HTTP face around a :class:`FunctionServer`."""

    def __init__(self, config: WatchdogConfig, function: FunctionServer) -> None:
        self.config = config
        self.function = function
        self.in_flight = 0
        self.locked = True  # the /tmp/.lock file: written at start unless suppress_lock

    def _limit_met(self) -> bool:
        return self.config.max_inflight > 0 and self.in_flight >= self.config.max_inflight

    async def health(self, request: Request) -> Response:
        if request.method != "GET":
            return PlainTextResponse("Method Not Allowed", 405)
        return PlainTextResponse("OK" if self.locked else "Service Unavailable", 200 if self.locked else 503)

    async def ready(self, request: Request) -> Response:
        if request.method != "GET":
            return PlainTextResponse("Method Not Allowed", 405)
        if not self.locked:
            return PlainTextResponse("Service Unavailable", 503)
        if self._limit_met():
            return PlainTextResponse("Concurrent request limit exceeded", 429)
        return PlainTextResponse("OK", 200)

    async def invoke(self, request: Request) -> Response:
        if self._limit_met():
            return PlainTextResponse("Concurrent request limit exceeded", 429,
                                     headers={"X-OpenFaaS-Internal": "faas-middleware"})
        self.in_flight += 1
        try:
            timeout = self.config.exec_timeout_s or None  # 0 disables the timeout
            return await asyncio.wait_for(self.function.invoke(request), timeout)
        except TimeoutError:
            return PlainTextResponse(f"Function exceeded exec_timeout of {self.config.exec_timeout_s:g}s", 504,
                                     headers={"X-OpenFaaS-Internal": "of-watchdog"})
        finally:
            self.in_flight -= 1

    async def _invoke_asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`invoke` as plain ASGI, the hot path: the same answers without Starlette's per-request objects."""
        if self._limit_met():
            return await _reply(send, 429, [(b"x-openfaas-internal", b"faas-middleware"), _TEXT],
                                b"Concurrent request limit exceeded")
        self.in_flight += 1
        try:
            try:
                body = await read_body(receive, MAX_BODY)
            except BodyTooLarge as exc:  # refused before it is buffered whole, as the stage host would refuse it
                return await _reply(send, 413, [_TEXT], str(exc).encode())
            if body is None:
                return
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}  # lower-case (ASGI)
            event = Event(body, headers, scope["method"], QueryParams(scope["query_string"]), scope["path"])
            try:
                async with asyncio.timeout(self.config.exec_timeout_s or None):  # 0 disables the timeout
                    status, headers, body = await self.function.call(event)
            except TimeoutError:
                return await _reply(send, 504, [(b"x-openfaas-internal", b"of-watchdog"), _TEXT],
                                    f"Function exceeded exec_timeout of {self.config.exec_timeout_s:g}s".encode())
            await _reply(send, status, [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
                                        if k.lower() != "content-length"], body)
        finally:
            self.in_flight -= 1

    def app(self) -> ASGIApp:
        """The watchdog's routes; function calls (anything but `/_/...`) skip Starlette."""
        routes = self._routes()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["method"] in METHODS and not scope["path"].startswith("/_/"):
                return await self._invoke_asgi(scope, receive, send)
            await routes(scope, receive, send)
        return app

    def _routes(self) -> Starlette:
        return Starlette(routes=[
            Route("/_/health", self.health, methods=METHODS),  # GET only; others 405, not the function
            Route("/_/ready", self.ready, methods=METHODS),
            Route("/", self.invoke, methods=METHODS),
            Route("/{path:path}", self.invoke, methods=METHODS),
        ])


async def _reply(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class WatchdogServer(uvicorn.Server):
    """SIGTERM: drop the lock, keep serving for healthcheck_interval, then drain for write_timeout."""

    def __init__(self, watchdog: Watchdog) -> None:
        cfg = watchdog.config
        super().__init__(uvicorn.Config(watchdog.app(), host="127.0.0.1", port=cfg.port, log_level="warning",
                                        access_log=False, timeout_graceful_shutdown=int(cfg.write_timeout_s) or 1))
        self.watchdog = watchdog

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.watchdog.locked:
            self.watchdog.locked = False
            timer = threading.Timer(self.watchdog.config.drain_wait_s, super().handle_exit, (sig, frame))
            timer.daemon = True
            timer.start()
        else:
            super().handle_exit(sig, frame)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.openfaas.watchdog", description=__doc__.split("\n")[0])
    parser.add_argument("--stage", required=True, help="the stage this replica serves")
    parser.add_argument("--topology", default=None, help="topology file (default: the reference pipeline.yaml)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default: env `port`, else 8080)")
    args = parser.parse_args(argv)
    env = read_environment().function
    topology = load_topology(args.topology or env.get("LAGDUEL_TOPOLOGY"))
    try:
        stage = topology.stage(args.stage)
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    config = WatchdogConfig.for_stage(stage, env)
    if args.port is not None:
        config = replace(config, port=args.port)
    threads = config.max_inflight or 4  # waitress's default pool when max_inflight is unlimited (§1.1)
    WatchdogServer(Watchdog(config, FunctionServer(FunctionHandler(stage), threads))).run()


if __name__ == "__main__":
    main()
