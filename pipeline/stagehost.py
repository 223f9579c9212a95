"""How one stage answers a CloudEvent over HTTP — the semantics both serverless adapters share.

Pure and synchronous: headers and body in, an :class:`HttpReply` out. The Knative service
(ASGI) and the OpenFaaS handler wrap it; each applies the stage's emulated latency itself.

| outcome                          | reply                                       |
|----------------------------------|---------------------------------------------|
| output event                     | 200, binary-mode CloudEvent of the next type|
| filtered                         | 202, no body                                |
| rejected by the stage            | 422, JSON {"error": reason}                 |
| not a CloudEvent / malformed     | 400, JSON {"error": ...}                    |
| wrong event type                 | 400, JSON {"error": ...}                    |
| body over the size limit         | 413, JSON {"error": ...}                    |
| stage raised                     | 500, JSON {"error": ...}                    |
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from functions import STAGES, Emit, Rejected, StageFunction
from pipeline import events
from pipeline.topology import Stage

MAX_BODY = 1 << 20
# The outcomes for which the stage function ran, and so its emulated downstream call was made: both
# serverless adapters pay the stage's latency on exactly these.
RAN = frozenset({200, 202, 422, 500})
log = logging.getLogger("lagduel.stage")


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def ran(self) -> bool:
        """The stage function ran (the emulated latency applies)."""
        return self.status in RAN

    @property
    def outcome(self) -> str:
        """A label for metrics: emitted, filtered, rejected, bad_request, error."""
        return {200: "emitted", 202: "filtered", 422: "rejected", 500: "error"}.get(self.status, "bad_request")


def error_reply(status: int, message: str) -> HttpReply:
    return HttpReply(status, {"content-type": "application/json"}, orjson.dumps({"error": message}))


class StageHost:
    """Serves one stage function: CloudEvent in, the stage's outcome out."""

    def __init__(self, stage: Stage, source: str | None = None, max_body: int = MAX_BODY,
                 function: StageFunction | None = None) -> None:
        self.stage = stage
        self.source = source or f"/lagduel/{stage.name}"
        self.max_body = max_body
        self._fn = function or STAGES[stage.function]

    def respond(self, headers: Mapping[str, str], body: bytes) -> HttpReply:
        if len(body) > self.max_body:
            return error_reply(413, f"body of {len(body)} bytes exceeds the limit of {self.max_body} bytes")
        try:
            event = events.from_http(headers, body)
            data = events.data_of(event)
        except events.EventError as exc:
            return error_reply(400, str(exc))
        if event.get_type() != self.stage.input.type:
            return error_reply(400, f"stage {self.stage.name} takes events of type {self.stage.input.type!r}, "
                                    f"not {event.get_type()!r}")
        try:
            result = self._fn(data)
        except Exception as exc:  # a stage bug must not take the server down: 5xx, retried by the caller
            log.exception("stage %s failed on event %s", self.stage.name, event.get_id())
            return error_reply(500, f"stage {self.stage.name} failed: {type(exc).__name__}: {exc}")
        if result is None:
            return HttpReply(202)
        if isinstance(result, Rejected):
            return error_reply(422, result.reason)
        if isinstance(result, Emit):
            reply = events.successor(event, self.stage.output.type, self.source, result.data)
            reply_headers, reply_body = events.to_http(reply, "binary")
            return HttpReply(200, reply_headers, reply_body)
        return error_reply(500, f"stage {self.stage.name} returned {type(result).__name__}, not Emit/Rejected/None")
