"""enrich: region, FX-converted total and customer tier, from static tables."""

from __future__ import annotations

import zlib

from functions.stage import Data, Emit, StageResult, stage

# Units of EUR per unit of currency: a static table, so results are reproducible.
FX_TO_EUR = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "CHF": 1.05, "JPY": 0.0062, "SEK": 0.088, "PLN": 0.23}

REGIONS = {
    "emea": frozenset("AT BE CH CZ DE DK ES FI FR GB IE IT NL NO PL PT SE ZA AE".split()),
    "amer": frozenset("US CA MX BR AR CL CO".split()),
    "apac": frozenset("JP CN KR IN AU NZ SG HK TW".split()),
}
TIERS = ("bronze", "bronze", "bronze", "silver", "silver", "gold", "platinum")


def region_of(country: str) -> str:
    return next((name for name, members in REGIONS.items() if country in members), "other")


def tier_of(customer_id: str) -> str:
    # crc32 rather than hash(): stable across processes and runs.
    return TIERS[zlib.crc32(customer_id.encode()) % len(TIERS)]


@stage("enrich")
def enrich(order: Data) -> StageResult:
    total = round(sum(i["qty"] * i["price"] for i in order["items"]), 2)
    return Emit(
        {
            **order,
            "region": region_of(order["country"]),
            "total": total,
            "total_eur": round(total * FX_TO_EUR[order["currency"]], 2),
            "tier": tier_of(order["customer_id"]),
        }
    )
