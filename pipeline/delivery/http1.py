"""A small HTTP/1.1 client for the emulations' one real hop per stage: keep-alive connections, one
request at a time on each, responses parsed by httptools (the parser uvicorn uses).

The hop dispatcher → replica carries tens of thousands of requests a second on one event loop; a
general client's per-request machinery (timeouts, cookie jars, tracing, redirects, streaming bodies)
costs more than the request itself there. This one writes each request in one call and reads the
whole reply; everything else the caller decides (which replica, retries, what a status means).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping

import httptools


class _Connection(asyncio.Protocol):
    __slots__ = ("transport", "_parser", "_reply", "_headers", "_body", "_status", "_closed", "_got")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._reply: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._status = 0
        self._closed = False
        self._got = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._got = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"malformed HTTP reply: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._fail(ConnectionResetError("connection closed before the reply"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        reply, self._reply = self._reply, None
        if not self._parser.should_keep_alive():
            self.close()
        if reply is not None and not reply.done():
            reply.set_result((self._status, self._headers, b"".join(self._body)))

    # use
    @property
    def usable(self) -> bool:
        return not self._closed and self._reply is None

    def request(self, raw: bytes) -> asyncio.Future[tuple[int, dict[str, str], bytes]]:
        assert self.transport is not None
        self._headers, self._body, self._got = {}, [], False
        self._reply = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self._reply

    def _fail(self, exc: Exception) -> None:
        reply, self._reply = self._reply, None
        if reply is not None and not reply.done():
            reply.set_exception(exc)

    def close(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()


class Http1Client:
    """POSTs over pooled keep-alive connections, per (host, port)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}

    async def post(self, host: str, port: int, path: str, headers: Mapping[str, str], body: bytes,
                   timeout_s: float | None = None) -> tuple[int, dict[str, str], bytes]:
        """(status, lower-cased headers, body); OSError when the connection fails, TimeoutError on timeout."""
        head = [f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-length: {len(body)}\r\n"]
        head.extend(f"{k}: {v}\r\n" for k, v in headers.items() if k not in _SET_HERE)
        head.append("\r\n")
        raw = "".join(head).encode("latin-1") + body
        for fresh in (False, True):
            conn = None if fresh else self._take(host, port)
            reused = conn is not None
            if conn is None:
                _, conn = await asyncio.get_running_loop().create_connection(_Connection, host, port)
            reply = conn.request(raw)
            try:
                result = await (asyncio.wait_for(reply, timeout_s) if timeout_s else reply)
            except ConnectionError:
                # A kept-alive connection the server had just closed: the request never reached it; once more.
                if reused and not conn._got:
                    continue
                raise
            except BaseException:
                conn.close()  # timed out or cancelled mid-reply: the connection's state is unknown
                raise
            if conn.usable:
                self._idle.setdefault((host, port), deque()).append(conn)
            return result
        raise ConnectionResetError("connection closed before the reply")  # pragma: no cover

    def _take(self, host: str, port: int) -> _Connection | None:
        idle = self._idle.get((host, port))
        while idle:
            conn = idle.pop()
            if conn.usable:
                return conn
        return None

    def forget(self, host: str, port: int) -> None:
        """Close the idle connections to an origin (a replica that went away)."""
        for conn in self._idle.pop((host, port), ()):
            conn.close()

    async def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


_SET_HERE = frozenset({"host", "content-length", "connection", "transfer-encoding", "keep-alive"})
