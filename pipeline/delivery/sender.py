"""HTTP delivery with retries over one pooled, keep-alive client.

The client is aiohttp's: per request it costs a fraction of httpx's (whose pool, header models and
anyio stream layers dominated a dispatcher's CPU). A caller that routes requests itself (the Knative
emulation's in-process router) hands in a `Route` instead, and no client is involved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from pipeline.delivery.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class SendResult:
    status: int | None
    """Final HTTP status; None when the last attempt failed in transport (refused, reset, timed out)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Response headers, names lower-cased; a repeated header's values joined with ", "."""
    body: bytes = b""
    attempts: int = 1
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def lower_headers(items: object) -> dict[str, str]:
    """(name, value) pairs → {lower-case name: value}, repeated names joined as httpx does."""
    out: dict[str, str] = {}
    for name, value in items:  # type: ignore[attr-defined]
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


class RouteTimeout(Exception):
    """A Route's way to say the reply did not come within the attempt's timeout."""


# (url, headers, body, timeout_s) -> (status, lower-cased headers, body); raises RouteTimeout or OSError.
Route = Callable[[str, Mapping[str, str], bytes, float], Awaitable[tuple[int, dict[str, str], bytes]]]


class HttpSender:
    def __init__(self, max_connections: int = 200, route: Route | None = None) -> None:
        self._route = route
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None  # made in the running loop, on first use
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def send(self, url: str, headers: Mapping[str, str], body: bytes, policy: RetryPolicy, timeout_s: float,
                   on_retry: Callable[[int | None], None] | None = None) -> SendResult:
        attempt = 0
        while True:
            attempt += 1
            if self._route is not None:
                result = await self._attempt_route(url, headers, body, timeout_s, attempt)
            else:
                result = await self._attempt(url, headers, body, timeout_s, attempt)
            if result.ok or not policy.should_retry(result.status, attempt):
                return result
            if on_retry:
                on_retry(result.status)
            await asyncio.sleep(policy.delay(attempt))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0),
                auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding"))
        return self._session

    async def _attempt(self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float,
                       attempt: int) -> SendResult:
        timeout = self._timeouts.get(timeout_s)
        if timeout is None:
            timeout = self._timeouts[timeout_s] = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self._client().post(url, data=body, headers=headers, timeout=timeout) as r:
                content = await r.read()
                return SendResult(r.status, lower_headers(r.headers.items()), content, attempt)
        except TimeoutError:
            return SendResult(None, attempts=attempt, error=f"timed out after {timeout_s:g} s")
        except aiohttp.ClientError as exc:
            return SendResult(None, attempts=attempt, error=f"{type(exc).__name__}: {exc}")

    async def _attempt_route(self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float,
                             attempt: int) -> SendResult:
        assert self._route is not None
        try:
            status, reply_headers, content = await self._route(url, headers, body, timeout_s)
        except RouteTimeout:
            return SendResult(None, attempts=attempt, error=f"timed out after {timeout_s:g} s")
        except OSError as exc:
            return SendResult(None, attempts=attempt, error=f"{type(exc).__name__}: {exc}")
        return SendResult(status, reply_headers, content, attempt)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
