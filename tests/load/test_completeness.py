from __future__ import annotations

from load.completeness import Completeness, backlog, oldest_age_s
from load.sink import SinkReader
from pipeline import events
from pipeline.kafka import KafkaSettings
from pipeline.orders import OrderFactory, order_event
from pipeline.topology import load_topology


def test_counts_loss_duplication_and_reordering() -> None:
    c = Completeness()
    # seqs 0..9 sent; 3 and 7 lost; 5 duplicated; key "a" sees 4 after 6.
    for seq, key in [(0, "a"), (1, "b"), (2, "a"), (6, "a"), (4, "a"), (5, "b"), (5, "b"), (8, "b"), (9, "c")]:
        c.observe(seq, key)
    r = c.report(sent=10)
    assert r["lost"] == 2 and r["lost_examples"] == [3, 7]
    assert r["duplicated"] == 1
    assert r["out_of_order"] == 1
    assert r["accounted"] == 8 and r["unexpected"] == 0


def test_sink_accounts_records_by_bookkeeping() -> None:
    topo = load_topology()
    factory = OrderFactory(7, invalid_share=0.0)
    sink = SinkReader(KafkaSettings("unused:9092"), "out", "dlq", run_id="r1", group="g", start=1000.0)
    recs = []
    for seq in range(5):
        data, _ = factory.order(seq)
        recs.append(order_event(topo, "r1", seq, intended_us=1000_000_000 + seq * 1000, data=data))
    now = 1000.5
    for seq in (0, 1, 1, 3, 4):  # 2 lost, 1 duplicated
        sink.handle("out", recs[seq].key, recs[seq].value, recs[seq].headers, now)
    dead = events.dead_letter(events.from_kafka(recs[4].key, recs[4].value, recs[4].headers), "validate", "currency: bad")
    d = events.to_kafka(dead)
    sink.handle("dlq", d.key, d.value, d.headers, now)  # seq 4 again, via the dead-letter topic
    other = order_event(topo, "other-run", 9, 0, factory.order(9)[0])
    sink.handle("out", other.key, other.value, other.headers, now)
    sink.handle("out", b"k", b"not a cloudevent", [], now)
    sink.handle("dlq", b"k", b"[]", [("content-type", b"application/cloudevents+json")], now)  # poison: counted
    r = sink.report(sent=5)
    assert r["lost"] == 1 and r["lost_examples"] == [2]
    assert r["duplicated"] == 2
    assert r["dead_letter_reasons"] == {"currency": 1}
    assert r["foreign"] == 3
    assert r["e2e_ms"]["count"] == 6
    assert 495 <= r["e2e_ms"]["max"] <= 501  # 0.5 s minus the seq offsets


def test_misrouted_late_and_the_watermark() -> None:
    c = Completeness(valid=lambda seq: seq % 5 != 0)  # every fifth order is invalid
    for seq, dead in [(0, True), (1, False), (2, True), (3, False), (5, False)]:  # 2: valid but dead-lettered; 5: invalid but delivered
        c.observe(seq, None, dead)
    assert c.misrouted == 2 and c.distinct == 5 and c.watermark == 4
    c.observe(2, None, True)  # a duplicate is not misrouted twice
    assert c.misrouted == 2
    c.close_drain_window()
    c.observe(4, None, False)
    assert c.watermark == 6
    r = c.report(sent=7)
    assert r["late"] == 1 and r["lost"] == 1 and r["lost_examples"] == [6] and r["misrouted"] == 2
    assert r["duplicated"] == 1


def test_neutral_backlog_and_the_age_of_the_oldest_order() -> None:
    assert backlog(acked=100, accounted=60) == 40
    assert backlog(acked=10, accounted=12) == 0  # the sink may read an order before the ack reaches the generator
    intended = {0: 0.0, 1: 0.5, 2: 1.0}.get
    assert oldest_age_s(1, intended, now_s=3.0) == 2.5
    assert oldest_age_s(2, intended, now_s=0.5) == 0.0  # not due yet
    assert oldest_age_s(9, intended, now_s=3.0) == 0.0  # past the schedule: nothing outstanding
