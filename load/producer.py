"""One producer process of the load generator: sends its share of the schedule, open loop.

Each event has an intended send time from the profile. The producer waits until then, never
beyond; when it falls behind it sends at once and records how late it was (OMB's publishDelay),
so coordinated omission shows up as lateness instead of as a quietly lower rate.

The orders are encoded before they are due: all of a worker's share before the start when it fits in
`AHEAD_EVENTS` (about 420 bytes each), else that many at the start and the rest in small chunks
whenever the schedule leaves idle time (or on demand once behind), so memory stays bounded on long
schedules. The timed loop only adds the per-send headers (intended time), calls `produce()` and
notes the lateness; the lateness histogram is filled in batches, value for value.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from confluent_kafka import KafkaError, Message, Producer
from hdrh.histogram import HdrHistogram

from load import histograms
from load.profiles import Profile, schedule_array
from pipeline.kafka import KafkaSettings
from pipeline.keys import KeySpec
from pipeline.orders import OrderFactory, OrderRecords
from pipeline.topology import Topology

# Progress slots per worker in the shared array.
SENT, ACKED, FAILED, LATE = range(4)
SLOTS = 4
AHEAD_EVENTS = 1 << 19
"""Encoded orders a worker holds ahead of its send cursor (key and value, ~420 bytes each: ~220 MB)."""
CHUNK = 256
"""Orders encoded at a time while the schedule leaves idle time (about a millisecond of work)."""
REPORT_EVERY_S = 0.2
WAIT_QUANTUM_S = 0.001
"""The shortest wait for a send time: orders due within it go out together, up to this much late (the lateness
histogram shows it). A wait of a few µs per order costs a whole wake-up each, ~100 µs of CPU on a small VM,
which at tens of thousands of orders a second was most of a worker's CPU."""
POLL_MASK = 31
"""Serve delivery reports every 32 sends: each success is freed there, and a backlog served at once stalls."""


@dataclass(frozen=True)
class LoadPlan:
    """What to send: identical plans offer identical load (same seqs, data, intended offsets)."""

    topology: Topology
    run_id: str
    profile: Profile
    seed: int = 42
    invalid_share: float = 0.1
    record_bytes: int | None = None
    workers: int = 1
    keys: KeySpec = KeySpec()
    """How the orders' keys (customers) are drawn, hence how they spread over partitions."""
    late_threshold_ms: float = 25.0
    """An event sent more than this after its intended time counts as late."""
    max_late_share: float = 0.01
    max_p99_lateness_ms: float = 50.0  # 2 x late_threshold_ms by default
    """The run is flagged as behind schedule past either limit."""

    @property
    def topic(self) -> str:
        return self.topology.input.topic


@dataclass
class WorkerResult:
    worker: int
    sent: int = 0
    acked: int = 0
    failed: int = 0
    valid: int = 0
    invalid: int = 0
    last_send_offset_s: float = 0.0
    """When the last event actually went, seconds after the start."""
    lateness: str = ""
    """Encoded HdrHistogram of send lateness in µs."""
    errors: list[str] = field(default_factory=list)


class ShareSender:
    """One worker's share of a plan: the events `seq` with seq % workers == worker, encoded ahead of
    time on a connected producer, then sent at their intended times by `run`."""

    def __init__(self, plan: LoadPlan, settings: KafkaSettings, worker: int) -> None:
        self.plan = plan
        self.worker = worker
        self.result = WorkerResult(worker)
        offsets = schedule_array(plan.profile)
        self.seqs: list[int] = list(range(worker, len(offsets), plan.workers))
        mine = offsets[worker::plan.workers]
        self.offsets: list[float] = mine.tolist()
        self.offsets_us: list[int] = (mine * 1_000_000).astype(np.int64).tolist()
        self.records = OrderRecords(plan.topology, plan.run_id, OrderFactory(plan.seed, plan.invalid_share,
                                                                             plan.record_bytes, keys=plan.keys))
        self.prepared: list[tuple[bytes, bytes] | None] = [None] * len(self.seqs)
        self.encoded = 0
        self.encode(min(AHEAD_EVENTS, len(self.seqs)))
        self.producer = Producer(settings.with_client_id(f"lagduel-load-{worker}").producer(**{
            "queue.buffering.max.messages": 200_000,
            # Reports for failures only: a success needs no Python call, and it is counted as
            # sent - failed - still queued, which is exact once the queue drains.
            "delivery.report.only.error": True, "on_delivery": self._delivered}))
        self.producer.list_topics(plan.topic, timeout=30)  # connection and metadata before the start
        # The encoded orders live until sent: keep the cycle collector from walking them again and again.
        gc.collect()
        gc.freeze()

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.result.failed += 1
            if len(self.result.errors) < 5:
                self.result.errors.append(str(err))

    def encode(self, count: int) -> None:
        """Encode the next `count` orders of the share."""
        lo, hi = self.encoded, min(self.encoded + count, len(self.seqs))
        if hi <= lo:
            return
        valid = 0
        for i, (key, value, ok) in enumerate(self.records.encode(np.asarray(self.seqs[lo:hi])), lo):
            self.prepared[i] = (key, value)
            valid += ok
        self.result.valid += valid
        self.result.invalid += hi - lo - valid
        self.encoded = hi

    def run(self, start_wall: float, progress: Any | None = None) -> WorkerResult:
        """Send every event of the share at its intended time from `start_wall`, then wait for the acks."""
        plan, result, records, prepared = self.plan, self.result, self.records, self.prepared
        produce, poll, monotonic = self.producer.produce, self.producer.poll, time.monotonic
        topic, seqs, offsets, offsets_us = plan.topic, self.seqs, self.offsets, self.offsets_us
        lateness = _Lateness(int(plan.late_threshold_ms * 1000))
        start_us = int(start_wall * 1_000_000)
        # The same instant on the monotonic clock: waits are immune to wall-clock steps.
        start_mono = monotonic() + (start_wall - time.time())
        total = len(seqs)
        next_report = 0.0
        now = monotonic()
        for i in range(total):
            if i >= self.encoded:  # behind the encoder: encode on demand
                self.encode(CHUNK)
            target = start_mono + offsets[i]
            if now < target:  # ahead of schedule: encode ahead, else wait, serving delivery reports meanwhile
                while (target - now > 0.003 and self.encoded < total
                       and self.encoded - i < AHEAD_EVENTS):
                    self.encode(CHUNK)
                    now = monotonic()
                while now < target:  # at least a millisecond a wait: a wake-up costs more than the wait
                    poll(min(max(target - now, WAIT_QUANTUM_S), 0.05))
                    now = monotonic()
            key, value = prepared[i]  # type: ignore[misc]
            prepared[i] = None
            intended = start_us + offsets_us[i]
            headers = records.headers(seqs[i], key, intended)
            while True:
                try:
                    produce(topic, value, key, headers=headers)
                    break
                except BufferError:  # local queue full: the broker is behind; we are late from here on
                    poll(0.005)
            now = monotonic()
            lateness.pending.append(int((now - target) * 1_000_000))
            if not i & POLL_MASK:  # the delivery reports' clean-up, a little at a time
                poll(0)
            if now >= next_report:
                result.sent = i + 1
                result.last_send_offset_s = now - start_mono
                lateness.flush()
                poll(0)
                self._report(progress, lateness.late)
                next_report = now + REPORT_EVERY_S
        result.sent = total
        if total:
            result.last_send_offset_s = now - start_mono
        lateness.flush()
        remaining = self.producer.flush(60)
        if remaining:
            result.failed += remaining
            result.errors.append(f"{remaining} records not acknowledged within 60 s of the end")
        result.acked = result.sent - result.failed
        result.lateness = histograms.encode(lateness.histogram)
        self._report(progress, lateness.late)
        return result

    def _report(self, progress: Any | None, late: int) -> None:
        if progress is None:
            return
        r = self.result
        base = self.worker * SLOTS
        progress[base + SENT] = r.sent
        progress[base + ACKED] = r.sent - r.failed - len(self.producer)
        progress[base + FAILED] = r.failed
        progress[base + LATE] = late


class _Lateness:
    """Send lateness in µs, recorded into the HdrHistogram in batches: each value is replaced by the
    lowest value of its histogram bucket and equal values are recorded once with their count, which
    leaves the histogram (counts, min, max, encoding) exactly as recording them one by one."""

    def __init__(self, late_us: int) -> None:
        self.histogram: HdrHistogram = histograms.new_histogram()
        self.pending: list[int] = []
        self.late_us = late_us
        self.late = 0

    def flush(self) -> None:
        if not self.pending:
            return
        values = np.clip(np.asarray(self.pending, dtype=np.int64), 0, histograms.HIGHEST_US)
        self.pending = []
        self.late += int(np.count_nonzero(values > self.late_us))
        lows, counts = np.unique(lowest_equivalent(self.histogram, values), return_counts=True)
        for value, count in zip(lows.tolist(), counts.tolist()):
            self.histogram.record_value(value, count)


def lowest_equivalent(h: HdrHistogram, values: np.ndarray) -> np.ndarray:
    """`h.get_lowest_equivalent_value` for an array of values below 2**53."""
    bit_length = np.frexp((values | h.sub_bucket_mask).astype(np.float64))[1]
    shift = np.maximum(bit_length - (h.sub_bucket_half_count_magnitude + 1), 0) + h.unit_magnitude
    return (values >> shift) << shift


def produce_share(plan: LoadPlan, settings: KafkaSettings, worker: int, start_wall: float,
                  progress: Any | None = None) -> WorkerResult:
    """Send the events `seq` with seq % workers == worker at their intended times from `start_wall`."""
    return ShareSender(plan, settings, worker).run(start_wall, progress)
