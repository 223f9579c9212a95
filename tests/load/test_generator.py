from __future__ import annotations

import pytest

from load.generator import run_load
from pipeline.kafka.offsets import OffsetReader
from load.producer import LoadPlan
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
    # 50,000 ev/s for 0.4 s is beyond one Python producer: it must send late, all of it, and say so.
    plan = LoadPlan(fresh_topology, "gen-late", Constant(50_000, 0.4), workers=2)
    r = run_load(plan, kafka_settings)
    assert r.sent == r.scheduled == 20_000 and r.acked == 20_000
    assert r.behind and "BEHIND SCHEDULE" in r.verdict
    assert r.lateness_ms["p99"] > plan.max_p99_lateness_ms
    assert r.elapsed_s > r.duration_s
