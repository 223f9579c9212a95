"""LagSampler: once a second, every stage's offset lag, estimated time lag, rates and replicas.

Offsets come from one batched round of reads (load.offsets) as arrays indexed by partition, and
every per-partition step (lag, rates, time lag) is an array operation, not a Python loop. Replicas,
retries and errors come from the backend's own status (or, on a real cluster, load.cluster). Lag is
log-end minus committed, clamped at 0, exactly as KEDA's scaler computes it; a partition without a
commit is reported as uncommitted, never as zero lag (benchmarks.md §3.1, kafka-lag-exporter #45).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.kafka.offsets import NO_COMMIT, OffsetReader, OffsetSnapshot
from load.timelag import TopicTimeline
from pipeline.backends import LagSource, StageStatus


@dataclass(frozen=True, slots=True)
class StageSample:
    stage: str
    lag: int
    """Sum over partitions with a commit."""
    uncommitted: int
    """Partitions where the group has no commit yet."""
    committed_total: int
    consume_rate: float
    """Committed offsets per second since the previous sample."""
    time_lag_s: float | None
    """kafka-lag-exporter estimate, worst partition; None when it cannot be estimated."""
    partition_lag: tuple[int | None, ...]
    partition_committed: tuple[int | None, ...]
    desired: int = 0
    ready: int = 0
    in_flight: int = 0
    queued: int = 0
    retries: int = 0
    errors: int = 0
    dead_lettered: int = 0
    cold_starts: int = 0
    processed: int = 0
    """Events the stage finished so far (the backend's count; 0 where it has none)."""
    slots: int | None = None
    """Events the stage could serve at once (None: ready × per-replica concurrency)."""


@dataclass(frozen=True, slots=True)
class PipelineBacklog:
    """The neutral backlog: the same definition on every backend (load.completeness)."""

    acked: int
    """Orders the broker acknowledged into the input topic so far."""
    accounted: int
    """Distinct orders that reached the output or dead-letter topic so far."""
    orders: int
    """acked − accounted: orders inside the pipeline."""
    time_lag_s: float
    """Age of the oldest order still inside the pipeline, from its intended send time."""


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    """Seconds since the run's start."""
    input_end: int
    produce_rate: float
    output_end: int
    output_rate: float
    dead_letter_end: int
    stages: tuple[StageSample, ...]
    """Each stage's own group, as the platform's autoscaler sees its lag."""
    groups: tuple[StageSample, ...] = ()
    """The platform's other groups (Knative's KafkaSource and output Trigger), as their dispatchers see them."""
    backlog: PipelineBacklog | None = None
    cost_ms: float = 0.0
    """CPU time this process spent taking the sample."""

    @property
    def platform_lag(self) -> int:
        """Offset lag summed over every group of the backend: what its own consumers see, not comparable
        across backends (a Knative Trigger group counts every event type of the broker topic)."""
        return sum(s.lag for s in (*self.stages, *self.groups))

    @property
    def ready(self) -> int:
        return sum(s.ready for s in self.stages)


@dataclass
class LagSampler:
    reader: OffsetReader
    sources: Sequence[LagSource]
    input_topic: str
    output_topic: str
    dead_letter_topic: str
    start: float = field(default_factory=time.time)
    """Wall-clock zero of the series (the load's start)."""
    _prev: tuple[float, OffsetSnapshot] | None = None
    _timelines: dict[str, TopicTimeline] = field(default_factory=dict)

    def read_offsets(self) -> tuple[float, OffsetSnapshot]:
        """The blocking half (admin round trips): call it from a thread."""
        topics = [self.input_topic, self.output_topic, self.dead_letter_topic, *(s.topic for s in self.sources)]
        snap = self.reader.read(topics, [(s.group, s.topic) for s in self.sources])
        return time.time(), snap

    def sample(self, at: float, snap: OffsetSnapshot, status: Sequence[StageStatus] = (),
               cpu_start: float | None = None, backlog: PipelineBacklog | None = None) -> Sample:
        """The pure half: turn one snapshot (and the backend's status) into a Sample."""
        prev_at, prev = self._prev if self._prev else (at, snap)
        dt = max(at - prev_at, 1e-9)
        for topic in dict.fromkeys(s.topic for s in self.sources):  # time lag is only asked of stage inputs
            self._timelines.setdefault(topic, TopicTimeline()).add(snap.ends[topic], at)
        by_stage = {s.stage: s for s in status}
        stages, groups = [], []
        for src in self.sources:
            key = (src.group, src.topic)
            ends, committed = snap.ends[src.topic], snap.commits[key]
            before = prev.commits.get(key, committed)
            has = committed >= 0
            lags = np.where(has, np.maximum(ends - committed, 0), NO_COMMIT)
            time_lags = self._timelines[src.topic].lags_s(committed, at)
            st = by_stage.get(src.stage)
            (stages if src.role == "stage" else groups).append(StageSample(
                stage=src.stage, lag=int(lags[has].sum()), uncommitted=int(len(has) - has.sum()),
                committed_total=int(committed[has].sum()),
                consume_rate=int((np.maximum(committed, 0) - np.maximum(before, 0)).sum()) / dt,
                time_lag_s=None if np.isnan(time_lags).all() else float(np.nanmax(time_lags)),
                partition_lag=_with_none(lags, has), partition_committed=_with_none(committed, has),
                desired=st.desired if st else 0, ready=st.ready if st else 0, in_flight=st.in_flight if st else 0,
                queued=st.queued if st else 0, retries=st.retries if st else 0, errors=st.errors if st else 0,
                dead_lettered=st.dead_lettered if st else 0, cold_starts=st.cold_starts if st else 0,
                processed=st.processed if st else 0, slots=st.slots if st else None,
            ))

        def end(topic: str, s: OffsetSnapshot) -> int:
            return int(s.ends[topic].sum()) if topic in s.ends else 0

        sample = Sample(
            t=round(at - self.start, 3),
            input_end=end(self.input_topic, snap), produce_rate=(end(self.input_topic, snap) - end(self.input_topic, prev)) / dt,
            output_end=end(self.output_topic, snap), output_rate=(end(self.output_topic, snap) - end(self.output_topic, prev)) / dt,
            dead_letter_end=end(self.dead_letter_topic, snap), stages=tuple(stages), groups=tuple(groups),
            backlog=backlog, cost_ms=(time.process_time() - cpu_start) * 1000 if cpu_start is not None else 0.0,
        )
        if self._prev is None or at > prev_at:
            self._prev = (at, snap)
        return sample

    def take(self, status: Callable[[], Sequence[StageStatus]] | None = None) -> Sample:
        """Read and sample in one blocking call (for tests and simple loops)."""
        cpu = time.process_time()
        at, snap = self.read_offsets()
        return self.sample(at, snap, status() if status else (), cpu)


def _with_none(values: np.ndarray, has: np.ndarray) -> tuple[int | None, ...]:
    """Per-partition values as plain ints, None where the group has no commit."""
    out = values.tolist()
    if not has.all():
        for p in np.flatnonzero(~has).tolist():
            out[p] = None
    return tuple(out)
