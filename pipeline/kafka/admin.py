"""Admin helpers: readiness, topics, and consumer lag as KEDA defines it (log-end minus committed)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from pipeline.kafka.settings import KafkaSettings


class BrokerUnavailable(RuntimeError):
    pass


def wait_for_broker(settings: KafkaSettings, timeout_s: float = 30.0) -> int:
    """Block until a broker answers metadata requests; returns how many brokers answered."""
    admin = AdminClient(settings.admin())
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(timeout=2)
            if md.brokers:
                return len(md.brokers)
        except KafkaException as exc:
            last = exc
        time.sleep(0.2)
    raise BrokerUnavailable(f"no Kafka broker answered at {settings.bootstrap_servers} within {timeout_s:.0f} s ({last})")


def create_topics(settings: KafkaSettings, topics: Iterable[str], partitions: int, replication_factor: int = 1,
                  timeout_s: float = 30.0) -> None:
    """Create topics (existing ones are left alone) and wait until each has a leader for every partition."""
    admin = AdminClient(settings.admin())
    wanted = list(dict.fromkeys(topics))
    futures = admin.create_topics([NewTopic(t, partitions, replication_factor) for t in wanted], operation_timeout=timeout_s)
    for topic, fut in futures.items():
        try:
            fut.result()
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=5)
        if all(t in md.topics and md.topics[t].partitions and all(p.leader >= 0 for p in md.topics[t].partitions.values())
               and md.topics[t].error is None for t in wanted):
            return
        time.sleep(0.1)
    raise BrokerUnavailable(f"topics {wanted} got no leaders within {timeout_s:.0f} s")


def delete_topics(settings: KafkaSettings, topics: Sequence[str]) -> None:
    if not topics:
        return
    admin = AdminClient(settings.admin())
    for fut in admin.delete_topics(list(topics), operation_timeout=30).values():
        try:
            fut.result()
        except KafkaException:
            pass


@dataclass(frozen=True, slots=True)
class PartitionLag:
    partition: int
    log_end: int
    committed: int | None
    """None: the group has committed nothing for this partition."""

    @property
    def lag(self) -> int | None:
        """log-end minus committed, clamped at 0; None without a commit (shown as such, not as zero)."""
        return None if self.committed is None else max(self.log_end - self.committed, 0)


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    topic: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total(self) -> int:
        """Sum of the lag of partitions with a commit."""
        return sum(p.lag or 0 for p in self.partitions)

    @property
    def uncommitted(self) -> int:
        return sum(1 for p in self.partitions if p.committed is None)

    @property
    def log_end(self) -> int:
        return sum(p.log_end for p in self.partitions)

    @property
    def committed_total(self) -> int:
        return sum(p.committed or 0 for p in self.partitions)


class LagReader:
    """Reads log-end and committed offsets for (group, topic) pairs over one reused admin client."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._admin = AdminClient(settings.admin())
        self._partitions: dict[str, list[int]] = {}

    def partitions(self, topic: str) -> list[int]:
        if topic not in self._partitions:
            md = self._admin.list_topics(topic, timeout=10)
            meta = md.topics.get(topic)
            if meta is None or meta.error is not None:
                raise KeyError(f"topic {topic!r} does not exist")
            self._partitions[topic] = sorted(meta.partitions)
        return self._partitions[topic]

    def log_ends(self, topic: str) -> dict[int, int]:
        tps = [TopicPartition(topic, p) for p in self.partitions(topic)]
        # One ListOffsets request for all partitions of the topic.
        futs = self._admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=10)
        return {tp.partition: fut.result().offset for tp, fut in futs.items()}

    def committed(self, group: str, topic: str) -> dict[int, int | None]:
        tps = [TopicPartition(topic, p) for p in self.partitions(topic)]
        fut = self._admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)], request_timeout=10)[group]
        out: dict[int, int | None] = {}
        for tp in fut.result().topic_partitions:
            out[tp.partition] = tp.offset if tp.offset >= 0 else None
        return out

    def lag(self, group: str, topic: str, log_ends: dict[int, int] | None = None) -> GroupLag:
        ends = log_ends if log_ends is not None else self.log_ends(topic)
        committed = self.committed(group, topic)
        parts = tuple(PartitionLag(p, ends.get(p, 0), committed.get(p)) for p in self.partitions(topic))
        return GroupLag(group, topic, parts)



def consumer_lag(settings: KafkaSettings, group: str, topic: str) -> GroupLag:
    return LagReader(settings).lag(group, topic)
