"""Binary-mode CloudEvents moved between Kafka and HTTP header by header, without a full SDK parse.

Both bindings put every attribute in a header of its own (Kafka `ce_<name>`, HTTP `ce-<name>`) and the
data in the body, so a dispatcher that only forwards an event needs no parse: it renames the headers
(HTTP values percent-encoded as the HTTP binding asks for space, `"`, `%` and anything outside printable
ASCII). Events are created and validated by the SDK where they are made (the stage host, the load
generator); records that are not binary mode (structured, or not CloudEvents) go through the SDK.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import unquote

from pipeline.events import KafkaRecord, encode_header_value

_REQUIRED = ("ce-specversion", "ce-id", "ce-source", "ce-type")


def http_headers_of_record(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str] | None:
    """The HTTP headers of a binary-mode Kafka record, or None when the record is not binary mode."""
    out: dict[str, str] = {}
    binary = False
    for name, raw in headers or ():
        if raw is None:
            continue
        if name.startswith("ce_"):
            value = raw.decode("utf-8")
            out["ce-" + name[3:]] = encode_header_value(value)
            binary = binary or name == "ce_specversion"
        elif name == "content-type":
            out["content-type"] = raw.decode("latin-1")
    return out if binary else None


def record_of_http(headers: Mapping[str, str], body: bytes) -> KafkaRecord | None:
    """A binary-mode HTTP reply (lower-cased header names) as a Kafka record; None when it is not binary
    mode or lacks a required attribute. The key is the `partitionkey` extension, as the SDK's binding does."""
    if any(h not in headers for h in _REQUIRED):
        return None
    out: list[tuple[str, bytes]] = []
    key: bytes | None = None
    for name, value in headers.items():
        if name.startswith("ce-"):
            decoded = unquote(value) if "%" in value else value
            raw = decoded.encode("utf-8")
            out.append(("ce_" + name[3:], raw))
            if name == "ce-partitionkey":
                key = raw
        elif name == "content-type":
            out.append(("content-type", value.encode("latin-1")))
    return KafkaRecord(key, body, out)


def header(headers: Iterable[tuple[str, bytes | None]] | None, name: str) -> bytes | None:
    for n, v in headers or ():
        if n == name:
            return v
    return None
