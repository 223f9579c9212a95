"""Long-lived clients across a broker restart (a private broker: the session's is never restarted)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, Producer, TopicPartition

from pipeline.broker.process import EmbeddedKafka
from pipeline.delivery import DispatcherConfig, KafkaDispatcher
from pipeline.kafka import GroupMembership, KafkaSettings, OffsetReader, create_topics

from tests.foundation.poison import private_broker  # noqa: F401 - a fixture

pytestmark = pytest.mark.kafka


def test_offset_reader_and_group_membership_read_again_after_a_restart(private_broker: EmbeddedKafka) -> None:  # noqa: F811
    settings = KafkaSettings(private_broker.bootstrap, linger_ms=1)
    create_topics(settings, ["t"], 2)
    p = Producer(settings.producer())
    for i in range(10):
        p.produce("t", b"x", partition=i % 2)
    assert p.flush(10) == 0
    reader, groups = OffsetReader(settings, timeout_s=5), GroupMembership(settings, timeout_s=5)
    assert sum(q.log_end for q in reader.lag("g", "t").partitions) == 10
    private_broker.restart()
    deadline = time.monotonic() + 30
    while True:  # the first reads may still fail while the broker elects leaders; then they must work again
        try:
            assert sum(q.log_end for q in reader.lag("g", "t").partitions) == 10
            break
        except Exception:
            assert time.monotonic() < deadline, "the offset reader never recovered"
            time.sleep(0.5)
    while (missing := groups.unassigned([("g", "t")])) != ["g: dead, 0/2 partitions of t assigned"]:
        assert time.monotonic() < deadline, f"group membership never recovered: {missing}"
        time.sleep(0.5)
    reader.close()


def test_a_failed_asynchronous_commit_is_sent_again() -> None:
    d = KafkaDispatcher(KafkaSettings("127.0.0.1:1"), DispatcherConfig("g", ("t",)), handler=None)  # type: ignore[arg-type]
    d.stats.committed[("t", 0)] = 5
    d.stats.committed[("t", 1)] = 7
    d._on_commit(KafkaError(KafkaError.REQUEST_TIMED_OUT), [TopicPartition("t", 0, 5)])
    assert d.stats.committed == {("t", 1): 7} and d.stats.commit_errors == 1  # partition 0 goes out again
    d._on_commit(None, [TopicPartition("t", 1, 7)])
    assert d.stats.committed == {("t", 1): 7} and d.stats.commit_errors == 1
