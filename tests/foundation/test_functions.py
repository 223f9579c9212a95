"""The stage functions, called directly: pure data in, Emit / Rejected / None out."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions import STAGES, Emit, Rejected
from functions.enrich import FX_TO_EUR, region_of, tier_of
from functions.score import fraud_score
from pipeline.orders import OrderFactory, OrderRecords, order_event
from pipeline.topology import load_topology

validate, enrich, score = STAGES["validate"], STAGES["enrich"], STAGES["score"]
GOOD = {
    "order_id": "o-1", "customer_id": "c-7", "currency": "USD", "country": "US",
    "created_at": "2026-03-01T10:00:00+00:00", "items": [{"sku": "a", "qty": 2, "price": 10.5}, {"sku": "b", "qty": 1, "price": 4}],
}


def test_validate_passes_a_good_order_normalised() -> None:
    out = validate(GOOD)
    assert isinstance(out, Emit)
    assert out.data["items"][1]["price"] == 4.0 and isinstance(out.data["items"][1]["price"], float)


@pytest.mark.parametrize(("mutate", "named"), [
    (lambda o: o.pop("order_id"), "order_id"),
    (lambda o: o.__setitem__("currency", "XYZ"), "currency"),
    (lambda o: o.__setitem__("country", "usa"), "country"),
    (lambda o: o.__setitem__("created_at", "2026-03-01T10:00:00"), "created_at"),
    (lambda o: o.__setitem__("items", []), "items"),
    (lambda o: o["items"][0].__setitem__("qty", -1), "items[0].qty"),
    (lambda o: o["items"][1].__setitem__("price", "free"), "items[1].price"),
    (lambda o: o["items"][0].__setitem__("qty", True), "items[0].qty"),
    (lambda o: o["items"][0].__setitem__("price", float("nan")), "items[0].price"),
    (lambda o: o["items"][1].__setitem__("price", float("inf")), "items[1].price"),
])
def test_validate_rejects_with_a_reason_naming_the_field(mutate, named: str) -> None:
    order = copy.deepcopy(GOOD)
    mutate(order)
    out = validate(order)
    assert isinstance(out, Rejected)
    assert out.reason.startswith(named + ":")


def test_validate_filters_test_orders() -> None:
    assert validate({**GOOD, "test": True}) is None


def test_enrich_adds_region_fx_total_and_tier() -> None:
    out = enrich(validate(GOOD).data)  # type: ignore[union-attr]
    assert isinstance(out, Emit)
    assert out.data["region"] == "amer"
    assert out.data["total"] == 25.0
    assert out.data["total_eur"] == round(25.0 * FX_TO_EUR["USD"], 2)
    assert out.data["tier"] == tier_of("c-7")


def test_tier_is_stable_and_region_falls_back() -> None:
    assert tier_of("c-123") == tier_of("c-123")
    assert region_of("ZZ") == "other"


def test_score_is_deterministic_and_bounded() -> None:
    enriched = enrich(validate(GOOD).data).data  # type: ignore[union-attr]
    a, b = score(enriched), score(dict(enriched))
    assert isinstance(a, Emit) and a == b
    assert 0.0 <= a.data["fraud_score"] <= 1.0
    assert a.data["verdict"] in {"accept", "review", "block"}


def test_large_orders_from_risky_regions_score_higher() -> None:
    base = enrich(validate(GOOD).data).data  # type: ignore[union-attr]
    risky = {**base, "total_eur": 4_900.0, "region": "other"}
    assert fraud_score(risky) > fraud_score(base)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**16), seq=st.integers(0, 10**6))
def test_generated_orders_are_valid_exactly_when_the_factory_says(seed: int, seq: int) -> None:
    order, valid = OrderFactory(seed, invalid_share=0.5).order(seq)
    out = validate(order)
    assert isinstance(out, Emit) == valid and isinstance(out, Rejected) == (not valid)
    if valid:  # the whole chain handles every valid order
        assert isinstance(score(enrich(out.data).data), Emit)  # type: ignore[union-attr]


def test_stage_functions_never_raise_on_garbage() -> None:
    for garbage in ({}, {"items": "x"}, {**GOOD, "items": [None]}, {**GOOD, "created_at": 5}):
        assert isinstance(validate(garbage), Rejected)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(-2**40, 2**40), seqs=st.lists(st.integers(0, 2**40), min_size=1, max_size=20),
       share=st.sampled_from([0.0, 0.1, 0.5, 1.0]))
def test_orders_in_bulk_are_the_orders_one_by_one_and_valid_says_which(seed: int, seqs: list[int], share: float) -> None:
    factory = OrderFactory(seed, invalid_share=share, record_bytes=512)
    bulk = list(factory.orders(np.array(seqs, dtype=np.uint64)))
    assert [s for s, _, _ in bulk] == seqs
    assert [(d, v) for _, d, v in bulk] == [factory.order(s) for s in seqs]
    assert [v for _, _, v in bulk] == [factory.valid(s) for s in seqs]


def test_orders_depend_on_the_seed_and_hold_the_invalid_share() -> None:
    a, b = OrderFactory(1, invalid_share=0.1), OrderFactory(2, invalid_share=0.1)
    assert [a.order(s)[0]["items"] for s in range(50)] != [b.order(s)[0]["items"] for s in range(50)]
    invalid = sum(not a.valid(s) for s in range(20_000)) / 20_000
    assert 0.09 < invalid < 0.11
    assert len({a.order(s)[0].get("customer_id") for s in range(20_000)}) > 8_000  # spread over the customers


@settings(max_examples=50, deadline=None)
@given(seqs=st.lists(st.integers(0, 10**9), min_size=1, max_size=10), intended=st.integers(10**15, 2 * 10**15),
       whole_second=st.booleans(), record_bytes=st.sampled_from([None, 512, 2048]))
def test_load_records_are_the_order_events(seqs: list[int], intended: int, whole_second: bool,
                                           record_bytes: int | None) -> None:
    topology = load_topology()
    factory = OrderFactory(5, invalid_share=0.3, record_bytes=record_bytes)
    records = OrderRecords(topology, "run-a", factory)
    intended -= intended % 1_000_000 if whole_second else 0
    for seq, (key, value, valid) in zip(seqs, records.encode(np.array(seqs))):
        data, ok = factory.order(seq)
        ref = order_event(topology, "run-a", seq, intended, data, record_bytes)
        assert (key, value, records.headers(seq, key, intended), valid) == (ref.key, ref.value, ref.headers, ok)
        if record_bytes == 2048:  # padded to size: the value carries the padding
            assert len(value) > 1500
