"""validate: check a raw order's shape and values; normalise it."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from functions.stage import Data, Emit, Rejected, StageResult, stage

CURRENCIES = frozenset({"EUR", "USD", "GBP", "CHF", "JPY", "SEK", "PLN"})
MAX_ITEMS = 100
MAX_NOTE = 16_384


def _problem(order: Data) -> str | None:
    for key in ("order_id", "customer_id", "currency", "country", "created_at"):
        value = order.get(key)
        if not isinstance(value, str) or not value:
            return f"{key}: missing or not a non-empty string"
    if order["currency"] not in CURRENCIES:
        return f"currency: {order['currency']!r} is not one of {sorted(CURRENCIES)}"
    country = order["country"]
    if len(country) != 2 or not country.isalpha() or not country.isupper():
        return f"country: {country!r} is not an ISO 3166 alpha-2 code"
    try:
        created = datetime.fromisoformat(order["created_at"])
    except ValueError:
        return f"created_at: {order['created_at']!r} is not an ISO 8601 timestamp"
    if created.tzinfo is None:
        return "created_at: timestamp has no time zone"
    items = order.get("items")
    if not isinstance(items, list) or not items:
        return "items: missing or empty"
    if len(items) > MAX_ITEMS:
        return f"items: {len(items)} items, at most {MAX_ITEMS} allowed"
    for i, item in enumerate(items):
        problem = _item_problem(item)
        if problem:
            return f"items[{i}].{problem}"
    note = order.get("note", "")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        return f"note: not a string of at most {MAX_NOTE} characters"
    return None


def _item_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "item: not an object"
    if not isinstance(item.get("sku"), str) or not item["sku"]:
        return "sku: missing or not a non-empty string"
    qty = item.get("qty")
    if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
        return f"qty: {qty!r} is not a positive integer"
    price = item.get("price")
    if not isinstance(price, (int, float)) or isinstance(price, bool) or not math.isfinite(price) or price < 0:
        return f"price: {price!r} is not a non-negative number"
    return None


@stage("validate")
def validate(order: Data) -> StageResult:
    """Reject malformed orders with a reason; drop synthetic test orders; pass the rest on."""
    problem = _problem(order)
    if problem:
        return Rejected(problem)
    if order.get("test") is True:
        return None
    return Emit(
        {
            "order_id": order["order_id"],
            "customer_id": order["customer_id"],
            "items": [{"sku": i["sku"], "qty": i["qty"], "price": float(i["price"])} for i in order["items"]],
            "currency": order["currency"],
            "country": order["country"],
            "created_at": order["created_at"],
            "note": order.get("note", ""),
        }
    )
