"""HdrHistograms of microseconds: one shape everywhere, merged (never averaged) across processes."""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 24 * 3600 * 1_000_000  # a day: e2e under a long lag still fits
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record(h: HdrHistogram, value_us: int) -> None:
    """Record, clamped into the trackable range (a negative e2e is counted by the caller, not here)."""
    h.record_value(min(max(int(value_us), 0), HIGHEST_US))


def encode(h: HdrHistogram) -> str:
    """The standard compressed, base64 HdrHistogram encoding (readable by every HdrHistogram port)."""
    return h.encode().decode("ascii")


def decode(text: str | bytes) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii") if isinstance(text, str) else text)


def merged(histograms: Iterable[HdrHistogram | str]) -> HdrHistogram:
    """One histogram holding every recorded value (scylla-cluster-tests #3133: merge, don't average)."""
    out = new_histogram()
    for h in histograms:
        out.add(decode(h) if isinstance(h, str) else h)
    return out


def summary_ms(h: HdrHistogram) -> dict[str, float | int | None]:
    """count, p50…p99.9, max and mean in milliseconds (None when empty)."""
    n = h.get_total_count()
    out: dict[str, float | int | None] = {"count": n}
    for p in PERCENTILES:
        out[f"p{p:g}"] = h.get_value_at_percentile(p) / 1000.0 if n else None
    out["max"] = h.get_max_value() / 1000.0 if n else None
    out["mean"] = round(h.get_mean_value() / 1000.0, 3) if n else None
    return out


def share_above(h: HdrHistogram, threshold_us: int) -> float:
    """Fraction of recorded values above the threshold."""
    n = h.get_total_count()
    if not n:
        return 0.0
    below = sum(item.count_added_in_this_iter_step for item in h.get_recorded_iterator()
                if item.value_iterated_to <= threshold_us)
    return max(n - below, 0) / n
