"""Admin helpers: broker readiness, creating and deleting topics."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

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
