"""score: a deterministic fraud score in [0, 1] with a verdict.

The slow downstream call this stage stands for is emulated by whatever hosts it, for the
latency the topology gives the stage (`latency_ms`), so the function itself stays pure.
"""

from __future__ import annotations

from functions.stage import Data, Emit, StageResult, stage

TIER_RISK = {"bronze": 0.15, "silver": 0.1, "gold": 0.05, "platinum": 0.0}
REGION_RISK = {"emea": 0.05, "amer": 0.1, "apac": 0.1, "other": 0.3}
REVIEW_AT = 0.5
BLOCK_AT = 0.8


def fraud_score(order: Data) -> float:
    amount = min(order["total_eur"] / 5_000.0, 1.0) * 0.45
    quantity = min(sum(i["qty"] for i in order["items"]) / 50.0, 1.0) * 0.15
    mismatch = 0.15 if order["region"] == "other" or order["currency"] == "JPY" and order["country"] != "JP" else 0.0
    risk = amount + quantity + mismatch + TIER_RISK[order["tier"]] + REGION_RISK[order["region"]]
    return round(min(risk, 1.0), 4)


@stage("score")
def score(order: Data) -> StageResult:
    value = fraud_score(order)
    verdict = "block" if value >= BLOCK_AT else "review" if value >= REVIEW_AT else "accept"
    return Emit({**order, "fraud_score": value, "verdict": verdict})
