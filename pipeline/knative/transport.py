"""How requests reach an emulated Knative Service: an in-process route to the revisions."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlsplit

from pipeline.delivery import RouteTimeout
from pipeline.knative.revision import Revision


class ServingRouter:
    """Routes http://<service>.<namespace>.svc.cluster.local/ to the emulated revision of that service
    (its activator and queue-proxies decide which replica serves, and when)."""

    def __init__(self, revisions: dict[str, Revision]) -> None:
        self.revisions = revisions

    async def __call__(self, url: str, headers: Mapping[str, str], body: bytes,
                       timeout_s: float) -> tuple[int, dict[str, str], bytes]:
        name = (urlsplit(url).hostname or "").split(".", 1)[0]
        revision = self.revisions.get(name)
        if revision is None:
            return 404, {}, f"no Knative Service {name!r}".encode()
        try:
            async with asyncio.timeout(timeout_s):  # no task per request, as wait_for would make
                reply = await revision.handle(dict(headers), body)
        except TimeoutError:
            raise RouteTimeout(f"no reply within {timeout_s} s") from None
        return reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.body
