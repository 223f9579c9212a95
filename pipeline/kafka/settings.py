"""Kafka client settings as typed fields that map to librdkafka keys, plus `extra` passed through."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

LIBRDKAFKA_LOG = logging.getLogger("lagduel.librdkafka")


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    client_id: str = "lagduel"
    acks: str = "all"
    linger_ms: float = 5.0
    batch_size: int = 131_072
    compression_type: str = "none"
    session_timeout_ms: int = 10_000
    max_poll_interval_ms: int = 300_000
    auto_offset_reset: str = "earliest"
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Any other librdkafka setting, passed unchanged."""

    def with_client_id(self, client_id: str) -> KafkaSettings:
        return replace(self, client_id=client_id)

    def common(self) -> dict[str, Any]:
        # librdkafka's own log lines go through Python logging (to the run's log file), not raw to stderr.
        return {"bootstrap.servers": self.bootstrap_servers, "client.id": self.client_id, "logger": LIBRDKAFKA_LOG}

    def producer(self, **overrides: Any) -> dict[str, Any]:
        cfg = {
            **self.common(),
            "acks": self.acks,
            "linger.ms": self.linger_ms,
            "batch.size": self.batch_size,
            "compression.type": self.compression_type,
            # Idempotence keeps retried batches from duplicating or reordering records.
            "enable.idempotence": self.acks == "all",
            **self.extra,
        }
        cfg.update(overrides)
        return cfg

    def consumer(self, group_id: str, **overrides: Any) -> dict[str, Any]:
        cfg = {
            **self.common(),
            "group.id": group_id,
            # Offsets are stored and committed by lagduel only after an event is fully handled.
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": self.auto_offset_reset,
            "session.timeout.ms": self.session_timeout_ms,
            "max.poll.interval.ms": self.max_poll_interval_ms,
            "partition.assignment.strategy": "cooperative-sticky",
            **self.extra,
        }
        cfg.update(overrides)
        return cfg

    def admin(self) -> dict[str, Any]:
        return {**self.common(), **{k: v for k, v in self.extra.items() if k.startswith(("security.", "sasl.", "ssl."))}}
