"""Small ASGI pieces shared by the hot-path HTTP handlers that skip a framework's per-request objects."""

from __future__ import annotations

from starlette.types import Receive


class BodyTooLarge(Exception):
    """The request body outgrew the limit; `size` is what had arrived when reading stopped."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"request body over the limit of {limit} bytes ({size} bytes read)")
        self.size, self.limit = size, limit


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body, or None when the client went away before sending it; over `limit` bytes it
    stops buffering and raises BodyTooLarge (answer 413)."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyTooLarge(size, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
