"""The one offset reader: every topic's log-end offsets and every group's commits, as arrays indexed
by partition, in batched reads; `lag(group, topic)` gives one group's lag as KEDA computes it.

Cost is per partition, so the reads avoid per-partition Python objects where librdkafka allows:
log ends come from the consumer's ListOffsets call (a plain list back, no future per partition as
AdminClient.list_offsets makes), commits from one OffsetFetch per group and chunk. librdkafka
matches a response's partitions to the request's by linear search, so one request for 5,000
partitions costs ~10× five requests of 1,000: requests are cut into CHUNK partitions each.

Commits are read by a consumer carrying the observed group's id (it never subscribes, so it never joins
the group), not by AdminClient.list_consumer_group_offsets: librdkafka ≤ 2.16 dereferences the admin
client's missing consumer group when an OffsetFetch answers NOT_COORDINATOR — as it does while a
restarted broker loads its groups — and the process dies with SIGSEGV
(confluentinc/librdkafka#5040, confluent-kafka-python#1982).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from pipeline.kafka.lag import GroupLag, PartitionLag

from pipeline.kafka.settings import KafkaSettings

CHUNK = 200
"""Partitions per request: measured optimum 100–250 on librdkafka 2.16 (5,000 partitions: 9 ms vs 100 ms in one)."""
NO_COMMIT = -1
"""Committed-array value for a partition where the group has committed nothing (real offsets are ≥ 0)."""
_STALE_LEADERS = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART,
                  KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError.FENCED_LEADER_EPOCH)
_LATEST = -1  # ListOffsets timestamp -1: the log-end offset (high watermark under read_uncommitted)


@dataclass(frozen=True, slots=True)
class OffsetSnapshot:
    ends: dict[str, np.ndarray]
    """topic -> int64 log-end offsets (the next offset to be written), index = partition."""
    commits: dict[tuple[str, str], np.ndarray]
    """(group, topic) -> int64 committed offsets, index = partition; NO_COMMIT where the group has none."""

    @property
    def log_ends(self) -> dict[str, dict[int, int]]:
        """topic -> partition -> log-end offset."""
        return {t: dict(enumerate(a.tolist())) for t, a in self.ends.items()}

    @property
    def committed(self) -> dict[tuple[str, str], dict[int, int | None]]:
        """(group, topic) -> partition -> committed offset; None: the group has committed nothing there."""
        return {k: {p: (c if c >= 0 else None) for p, c in enumerate(a.tolist())} for k, a in self.commits.items()}


class OffsetReader:
    def __init__(self, settings: KafkaSettings, timeout_s: float = 10.0) -> None:
        self._settings = settings
        self._timeout = timeout_s
        self.reconnects = 0
        """How often the clients were made anew after a failed read (e.g. across a broker restart)."""
        self._connect()
        self._partitions: dict[str, int] = {}
        self._latest: dict[str, list[list[TopicPartition]]] = {}
        self._unset: dict[str, list[list[TopicPartition]]] = {}

    def _connect(self) -> None:
        self._admin = AdminClient(self._settings.admin())
        # Never subscribes, so never joins a group; read_uncommitted as KEDA's Sarama client reads (latest = HWM).
        self._consumer = Consumer(self._settings.consumer("lagduel-offset-reader",
                                                          **{"isolation.level": "read_uncommitted"}))
        self._group_readers: dict[str, Consumer] = {}

    def _group_reader(self, group: str) -> Consumer:
        """A consumer in `group` that only reads its commits: made on first use, kept for later reads."""
        if group not in self._group_readers:
            self._group_readers[group] = Consumer(self._settings.consumer(group))
        return self._group_readers[group]

    def _close_clients(self) -> None:
        for consumer in (self._consumer, *self._group_readers.values()):
            try:
                consumer.close()
            except (KafkaException, RuntimeError):
                pass

    def _reconnect(self) -> None:
        """Long-lived clients can stay wedged after the broker went away and came back (every request timing
        out): replace them. The partition counts and request lists stay valid."""
        self.reconnects += 1
        self._close_clients()
        self._connect()

    def partitions(self, topic: str) -> int:
        """How many partitions the topic has (Kafka numbers them 0..n-1); cached."""
        if topic not in self._partitions:
            meta = self._admin.list_topics(topic, timeout=self._timeout).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise KeyError(f"topic {topic!r} does not exist")
            n = len(meta.partitions)
            assert sorted(meta.partitions) == list(range(n)), meta.partitions
            self._partitions[topic] = n
            # Request lists are built once and reused: the calls copy them, never change them.
            self._latest[topic] = _chunks([TopicPartition(topic, p, _LATEST) for p in range(n)])
            self._unset[topic] = _chunks([TopicPartition(topic, p) for p in range(n)])
        return self._partitions[topic]

    def read(self, topics: Iterable[str], groups: Iterable[tuple[str, str]]) -> OffsetSnapshot:
        """One snapshot; a failed read (timeout, transport error) makes the clients anew and tries once more."""
        topics = list(dict.fromkeys(topics))
        groups = list(dict.fromkeys(groups))
        try:
            return self._read(topics, groups)
        except KafkaException:
            self._reconnect()
            return self._read(topics, groups)

    def _read(self, topics: list[str], groups: list[tuple[str, str]]) -> OffsetSnapshot:
        for t in (*topics, *(t for _, t in groups)):
            self.partitions(t)
        ends = {t: self._log_ends(t) for t in topics}
        commits = {}
        for g, t in groups:
            reader = self._group_reader(g)
            got = [tp for chunk in self._unset[t] for tp in reader.committed(chunk, timeout=self._timeout)]
            commits[(g, t)] = _by_partition(got, self._partitions[t], allow_negative=True)
            np.maximum(commits[(g, t)], NO_COMMIT, out=commits[(g, t)])  # -1001 (OFFSET_INVALID) means no commit
        return OffsetSnapshot(ends, commits)

    def lag(self, group: str, topic: str) -> GroupLag:
        """One group's lag on one topic: log-end minus committed per partition (KEDA's definition)."""
        snap = self.read([topic], [(group, topic)])
        ends, commits = snap.ends[topic].tolist(), snap.commits[(group, topic)].tolist()
        return GroupLag(group, topic, tuple(PartitionLag(p, e, c if c >= 0 else None)
                                            for p, (e, c) in enumerate(zip(ends, commits))))

    def close(self) -> None:
        self._close_clients()

    def _log_ends(self, topic: str) -> np.ndarray:
        got = [tp for chunk in self._latest[topic] for tp in self._latest_offsets(chunk)]
        return _by_partition(got, self._partitions[topic], allow_negative=False)

    def _latest_offsets(self, chunk: list[TopicPartition]) -> list[TopicPartition]:
        return until_leaders_known(lambda: self._consumer.offsets_for_times(chunk, timeout=self._timeout),
                                   time.monotonic() + self._timeout)


def until_leaders_known(read: Callable[[], list[TopicPartition]], deadline: float,
                        pause_s: float = 0.05) -> list[TopicPartition]:
    """`read()` again while it fails on stale leadership, for the request or for any partition, until the deadline.

    A just-created topic's leaders may not be in this client's metadata yet (NOT_LEADER_FOR_PARTITION), or the
    client's leader epoch may be ahead of a broker still loading the partition (UNKNOWN_LEADER_EPOCH, seen on
    5 × 1,000 fresh partitions): either error makes librdkafka refresh its metadata, so a later read succeeds.
    """
    while True:
        try:
            got = read()
        except KafkaException as exc:
            if exc.args[0].code() not in _STALE_LEADERS or time.monotonic() > deadline:
                raise
        else:
            stale = any(tp.error is not None and tp.error.code() in _STALE_LEADERS for tp in got)
            if not stale or time.monotonic() > deadline:
                return got
        time.sleep(pause_s)


def _chunks(tps: list[TopicPartition]) -> list[list[TopicPartition]]:
    return [tps[i:i + CHUNK] for i in range(0, len(tps), CHUNK)]


def _by_partition(tps: list[TopicPartition], n: int, allow_negative: bool) -> np.ndarray:
    """Offsets as an array indexed by partition; a partition-level error raises, as a failed future did."""
    offsets = np.fromiter((tp.offset for tp in tps), dtype=np.int64, count=len(tps))
    if len(tps) != n or (not allow_negative and n and offsets.min() < 0):
        _raise_partition_error(tps, n)
    partitions = np.fromiter((tp.partition for tp in tps), dtype=np.int64, count=n)
    if not np.array_equal(partitions, np.arange(n)):  # librdkafka answers in request order; don't rely on it
        out = np.empty(n, dtype=np.int64)
        out[partitions] = offsets
        return out
    return offsets


def _raise_partition_error(tps: list[TopicPartition], n: int) -> None:
    for tp in tps:
        if tp.error is not None:
            raise KafkaException(tp.error)
    raise KafkaException(f"offsets for {len(tps)} of {n} partitions of {tps[0].topic if tps else '?'!r}, some invalid")
