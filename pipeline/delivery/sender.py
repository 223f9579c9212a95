"""HTTP delivery with retries over one pooled, keep-alive client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from pipeline.delivery.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class SendResult:
    status: int | None
    """Final HTTP status; None when the last attempt failed in transport (refused, reset, timed out)."""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    attempts: int = 1
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class HttpSender:
    def __init__(self, max_connections: int = 200, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            timeout=None,
        )

    async def send(self, url: str, headers: Mapping[str, str], body: bytes, policy: RetryPolicy, timeout_s: float,
                   on_retry: Callable[[int | None], None] | None = None) -> SendResult:
        attempt = 0
        while True:
            attempt += 1
            result = await self._attempt(url, headers, body, timeout_s, attempt)
            if result.ok or not policy.should_retry(result.status, attempt):
                return result
            if on_retry:
                on_retry(result.status)
            await asyncio.sleep(policy.delay(attempt))

    async def _attempt(self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float, attempt: int) -> SendResult:
        try:
            r = await self._client.post(url, headers=dict(headers), content=body, timeout=timeout_s)
        except httpx.TimeoutException:
            return SendResult(None, attempts=attempt, error=f"timed out after {timeout_s:g} s")
        except httpx.TransportError as exc:
            return SendResult(None, attempts=attempt, error=f"{type(exc).__name__}: {exc}")
        return SendResult(r.status_code, dict(r.headers), r.content, attempt)

    async def aclose(self) -> None:
        await self._client.aclose()
