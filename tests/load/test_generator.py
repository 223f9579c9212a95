from __future__ import annotations

import numpy as np
import pytest

from load import histograms
from load.generator import run_load
from pipeline.kafka.offsets import OffsetReader
from load.producer import LoadPlan, _Lateness
from load.profiles import Constant
from pipeline.kafka import KafkaSettings
from pipeline.topology import Topology

pytestmark = pytest.mark.kafka


def test_holds_a_target_rate(fresh_topology: Topology, kafka_settings: KafkaSettings) -> None:
    plan = LoadPlan(fresh_topology, "gen-ok", Constant(400, 4), seed=3, invalid_share=0.2, record_bytes=512)
    r = run_load(plan, kafka_settings)
    assert r.scheduled == 1600 and r.sent == 1600 and r.acked == 1600 and r.failed == 0
    # Open loop: the last event is due at 3.9975 s; allow scheduler jitter, not a slower rate.
    assert 3.99 <= r.elapsed_s <= 4.3
    assert abs(r.achieved_rate - 400) / 400 < 0.05
    assert not r.behind, r.verdict
    assert 200 < r.invalid < 450 and r.valid + r.invalid == 1600
    ends = OffsetReader(kafka_settings).read([fresh_topology.input.topic], []).log_ends[fresh_topology.input.topic]
    assert sum(ends.values()) == 1600
    assert sum(1 for v in ends.values() if v) >= 4  # keyed by customer: spread over the partitions


def test_reports_lateness_when_it_cannot_keep_up(fresh_topology: Topology, kafka_settings: KafkaSettings) -> None:
    # 1,000,000 ev/s for 0.1 s is beyond two Python producers: they must send late, all of it, and say so.
    plan = LoadPlan(fresh_topology, "gen-late", Constant(1_000_000, 0.1), workers=2)
    r = run_load(plan, kafka_settings)
    assert r.sent == r.scheduled == 100_000 and r.acked == 100_000
    assert r.behind and "BEHIND SCHEDULE" in r.verdict
    assert r.lateness_ms["p99"] > plan.max_p99_lateness_ms
    assert r.elapsed_s > r.duration_s


def test_batched_lateness_fills_the_histogram_exactly_as_one_by_one() -> None:
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.integers(0, 3000, 5000), rng.integers(0, 10**10, 5000), [0, 2047, 2048, 10**12]])
    one_by_one = histograms.new_histogram()
    for v in values.tolist():
        histograms.record(one_by_one, v)
    batched = _Lateness(late_us=25_000)
    batched.pending.extend(values.tolist())
    batched.flush()
    assert histograms.encode(batched.histogram) == histograms.encode(one_by_one)
    assert batched.histogram.get_max_value() == one_by_one.get_max_value()
    assert batched.histogram.get_min_value() == one_by_one.get_min_value()
    assert batched.late == int(np.count_nonzero(values > 25_000))
