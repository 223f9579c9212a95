"""Small ASGI pieces shared by the hot-path HTTP handlers that skip a framework's per-request objects."""

from __future__ import annotations

from starlette.types import Receive


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away before sending it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
