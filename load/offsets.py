"""Batched offset reads for the sampler: every topic's log-end offsets in one ListOffsets round,
every group's commits in concurrent OffsetFetch requests (one group per request is the admin API's limit).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from pipeline.kafka import KafkaSettings


@dataclass(frozen=True, slots=True)
class OffsetSnapshot:
    log_ends: dict[str, dict[int, int]]
    """topic -> partition -> log-end offset (the next offset to be written)."""
    committed: dict[tuple[str, str], dict[int, int | None]]
    """(group, topic) -> partition -> committed offset; None: the group has committed nothing there."""


_LATEST = OffsetSpec.latest()


class OffsetReader:
    def __init__(self, settings: KafkaSettings, timeout_s: float = 10.0) -> None:
        self._admin = AdminClient(settings.admin())
        self._timeout = timeout_s
        self._partitions: dict[str, list[TopicPartition]] = {}

    def partitions(self, topic: str) -> list[TopicPartition]:
        if topic not in self._partitions:
            meta = self._admin.list_topics(topic, timeout=self._timeout).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise KeyError(f"topic {topic!r} does not exist")
            self._partitions[topic] = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        return self._partitions[topic]

    def read(self, topics: Iterable[str], groups: Iterable[tuple[str, str]]) -> OffsetSnapshot:
        topics = list(dict.fromkeys(topics))
        groups = list(dict.fromkeys(groups))
        # Fire every request before waiting on any: one round trip's worth of wall time.
        commit_futs = {
            (g, t): self._admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(g, self.partitions(t))], request_timeout=self._timeout)[g]
            for g, t in groups
        }
        wanted = {tp: _LATEST for t in topics for tp in self.partitions(t)}
        end_futs = self._admin.list_offsets(wanted, request_timeout=self._timeout) if wanted else {}
        log_ends: dict[str, dict[int, int]] = {t: {} for t in topics}
        for tp, fut in end_futs.items():
            log_ends[tp.topic][tp.partition] = fut.result().offset
        committed: dict[tuple[str, str], dict[int, int | None]] = {}
        for key, fut in commit_futs.items():
            committed[key] = {tp.partition: (tp.offset if tp.offset >= 0 else None)
                              for tp in fut.result().topic_partitions}
        return OffsetSnapshot(log_ends, committed)
