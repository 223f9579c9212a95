"""The shared HTTP semantics of a stage, without a server: every outcome and every bad input."""

from __future__ import annotations

import orjson
import pytest

from pipeline import events
from pipeline.stagehost import StageHost
from pipeline.topology import load_topology

from tests.foundation.test_functions import GOOD


@pytest.fixture
def host() -> StageHost:
    return StageHost(load_topology().stage("validate"))


def request(data: dict, type_: str = "dev.lagduel.order.placed", mode: events.Mode = "binary") -> tuple[dict, bytes]:
    ev = events.new_event(type_, "/t", data, key="c-1", bookkeeping=events.Bookkeeping("r", 3, 99))
    return events.to_http(ev, mode)


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_output_event_is_a_binary_reply_of_the_next_type(host: StageHost, mode: events.Mode) -> None:
    reply = host.respond(*request(GOOD, mode=mode))
    assert reply.status == 200 and reply.outcome == "emitted"
    assert "ce-specversion" in reply.headers  # binary mode
    out = events.from_http(reply.headers, reply.body)
    assert out.get_type() == "dev.lagduel.order.validated"
    assert events.bookkeeping_of(out) == events.Bookkeeping("r", 3, 99)


def test_filtered_is_202_without_body(host: StageHost) -> None:
    reply = host.respond(*request({**GOOD, "test": True}))
    assert (reply.status, reply.body) == (202, b"")


def test_rejection_is_422_with_the_reason(host: StageHost) -> None:
    reply = host.respond(*request({**GOOD, "currency": "XXX"}))
    assert reply.status == 422
    assert orjson.loads(reply.body)["error"].startswith("currency:")


@pytest.mark.parametrize(("headers", "body", "status", "says"), [
    ({"content-type": "application/json"}, b"{}", 400, "not a CloudEvent"),
    ({"content-type": "application/cloudevents+json"}, b"{oops", 400, "malformed"),
])
def test_bad_requests_are_4xx_with_a_message(host: StageHost, headers: dict, body: bytes, status: int, says: str) -> None:
    reply = host.respond(headers, body)
    assert reply.status == status and says in orjson.loads(reply.body)["error"]


def test_wrong_type_and_oversize(host: StageHost) -> None:
    reply = host.respond(*request(GOOD, type_="dev.lagduel.order.scored"))
    assert reply.status == 400 and "takes events of type" in orjson.loads(reply.body)["error"]
    small = StageHost(load_topology().stage("validate"), max_body=100)
    assert small.respond(*request(GOOD)).status == 413


def test_stage_exception_is_500_and_the_host_survives() -> None:
    def broken(_: object) -> None:
        raise KeyError("boom")

    host = StageHost(load_topology().stage("validate"), function=broken)
    reply = host.respond(*request(GOOD))
    assert reply.status == 500 and "KeyError" in orjson.loads(reply.body)["error"]
    assert host.respond(*request(GOOD)).status == 500  # still answering
