"""CloudEvents 1.0 for lagduel: the only module that imports the cloudevents SDK.

Bindings: CloudEvent <-> Kafka record (binary `ce_` headers, or structured) and
CloudEvent <-> HTTP (binary or structured). The load bookkeeping travels as extension
attributes and survives every hop: `ldrun` (run id), `ldseq` (sequence number) and
`ldintended` (intended send time, Unix epoch microseconds).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, unquote

import orjson
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

__all__ = [
    "Bookkeeping", "CloudEvent", "EventError", "KafkaRecord", "Mode",
    "new_event", "successor", "dead_letter", "bookkeeping_of", "data_of", "rejection_reason",
    "to_kafka", "from_kafka", "poison_record", "is_cloudevent_record", "to_http", "from_http", "encode_header_value",
    "BinaryRecordTemplate",
]

Mode = Literal["binary", "structured"]
RUN, SEQ, INTENDED = "ldrun", "ldseq", "ldintended"
STAGE, REASON = "ldstage", "ldreason"
PARTITIONKEY = "partitionkey"
_FORMAT = JSONFormat()
_JSON_TYPE = JSONFormat.JSON_CONTENT_TYPE_PATTERN
_BOOKKEEPING = (RUN, SEQ, INTENDED, PARTITIONKEY)


class EventError(ValueError):
    """Input that is not a valid CloudEvent; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Bookkeeping:
    run_id: str
    seq: int
    intended_us: int

    def extensions(self) -> dict[str, str]:
        return {RUN: self.run_id, SEQ: str(self.seq), INTENDED: str(self.intended_us)}


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """A Kafka record as the clients take it: key, value and a list of headers."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def new_event(
    type: str, source: str, data: Mapping[str, Any], *, id: str | None = None,
    key: str | None = None, bookkeeping: Bookkeeping | None = None, **extensions: str,
) -> CloudEvent:
    attrs: dict[str, Any] = {"type": type, "source": source, "datacontenttype": "application/json"}
    if id:
        attrs["id"] = id
    if key:
        attrs[PARTITIONKEY] = key
    if bookkeeping:
        attrs.update(bookkeeping.extensions())
    attrs.update(extensions)
    return _event(attrs, dict(data))


def successor(event: CloudEvent, type: str, source: str, data: Mapping[str, Any]) -> CloudEvent:
    """The next stage's event: new type, source and id; the bookkeeping and partition key carried over."""
    carried = {k: v for k in _BOOKKEEPING if (v := event.get_extension(k)) is not None}
    attrs = {"type": type, "source": source, "datacontenttype": "application/json", **carried}
    return _event(attrs, dict(data))


def dead_letter(event: CloudEvent, stage: str, reason: str) -> CloudEvent:
    """The event as it goes to the dead-letter topic: unchanged, plus where and why it failed."""
    attrs = dict(event.get_attributes())
    attrs[STAGE] = stage
    attrs[REASON] = reason[:1024]
    return _event(attrs, event.get_data())


def _event(attrs: dict[str, Any], data: Any) -> CloudEvent:
    try:
        return CloudEvent(attrs, data)
    except BaseCloudEventException as exc:
        raise EventError(f"invalid CloudEvent attributes: {exc}") from None


def bookkeeping_of(event: CloudEvent) -> Bookkeeping | None:
    """The load bookkeeping, or None for events the load generator did not make."""
    run, seq, intended = (event.get_extension(k) for k in (RUN, SEQ, INTENDED))
    if run is None or seq is None or intended is None:
        return None
    try:
        return Bookkeeping(str(run), int(seq), int(intended))
    except (TypeError, ValueError):
        return None


def data_of(event: CloudEvent) -> dict[str, Any]:
    """The event's data as a JSON object, whatever form the binding left it in."""
    data = event.get_data()
    if isinstance(data, (bytes, str)):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise EventError(f"data is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EventError(f"data must be a JSON object, got {type(data).__name__}")
    return data


def rejection_reason(event: CloudEvent) -> str | None:
    """Why an event was dead-lettered: our `ldreason`, or the body a Knative dispatcher put in `knativeerrordata`."""
    reason = event.get_extension(REASON)
    if reason is not None:
        return str(reason)
    raw = event.get_extension("knativeerrordata")
    if raw is None:
        code = event.get_extension("knativeerrorcode")
        return f"HTTP {code}" if code is not None else None
    try:
        body = base64.b64decode(str(raw))
    except (binascii.Error, ValueError):
        return str(raw)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")
    return str(doc.get("error", doc)) if isinstance(doc, dict) else str(doc)


# Both bindings' binary mode: attribute values as text, the data as bytes, as the SDK writes and reads them.

def _attribute_text(value: Any) -> str:
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return str(value)


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:  # RFC 3339 forms fromisoformat lacks: the SDK's own parser decides
        return ce_http._decode_header_value("time", text)  # type: ignore[no-any-return]


def _write_data(data: Any, ctype: str | None) -> bytes:
    if isinstance(data, dict) and (ctype is None or _JSON_TYPE.match(ctype)):
        try:
            return orjson.dumps(data)
        except TypeError:  # a value orjson does not take: the SDK's own encoder decides
            pass
    return _FORMAT.write_data(data, ctype)


def _read_data(body: bytes, ctype: str | None) -> Any:
    if not body:
        return None
    ctype = ctype or JSONFormat.DEFAULT_CONTENT_TYPE
    if _JSON_TYPE.match(ctype):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:  # not JSON after all (or beyond orjson): the SDK reads it
            pass
    return _FORMAT.read_data(body, ctype)


# Kafka ---------------------------------------------------------------------

# Binary mode maps attribute by attribute (Kafka binding §3.2): `ce_<name>` headers holding the value as UTF-8
# (no percent-encoding, unlike HTTP), `content-type` for datacontenttype, the data as the value, the
# `partitionkey` extension as the record key. Done here header by header as the SDK's binding does it, without
# its dateutil isoparse() and json module calls (a test holds both to the same events); the SDK's CloudEvent
# still makes and validates every event.

def to_kafka(event: CloudEvent, mode: Mode = "binary") -> KafkaRecord:
    if mode != "binary":
        msg = ce_kafka.to_structured(event, _FORMAT)
        key = msg.key.encode() if isinstance(msg.key, str) else msg.key
        return KafkaRecord(key, msg.value, list(msg.headers.items()))
    headers: list[tuple[str, bytes]] = []
    for name, value in event.get_attributes().items():
        if value is None:
            continue
        if name == "datacontenttype":
            headers.append(("content-type", str(value).encode()))
        else:
            headers.append(("ce_" + name, _attribute_text(value).encode()))
    key = event.get_extension(PARTITIONKEY)
    key_bytes = None if key is None else key if isinstance(key, bytes) else str(key).encode()
    return KafkaRecord(key_bytes, _write_data(event.get_data(), event.get_datacontenttype()), headers)


def _header_dict(headers: Iterable[tuple[str, bytes | str | None]] | None) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, value in headers or ():
        if value is None:
            continue
        out[name.lower()] = value.encode() if isinstance(value, str) else value
    return out


def is_cloudevent_record(headers: Iterable[tuple[str, bytes | str | None]] | None) -> bool:
    """A record is a CloudEvent if it is binary (`ce_specversion`) or structured (CE content type)."""
    h = _header_dict(headers)
    return "ce_specversion" in h or h.get("content-type", b"").startswith(b"application/cloudevents")


def from_kafka(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | str | None]] | None) -> CloudEvent:
    """The record's CloudEvent; any malformed input raises EventError (never another exception type)."""
    h = _header_dict(headers)
    try:
        if "ce_specversion" in h:
            return _binary_record_event(h, key, value or b"")
        if h.get("content-type", b"").startswith(b"application/cloudevents"):
            _check_structured(value or b"")
            msg = ce_kafka.KafkaMessage(headers=h, key=key, value=value or b"")
            return ce_kafka.from_structured(msg, _FORMAT, CloudEvent)
    except EventError:
        raise
    except Exception as exc:  # the SDK raises whatever its parser meets (AttributeError on a JSON array, ...)
        raise EventError(f"malformed CloudEvent record: {type(exc).__name__}: {exc}") from None
    raise EventError("record is not a CloudEvent (no ce_specversion header, no structured content type)")


def _binary_record_event(h: Mapping[str, bytes], key: bytes | None, value: bytes) -> CloudEvent:
    """A binary-mode record's event (header names lower-cased), mapped as the SDK's binding maps it: the record
    key, when there is one, is the partitionkey extension."""
    attrs: dict[str, Any] = {}
    for name, raw in h.items():
        if name.startswith("ce_"):
            attr, text = name[3:], raw.decode()
            attrs[attr] = _parse_time(text) if attr == "time" else text
        elif name == "content-type":
            attrs["datacontenttype"] = raw.decode()
    if key is not None:
        attrs[PARTITIONKEY] = key.decode()
    return CloudEvent(attrs, _read_data(value, attrs.get("datacontenttype")))


def _check_structured(body: bytes) -> None:
    """A structured CloudEvent is a JSON object with `specversion` 1.0 (the SDK assumes 1.0 when it is absent)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"malformed CloudEvent: structured body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise EventError(f"malformed CloudEvent: structured body must be a JSON object, got {type(doc).__name__}")
    if doc.get("specversion") != "1.0":
        raise EventError(f"malformed CloudEvent: specversion is {doc.get('specversion')!r}, not '1.0'")


def poison_record(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | str | None]] | None,
                  stage: str, reason: str, max_value: int = 64 * 1024) -> KafkaRecord:
    """The dead letter of a record that could not be handled as an event (undecodable, too large to produce):
    its original headers (the bookkeeping of a binary event included), key and bytes, at most `max_value`
    of them, plus `ldstage`/`ldreason` headers (`ce_`-prefixed extensions when the record is a binary
    CloudEvent, so it reads back as one); the dead letter itself always fits the broker's limit."""
    raw = value or b""
    kept = [(n, v if isinstance(v, bytes) else v.encode()) for n, v in headers or () if v is not None]
    # A binary CloudEvent stays one, so the dead letter still carries its bookkeeping: the reason as extensions.
    prefix = "ce_" if any(n == "ce_specversion" for n, _ in kept) else ""
    ours = {prefix + STAGE, prefix + REASON, prefix + "ldtruncated"}
    kept = [(n, v) for n, v in kept if n not in ours and len(v) <= 4096][:64]
    kept += [(prefix + STAGE, stage.encode()), (prefix + REASON, reason[:1024].encode())]
    if len(raw) > max_value:
        kept.append((prefix + "ldtruncated", b"%d" % len(raw)))
    return KafkaRecord(key if key is None or len(key) <= 4096 else key[:4096], raw[:max_value], kept)


class BinaryRecordTemplate:
    """Binary-mode records of one event type, encoded once by the SDK and then patched per event.

    For producers that must emit tens of thousands of events a second: the per-event attributes
    (id, time, partition key, bookkeeping) and the JSON data are swapped into headers the SDK
    wrote for a sample event; the SDK reads the result back as the same event (a test holds it to that).
    """

    _PER_EVENT = ("ce_id", "ce_time", "ce_partitionkey", "ce_ldrun", "ce_ldseq", "ce_ldintended")

    def __init__(self, type: str, source: str) -> None:
        sample = new_event(type, source, {}, id="x", key="x", bookkeeping=Bookkeeping("x", 0, 0))
        self._fixed = [(k, v) for k, v in to_kafka(sample).headers if k not in self._PER_EVENT]

    def record(self, id: str, time_iso: str, key: str, book: Bookkeeping, data: Mapping[str, Any]) -> KafkaRecord:
        headers = [
            *self._fixed, ("ce_id", id.encode()), ("ce_time", time_iso.encode()), ("ce_partitionkey", key.encode()),
            ("ce_ldrun", book.run_id.encode()), ("ce_ldseq", b"%d" % book.seq), ("ce_ldintended", b"%d" % book.intended_us),
        ]
        return KafkaRecord(key.encode(), orjson.dumps(data), headers)


# HTTP ----------------------------------------------------------------------
#
# Binary mode maps attribute by attribute (HTTP binding §3.1.3): `ce-<name>` headers, percent-encoded
# where a value has space, `"`, `%` or anything outside printable ASCII; `content-type` for
# datacontenttype; the data as the body. The stage replicas answer every event this way, so the
# mapping is done here, header by header, as the SDK's binding does it but without its per-header
# quote()/isoparse() and json module calls (a test holds both to the same events); the SDK's
# CloudEvent still makes and validates every event.

_NEEDS_ENCODING = re.compile(r'[^\x21-\x7e]|["%]')
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


def encode_header_value(value: str) -> str:
    """An attribute value as an HTTP header value: percent-encoded only where the binding asks for it."""
    return quote(value, safe=_SAFE) if _NEEDS_ENCODING.search(value) else value




def to_http(event: CloudEvent, mode: Mode = "binary") -> tuple[dict[str, str], bytes]:
    if mode != "binary":
        msg = ce_http.to_structured(event, _FORMAT)
        return dict(msg.headers), msg.body
    headers: dict[str, str] = {}
    for name, value in event.get_attributes().items():
        if value is None:
            continue
        if name == "datacontenttype":
            headers["content-type"] = str(value)
        else:
            headers["ce-" + name] = encode_header_value(_attribute_text(value))
    return headers, _write_data(event.get_data(), headers.get("content-type"))


def _binary_event(h: Mapping[str, str], body: bytes) -> CloudEvent:
    """A binary-mode request's event (header names lower-cased), mapped as the SDK's binding maps it."""
    attrs: dict[str, Any] = {}
    for name, value in h.items():
        if name.startswith("ce-"):
            attr = name[3:]
            text = unquote(value) if "%" in value else value
            attrs[attr] = _parse_time(text) if attr == "time" else text
        elif name == "content-type":
            attrs["datacontenttype"] = value
    return CloudEvent(attrs, _read_data(body, attrs.get("datacontenttype")))


def from_http(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    h = {k.lower(): v for k, v in headers.items()}
    structured = h.get("content-type", "").startswith("application/cloudevents")
    if "ce-specversion" not in h and not structured:
        raise EventError("request is not a CloudEvent: no ce-specversion header and no application/cloudevents+json body")
    try:
        if structured:
            if "ce-specversion" not in h:
                _check_structured(body)
            return ce_http.from_http(ce_http.HTTPMessage(headers=h, body=body), _FORMAT, CloudEvent)
        return _binary_event(h, body)
    except EventError:
        raise
    except Exception as exc:  # the SDK raises whatever its parser meets (AttributeError on a JSON array, ...)
        raise EventError(f"malformed CloudEvent: {type(exc).__name__}: {exc}") from None
