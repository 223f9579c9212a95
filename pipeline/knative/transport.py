"""How requests reach an emulated Knative Service: an httpx transport in front of the revisions."""

from __future__ import annotations

import asyncio

import httpx

from pipeline.knative.revision import Revision


class ServingTransport(httpx.AsyncBaseTransport):
    """Routes http://<service>.<namespace>.svc.cluster.local/ to the emulated revision of that service."""

    def __init__(self, revisions: dict[str, Revision]) -> None:
        self.revisions = revisions

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        name = request.url.host.split(".", 1)[0]
        revision = self.revisions.get(name)
        if revision is None:
            return httpx.Response(404, content=f"no Knative Service {name!r}".encode(), request=request)
        body = await request.aread()
        timeout = (request.extensions.get("timeout") or {}).get("read")
        try:
            reply = await asyncio.wait_for(revision.handle(dict(request.headers.items()), body), timeout)
        except asyncio.TimeoutError:
            raise httpx.ReadTimeout(f"no reply within {timeout} s", request=request) from None
        return httpx.Response(reply.status, headers=reply.headers, content=reply.body, request=request)
