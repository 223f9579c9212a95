"""Admin helpers: broker readiness, creating and deleting topics, a deployment's topic plan."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

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


class TopicError(RuntimeError):
    """The deployment's topics cannot be made right; the message names the topic and the fix."""


@dataclass(frozen=True)
class TopicPlan:
    """The topics a deployed pipeline reads and writes, each with the topology's partitions: checked with
    the cluster's other preconditions, created just before anything else changes.

    Kafka's auto-create would give a topic the broker's default (often 1) partitions, and a KEDA-scaled
    function never gets more replicas than its topic has partitions (openfaas-keda.md §5.3, step 5): a topic with
    fewer partitions than the topology wants is refused, not silently accepted.
    """

    settings: KafkaSettings
    topics: tuple[str, ...]
    partitions: int
    replication_factor: int = 1
    timeout_s: float = 10.0

    def check(self) -> list[str]:
        """Kafka answers and no existing topic has too few partitions; returns the topics to create."""
        admin = AdminClient(self.settings.admin())
        try:
            md = admin.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            raise TopicError(f"cannot reach Kafka at {self.settings.bootstrap_servers} to create the pipeline's topics "
                             f"({exc.args[0].str()})") from None
        missing = []
        for topic in self.topics:
            meta = md.topics.get(topic)
            if meta is None or meta.error is not None:
                missing.append(topic)
            elif len(meta.partitions) < self.partitions:
                raise TopicError(f"topic {topic!r} has {len(meta.partitions)} partition(s), the topology wants "
                                 f"{self.partitions}: its stage could never scale past {len(meta.partitions)} "
                                 f"replica(s); add partitions (kafka-topics.sh --alter --topic {topic} "
                                 f"--partitions {self.partitions}) or delete it")
        return missing

    def create(self) -> list[str]:
        """Create the missing topics; returns one line per topic saying what was done."""
        missing = self.check()
        if missing:
            try:
                create_topics(self.settings, missing, self.partitions, self.replication_factor, self.timeout_s * 3)
            except (KafkaException, BrokerUnavailable) as exc:
                raise TopicError(f"creating topics {', '.join(missing)} failed: {exc}") from None
        return [f"{'created' if t in missing else 'kept'} topic/{t} ({self.partitions} partitions)"
                for t in self.topics]
