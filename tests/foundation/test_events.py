"""CloudEvents bindings through the SDK: Kafka and HTTP, binary and structured, bookkeeping intact."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import events

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
books = st.builds(events.Bookkeeping, st.text("abcdef0123456789", min_size=1, max_size=12),
                  st.integers(0, 2**40), st.integers(0, 2**62))


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=6), book=books,
       key=st.text("abc123", min_size=1, max_size=8), mode=st.sampled_from(["binary", "structured"]))
def test_kafka_round_trip(data: dict, book: events.Bookkeeping, key: str, mode: events.Mode) -> None:
    ev = events.new_event("dev.t.a", "/src", data, key=key, bookkeeping=book)
    rec = events.to_kafka(ev, mode)
    assert events.is_cloudevent_record(rec.headers)
    back = events.from_kafka(rec.key, rec.value, rec.headers)
    assert events.data_of(back) == data
    assert events.bookkeeping_of(back) == book
    assert back.get_id() == ev.get_id() and back.get_type() == "dev.t.a"
    assert rec.key == key.encode()


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=6), book=books,
       mode=st.sampled_from(["binary", "structured"]))
def test_http_round_trip_and_successor_keeps_bookkeeping(data: dict, book: events.Bookkeeping, mode: events.Mode) -> None:
    ev = events.new_event("dev.t.a", "/src", data, key="k", bookkeeping=book)
    headers, body = events.to_http(ev, mode)
    back = events.from_http(headers, body)
    assert events.data_of(back) == data
    nxt = events.successor(back, "dev.t.b", "/stage", {"x": 1})
    assert events.bookkeeping_of(nxt) == book
    assert nxt.get_extension("partitionkey") == "k" and nxt.get_id() != ev.get_id()


def test_dead_letter_carries_stage_and_reason() -> None:
    ev = events.new_event("dev.t.a", "/src", {"a": 1})
    dl = events.dead_letter(ev, "validate", "qty: -1 is not a positive integer")
    assert events.rejection_reason(dl) == "qty: -1 is not a positive integer"
    assert dl.get_extension("ldstage") == "validate"


def test_rejection_reason_from_a_knative_dispatcher_extension() -> None:
    body = base64.b64encode(b'{"error": "currency: bad"}').decode()
    ev = events.new_event("dev.t.a", "/src", {}, knativeerrordata=body, knativeerrorcode="422")
    assert events.rejection_reason(ev) == "currency: bad"


@pytest.mark.parametrize(("headers", "body", "message"), [
    ({"content-type": "application/json"}, b"{}", "not a CloudEvent"),
    ({"ce-specversion": "1.0", "ce-type": "t"}, b"{}", "malformed CloudEvent"),
    ({"content-type": "application/cloudevents+json"}, b"{not json", "malformed CloudEvent"),
    ({"content-type": "application/cloudevents+json"}, b"[]", "must be a JSON object"),
    ({"content-type": "application/cloudevents+json"}, b'"x"', "must be a JSON object"),
    ({"content-type": "application/cloudevents+json"}, b'{"type": "t", "source": "s", "id": "i"}', "specversion"),
])
def test_bad_http_input_is_an_event_error(headers: dict, body: bytes, message: str) -> None:
    with pytest.raises(events.EventError, match=message):
        events.from_http(headers, body)


@pytest.mark.parametrize("value", [b"[]", b'"x"', b"null", b"\xff", b"", b'{"specversion": "0.3", "type": "t", "source": "s", "id": "i"}',
                                   b'{"type": "t", "source": "s", "id": "i"}', b'{"specversion": "1.0", "type": 5}'])
def test_malformed_structured_record_is_only_an_event_error(value: bytes) -> None:
    with pytest.raises(events.EventError, match="malformed CloudEvent"):
        events.from_kafka(b"k", value, [("content-type", b"application/cloudevents+json")])


def test_poison_record_keeps_headers_and_truncates_the_value() -> None:
    rec = events.poison_record(b"k", b"x" * 100, [("ce_ldseq", b"7"), ("ldreason", b"old")], "source", "too large",
                               max_value=10)
    assert rec.key == b"k" and rec.value == b"x" * 10
    assert dict(rec.headers) == {"ce_ldseq": b"7", "ldstage": b"source", "ldreason": b"too large", "ldtruncated": b"100"}


def test_poison_record_of_a_binary_event_reads_back_with_its_bookkeeping_and_reason() -> None:
    book = events.Bookkeeping("run", 3, 99)
    rec = events.to_kafka(events.new_event("t.x", "/s", {"note": "x" * 500}, key="k", bookkeeping=book), "binary")
    dead = events.poison_record(rec.key, rec.value, rec.headers, "validate", "cannot produce", max_value=100)
    ev = events.from_kafka(dead.key, dead.value, dead.headers)
    assert events.bookkeeping_of(ev) == book and events.rejection_reason(ev) == "cannot produce"


def test_non_cloudevent_record_is_an_event_error() -> None:
    assert not events.is_cloudevent_record([("content-type", b"application/json")])
    with pytest.raises(events.EventError, match="not a CloudEvent"):
        events.from_kafka(b"k", b"plain", [])


def test_data_must_be_a_json_object() -> None:
    ev = events.new_event("dev.t.a", "/src", {"a": 1})
    headers, _ = events.to_http(ev)
    with pytest.raises(events.EventError, match="JSON object"):
        events.data_of(events.from_http(headers, b"[1, 2]"))


@settings(max_examples=100, deadline=None)
@given(data=st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=6), book=books,
       key=st.text("abc123-", min_size=1, max_size=8), id_=st.text("abcdef0123456789-", min_size=1, max_size=20))
def test_a_template_record_reads_back_as_the_sdk_event(data: dict, book: events.Bookkeeping, key: str, id_: str) -> None:
    template = events.BinaryRecordTemplate("dev.t.a", "/src")
    fast = template.record(id_, "2026-01-02T03:04:05.000006Z", key, book, data)
    sdk = events.to_kafka(events.new_event("dev.t.a", "/src", data, id=id_, key=key, bookkeeping=book))
    a, b = events.from_kafka(fast.key, fast.value, fast.headers), events.from_kafka(sdk.key, sdk.value, sdk.headers)
    assert {k: v for k, v in a.get_attributes().items() if k != "time"} == {k: v for k, v in b.get_attributes().items() if k != "time"}
    assert a.get_time().isoformat() == "2026-01-02T03:04:05.000006+00:00"
    assert events.data_of(a) == events.data_of(b) == data
    assert sorted(k for k, _ in fast.headers) == sorted(k for k, _ in sdk.headers) and fast.key == sdk.key


attribute_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=6) | st.none(),
       source=attribute_text, ext=attribute_text, ctype=st.sampled_from(["application/json", "text/plain", None]))
def test_binary_http_mapping_agrees_with_the_sdk_binding_both_ways(data: dict | None, source: str, ext: str,
                                                                   ctype: str | None) -> None:
    """to_http/from_http map binary mode header by header; the SDK's own binding reads and writes the same event."""
    from cloudevents.core.bindings import http as ce_http
    from cloudevents.core.formats.json import JSONFormat

    attrs = {"type": "dev.t.a", "source": source, "subject": ext, "ldrun": ext}
    if ctype:
        attrs["datacontenttype"] = ctype
    body_data = data if ctype in (None, "application/json") else (None if data is None else str(data))
    ev = events.CloudEvent(attrs, body_data)
    headers, body = events.to_http(ev)
    sdk = ce_http.to_binary(ev, JSONFormat())
    assert headers == dict(sdk.headers)  # every attribute encoded alike, percent-escapes included
    for h, b in ((headers, body), (dict(sdk.headers), sdk.body)):
        ours, theirs = events.from_http(h, b), ce_http.from_binary(ce_http.HTTPMessage(h, b), JSONFormat(), events.CloudEvent)
        assert ours.get_attributes() == theirs.get_attributes() == ev.get_attributes()
        assert ours.get_data() == theirs.get_data() == body_data


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=6) | st.none(),
       source=attribute_text, ext=attribute_text, key=st.none() | attribute_text,
       ctype=st.sampled_from(["application/json", "text/plain", None]))
def test_binary_kafka_mapping_agrees_with_the_sdk_binding_both_ways(data: dict | None, source: str, ext: str,
                                                                    key: str | None, ctype: str | None) -> None:
    """to_kafka/from_kafka map binary mode header by header; the SDK's own binding reads and writes the same event."""
    from cloudevents.core.bindings import kafka as ce_kafka
    from cloudevents.core.formats.json import JSONFormat

    attrs = {"type": "dev.t.a", "source": source, "subject": ext, "ldrun": ext,
             "time": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)}
    if ctype:
        attrs["datacontenttype"] = ctype
    if key is not None:
        attrs["partitionkey"] = key
    body_data = data if ctype in (None, "application/json") else (None if data is None else str(data))
    ev = events.CloudEvent(attrs, body_data)
    rec = events.to_kafka(ev)
    sdk = ce_kafka.to_binary(ev, JSONFormat())
    assert dict(rec.headers) == sdk.headers  # every attribute written alike
    assert rec.key == (None if sdk.key is None else sdk.key.encode())
    for k, h, v in ((rec.key, dict(rec.headers), rec.value), (rec.key, sdk.headers, sdk.value)):
        ours = events.from_kafka(k, v, list(h.items()))
        theirs = ce_kafka.from_binary(ce_kafka.KafkaMessage(h, k, v), JSONFormat(), events.CloudEvent)
        assert ours.get_attributes() == theirs.get_attributes() == ev.get_attributes()
        assert ours.get_data() == theirs.get_data() == body_data
