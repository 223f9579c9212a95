"""The stage functions, called directly: pure data in, Emit / Rejected / None out."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions import STAGES, Emit, Rejected
from functions.enrich import FX_TO_EUR, region_of, tier_of
from functions.score import fraud_score
from pipeline.orders import OrderFactory

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
