"""SinkReader: reads the output and dead-letter topics of a run, in a thread.

End-to-end latency runs from the event's intended send time (the schedule, not the actual send:
a late generator does not hide latency, wrk2-style) to its arrival here, in an HdrHistogram.
Negative values (clock skew between hosts) are counted, not dropped (OMB drops them silently).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer

from load import histograms
from load.completeness import Completeness
from pipeline import events
from pipeline.kafka import KafkaSettings

log = logging.getLogger(__name__)


@dataclass
class SecondBucket:
    delivered: int = 0
    dead_lettered: int = 0
    duplicated: int = 0
    max_e2e_ms: float = 0.0


@dataclass
class SinkReader:
    settings: KafkaSettings
    output_topic: str
    dead_letter_topic: str
    run_id: str
    group: str
    start: float = 0.0
    """Wall-clock zero of the run (per-second buckets count from here)."""
    valid: Callable[[int], bool] | None = None
    """seq -> whether the order was valid (OrderFactory.valid), to count misrouted orders."""
    e2e: Any = field(default_factory=histograms.new_histogram)
    completeness: Completeness = field(default_factory=Completeness)
    reasons: Counter[str] = field(default_factory=Counter)
    seconds: dict[int, SecondBucket] = field(default_factory=dict)
    delivered: int = 0
    dead_lettered: int = 0
    negative_e2e: int = 0
    foreign: int = 0
    """Records without this run's bookkeeping (not ours, or not CloudEvents)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.completeness.valid = self.valid

    def __enter__(self) -> SinkReader:
        self._thread = threading.Thread(target=self._run, name="lagduel-sink", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=15)

    @property
    def received(self) -> int:
        """Records of this run read, duplicates included."""
        with self._lock:
            return self.delivered + self.dead_lettered

    @property
    def accounted(self) -> int:
        """Distinct orders seen on the output or dead-letter topic (duplicates do not count)."""
        with self._lock:
            return self.completeness.distinct

    @property
    def watermark(self) -> int:
        """The lowest seq not seen yet."""
        with self._lock:
            return self.completeness.watermark

    def close_drain_window(self) -> None:
        with self._lock:
            self.completeness.close_drain_window()

    def _run(self) -> None:
        consumer = Consumer(self.settings.with_client_id("lagduel-sink").consumer(self.group, **{"auto.offset.reset": "earliest"}))
        consumer.subscribe([self.output_topic, self.dead_letter_topic])
        try:
            while not self._stop.is_set():
                for msg in consumer.consume(500, 0.2):
                    if msg.error() is None:
                        self.handle(msg.topic(), msg.key(), msg.value(), msg.headers(), time.time())
        finally:
            consumer.close()

    def handle(self, topic: str, key: bytes | None, value: bytes | None, headers: Any, now: float) -> None:
        """Account for one record read at wall time `now`."""
        try:
            event = events.from_kafka(key, value, headers)
        except Exception as exc:  # noqa: BLE001 - one undecodable record must never stop the sink reader
            self.foreign += 1
            log.debug("sink: undecodable record on %s: %s", topic, exc)
            return
        book = events.bookkeeping_of(event)
        if book is None or book.run_id != self.run_id:
            self.foreign += 1
            return
        e2e_us = int(now * 1_000_000) - book.intended_us
        dead = topic == self.dead_letter_topic
        with self._lock:
            if e2e_us < 0:
                self.negative_e2e += 1
            histograms.record(self.e2e, e2e_us)
            self.completeness.observe(book.seq, key.decode("utf-8", "replace") if key else None, dead)
            bucket = self.seconds.setdefault(int(now - self.start), SecondBucket())
            bucket.max_e2e_ms = max(bucket.max_e2e_ms, e2e_us / 1000.0)
            bucket.duplicated += self.completeness.copies[book.seq] > 1
            if dead:
                self.dead_lettered += 1
                bucket.dead_lettered += 1
                self.reasons[_reason_class(events.rejection_reason(event) or "unknown")] += 1
            else:
                self.delivered += 1
                bucket.delivered += 1

    def report(self, sent: int) -> dict[str, Any]:
        with self._lock:
            return {
                "delivered": self.delivered, "dead_lettered": self.dead_lettered,
                "negative_e2e": self.negative_e2e, "foreign": self.foreign,
                "dead_letter_reasons": dict(self.reasons.most_common(20)),
                **self.completeness.report(sent),
                "e2e_ms": histograms.summary_ms(self.e2e),
            }

    def series(self) -> list[dict[str, float]]:
        with self._lock:
            last = max(self.seconds, default=-1)
            return [{"t": s, "delivered": b.delivered, "dead_lettered": b.dead_lettered, "duplicated": b.duplicated,
                     "max_e2e_ms": b.max_e2e_ms} for s in range(0, last + 1) for b in [self.seconds.get(s, SecondBucket())]]

    def lost(self, sent: int) -> list[int]:
        """Seqs below `sent` never seen (so far)."""
        with self._lock:
            return [seq for seq in range(sent) if seq not in self.completeness.copies]


def _reason_class(reason: str) -> str:
    """Group reasons by their leading field ('currency: 'XXX' is not…' -> 'currency')."""
    head = reason.split(":", 1)[0].strip()
    return head if 0 < len(head) <= 40 else reason[:60]
