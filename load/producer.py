"""One producer process of the load generator: sends its share of the schedule, open loop.

Each event has an intended send time from the profile. The producer waits until then, never
beyond; when it falls behind it sends at once and records how late it was (OMB's publishDelay),
so coordinated omission shows up as lateness instead of as a quietly lower rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from load import histograms
from load.profiles import Profile, schedule
from pipeline.kafka import KafkaSettings
from pipeline.orders import OrderFactory, order_event
from pipeline.topology import Topology

# Progress slots per worker in the shared array.
SENT, ACKED, FAILED, LATE = range(4)
SLOTS = 4


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


def connected_producer(plan: LoadPlan, settings: KafkaSettings, worker: int) -> Producer:
    """A producer with its connection and metadata in place, and the event code paths warmed up,
    so that start-up costs are not charged to the first events' lateness."""
    producer = Producer(settings.with_client_id(f"lagduel-load-{worker}").producer(
        **{"queue.buffering.max.messages": 200_000}))
    producer.list_topics(plan.topic, timeout=30)
    data, _ = OrderFactory(plan.seed, plan.invalid_share, plan.record_bytes).order(0)
    order_event(plan.topology, plan.run_id, 0, 0, data, plan.record_bytes)
    return producer


def produce_share(plan: LoadPlan, settings: KafkaSettings, worker: int, start_wall: float,
                  progress: Any | None = None, producer: Producer | None = None) -> WorkerResult:
    """Send the events `seq` with seq % workers == worker at their intended times from `start_wall`."""
    result = WorkerResult(worker)
    lateness = histograms.new_histogram()
    factory = OrderFactory(plan.seed, plan.invalid_share, plan.record_bytes)
    producer = producer or connected_producer(plan, settings, worker)
    late_us = int(plan.late_threshold_ms * 1000)
    start_us = int(start_wall * 1_000_000)
    # The same instant on the monotonic clock: waits are immune to wall-clock steps.
    start_mono = time.monotonic() + (start_wall - time.time())

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            result.acked += 1
        else:
            result.failed += 1
            if len(result.errors) < 5:
                result.errors.append(str(err))

    late = 0
    for seq, offset in enumerate(schedule(plan.profile)):
        if seq % plan.workers != worker:
            continue
        target = start_mono + offset
        now = time.monotonic()
        while now < target:  # ahead of schedule: wait, serving delivery reports meanwhile
            producer.poll(min(target - now, 0.05))
            now = time.monotonic()
        data, valid = factory.order(seq)
        rec = order_event(plan.topology, plan.run_id, seq, start_us + int(offset * 1_000_000), data, plan.record_bytes)
        while True:
            try:
                producer.produce(plan.topic, rec.value, rec.key, headers=rec.headers, on_delivery=delivered)
                break
            except BufferError:  # local queue full: the broker is behind; we are late from here on
                producer.poll(0.005)
        behind_us = int((time.monotonic() - target) * 1_000_000)
        histograms.record(lateness, behind_us)
        late += behind_us > late_us
        result.sent += 1
        result.valid += valid
        result.invalid += not valid
        result.last_send_offset_s = time.monotonic() - start_mono
        producer.poll(0)
        if progress is not None and result.sent % 200 == 0:
            _report(progress, worker, result, late)
    remaining = producer.flush(60)
    if remaining:
        result.failed += remaining
        result.errors.append(f"{remaining} records not acknowledged within 60 s of the end")
    result.lateness = histograms.encode(lateness)
    if progress is not None:
        _report(progress, worker, result, late)
    return result


def _report(progress: Any, worker: int, result: WorkerResult, late: int) -> None:
    base = worker * SLOTS
    progress[base + SENT] = result.sent
    progress[base + ACKED] = result.acked
    progress[base + FAILED] = result.failed
    progress[base + LATE] = late
