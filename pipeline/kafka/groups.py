"""Consumer-group membership: has a group joined and been assigned its topic's partitions?

The starting line of a run: load begins only once every consumer group of a backend is stable and
owns every partition of the topic it reads, so no backend loses seconds of the load to a join.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import ConsumerGroupState, KafkaException
from confluent_kafka.admin import AdminClient

from pipeline.kafka.settings import KafkaSettings


class GroupMembership:
    def __init__(self, settings: KafkaSettings, timeout_s: float = 10.0) -> None:
        self._settings = settings
        self._admin = AdminClient(settings.admin())
        self._timeout = timeout_s

    def _reconnect(self) -> None:
        """A long-lived admin client can stay wedged after a broker restart: replace it."""
        self._admin = AdminClient(self._settings.admin())

    def unassigned(self, groups: Iterable[tuple[str, str]]) -> list[str]:
        """Of (group, topic) pairs, a line for each group that is not yet stable with every partition of its
        topic assigned to a member (empty when all are)."""
        pairs = list(dict.fromkeys(groups))
        if not pairs:
            return []
        topics = {t for _, t in pairs}
        try:
            md = self._admin.list_topics(timeout=self._timeout).topics
        except KafkaException as exc:  # the broker unreachable or restarting: a fresh client for the next call
            self._reconnect()
            return [f"{g}: metadata unavailable: {exc}" for g, _ in pairs]
        partitions = {t: len(md[t].partitions) if t in md and md[t].error is None else 0 for t in topics}
        futures = self._admin.describe_consumer_groups(list({g for g, _ in pairs}), request_timeout=self._timeout)
        missing = []
        failed = False
        for group, topic in pairs:
            try:
                desc = futures[group].result()
            except KafkaException as exc:
                missing.append(f"{group}: {exc}")
                failed = True
                continue
            owned = {tp.partition for m in desc.members for tp in m.assignment.topic_partitions if tp.topic == topic}
            if desc.state != ConsumerGroupState.STABLE or len(owned) < partitions[topic]:
                missing.append(f"{group}: {desc.state.name.lower()}, {len(owned)}/{partitions[topic]} partitions "
                               f"of {topic} assigned")
        if failed:
            self._reconnect()
        return missing

    def wait_assigned(self, groups: Iterable[tuple[str, str]], timeout_s: float) -> None:
        """Block until every group is stable and owns its topic's partitions; TimeoutError names the laggards."""
        pairs = list(groups)
        deadline = time.monotonic() + timeout_s
        while True:
            missing = self.unassigned(pairs)
            if not missing:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"consumer groups not assigned within {timeout_s:.0f} s: " + "; ".join(missing))
            time.sleep(0.2)
