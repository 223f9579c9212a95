"""Kafka client settings as typed fields that map to librdkafka keys, plus `extra` passed through."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
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
            # A fetch waits up to 10 ms for more records instead of returning each record alone: one broker
            # serves a dozen consumers here, and per-record fetches cost it more CPU than the records do.
            "fetch.wait.max.ms": 10,
            "fetch.min.bytes": 65_536,
            **self.extra,
        }
        cfg.update(overrides)
        return cfg

    def admin(self) -> dict[str, Any]:
        return {**self.common(), **{k: v for k, v in self.extra.items() if k.startswith(("security.", "sasl.", "ssl."))}}


# Keys that decide lagduel's delivery guarantee or identity: a client-config file may not change them.
_OWNED_KEYS = frozenset({"group.id", "enable.auto.commit", "enable.auto.offset.store", "client.id"})


class ClientConfigError(ValueError):
    """A client-config file lagduel cannot use; the message names the file, the line and the cause."""


def read_client_config(path: Path) -> dict[str, str]:
    """librdkafka settings from a file of `key=value` lines (as kcat's -X or a Java client.properties takes
    them; `#` starts a comment): how SASL/TLS settings reach every client lagduel makes (`extra`)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ClientConfigError(f"cannot read Kafka client config {path}: {exc.strerror or exc}") from None
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ClientConfigError(f"{path}:{number}: expected key=value, got {line[:60]!r}")
        if key in _OWNED_KEYS:
            raise ClientConfigError(f"{path}:{number}: {key} is set by lagduel (at-least-once delivery and "
                                    "per-component identities depend on it); remove it")
        out[key] = value
    return out
