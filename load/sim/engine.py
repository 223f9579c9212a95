"""The simulator's time loop: load in, the data plane served, the control planes stepped, 1 s series out.

Design. A fixed time step (`SimConfig.step_s`, 0.1 s by default) and a fluid model with integer counts
(`load.sim.plant`): per step, the orders the profile sends are spread over the partitions (a seeded
multinomial on each partition's share of the keys, `load.sim.keys`), each consumer group finishes what its
dispatcher and ready replicas can serve in the step, and the finished events are appended to the next
group's partitions (minus the first stage's rejections, which go to the dead-letter topic). Commits copy
each group's handled prefix of half an `emulation.commit_interval_s` ago (the average over the commit timer's
unknown phase). The control planes (`load.sim.controllers`)
run the pure policies on the same clock at their own periods (1 s KPA observations, 2 s ticks, the
KEDA/HPA control tick). Samples are taken every second, as the duel's sampler does (at its phase, `--like`). Work per step is
O(partitions) numpy for each busy group, and never depends on the event rate: 80,000 ev/s cost what
10 ev/s cost.

Error bound. Counts are exact: every order sent is, at every step, in exactly one group's pending
partitions, in the output or in the dead-letter topic (conservation holds by construction). Timing is
not exact: an event finishes in the step in which the stage's aggregate service capacity reaches it, so
each hop's completion time is off by at most one step plus its own service time (≤ step_s + service_s
per hop; a pipeline of h hops, ≤ h × step_s + Σ service). Within a stage the order is first-in,
first-out over the whole group (a partition's share is its share of the pending events), so per-partition
skew inside one step is not modeled. End-to-end latency is the group-wide FIFO departure step minus the
send step, plus the stages' no-queueing transit time: exact to ±step_s per hop. Control decisions see
state at step boundaries, so a decision is at most one step late; with the default 0.1 s step this is
under 5 % of the KPA's 2 s tick and under 1 % of KEDA's 5 s polling interval.

Against an emulated run (`simulate --like`, `SimConfig.clocks`/`measured`), the model also takes what that run
recorded: each control plane's clock at the load's start (the HPA's 15 s sync phase against a burst sets its
peak backlog severalfold), and what its data plane took beyond the modeled numbers — the pod start (the
modeled delay plus the replica process's own start), the one real HTTP hop to a replica (held on the
replica's slot) and the transit to the sink (Kafka hops), all measured by the emulation itself.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from load import histograms
from load.completeness import oldest_age_s
from load.profiles import Profile
from load.sim.controllers import FixedControl, KnativeControl, OpenFaasControl, StageControl
from load.sim.keys import partition_weights
from load.sim.model import Backend, SimConfig, StageModel, cumulative_sent, stage_models
from load.sim.plant import GroupQueues, share
from load.timelag import TopicTimeline
from pipeline.topology import Topology

REPORTED_PARTITIONS = 16
"""Per-partition series (and each group's estimated time lag) are reported for at most this many
partitions; beyond, for this many contiguous ranges of partitions (their sums). The model and KEDA's scaler
still see every partition. With uniform keys the partitions of a range are alike, so a range's time lag
stands for its partitions'."""


@dataclass(frozen=True, slots=True)
class GroupSecond:
    """One consumer group at one sample (the fields of `load.sampler.StageSample`)."""

    stage: str
    lag: int
    committed_total: int
    consume_rate: float
    time_lag_s: float | None
    partition_lag: tuple[int, ...]
    partition_committed: tuple[int, ...]
    desired: int
    ready: int
    in_flight: int
    queued: int
    processed: int
    cold_starts: int
    extra: dict[str, float]
    pending: int = 0
    """Events on the group's input not yet handled (queued or in flight): the books' per-group share."""


@dataclass(frozen=True, slots=True)
class PipelineSecond:
    """The pipeline at one sample (the fields of `load.sampler.Sample`)."""

    t: float
    acked: int
    accounted: int
    time_lag_s: float
    input_end: int
    produce_rate: float
    output_end: int
    output_rate: float
    dead_letter_end: int
    stages: tuple[GroupSecond, ...]
    groups: tuple[GroupSecond, ...] = ()

    @property
    def backlog(self) -> int:
        return max(self.acked - self.accounted, 0)

    @property
    def platform_lag(self) -> int:
        return sum(g.lag for g in (*self.stages, *self.groups))


@dataclass
class SimRun:
    """One backend's simulated run: what a duel's BackendRun holds, from the model."""

    backend: Backend
    topology: Topology
    config: SimConfig
    models: list[StageModel]
    seconds: list[PipelineSecond]
    sent: int
    delivered: int
    dead_lettered: int
    e2e_us: str
    """Encoded HdrHistogram of end-to-end latency, µs."""
    sink_seconds: list[dict[str, float]]
    drained: bool
    drain_s: float
    steps: int
    start_s: float
    """Simulated time the backend started before the load (the starting line: initial pods ready)."""

    def control_series(self, stage: str) -> list[dict[str, float]]:
        """The stage's control plane's own view (panic, KEDA metric), one dict per sample."""
        return [g.extra for s in self.seconds for g in s.stages if g.stage == stage]


def _controls(topology: Topology, backend: Backend, start: float,
              clock: Mapping[str, Mapping[str, float | None]]) -> list[StageControl]:
    if backend == "knative":
        return [FixedControl(1), *(KnativeControl(st, topology, start, clock.get(st.name)) for st in topology.stages)]
    if backend == "openfaas":
        return [OpenFaasControl(st, topology, start, clock.get(st.name)) for st in topology.stages]
    return [FixedControl(1) for _ in topology.stages]


def simulate(topology: Topology, profile: Profile, backend: Backend, config: SimConfig = SimConfig(),
             progress: Callable[[float], None] | None = None) -> SimRun:
    """Run `profile` through `topology` on `backend`; `progress` gets the simulated time now and then."""
    dt = config.step_s
    per_second = round(1.0 / dt)
    parts = topology.partitions
    # An emulated run's measured data plane (simulate --like): its pod start and its real replica hop.
    measured = (config.measured or {}).get(backend) or {}
    if measured.get("pod_start_s"):
        topology = topology.with_stage_overrides(emulation={"pod_start_delay_s": float(measured["pod_start_s"])})
    real_hop_s = {st: ms / 1000 for st, ms in (measured.get("replica_hop_ms") or {}).items()}
    models = stage_models(topology, backend, config.invalid_share, real_hop_s)
    queues = [GroupQueues(m, parts) for m in models]
    # The duel's starting line: load begins once the starting pods are ready, so the backend starts at least
    # this long before it (its policies were created then, as the emulated backend's are).
    lead = config.lead_s if config.lead_s is not None else \
        topology.emulation.pod_start_delay_s if backend != "native" else 0.0
    # An emulated run's recorded clocks (simulate --like): the backend started as long before the load as its
    # policies are old, and each control plane is put on the run's phase at the load's start.
    clock = (config.clocks or {}).get(backend) or {}
    if clock:
        lead = max(float(c.get("created_s") or 0.0) for c in clock.values())
    lead_steps = math.ceil(lead / dt - 1e-9)
    start = -lead_steps * dt
    controls = _controls(topology, backend, start, clock)
    first_stage = 1 if backend == "knative" else 0
    load_steps = math.ceil(profile.duration_s / dt - 1e-9)
    sent_by = cumulative_sent(profile, dt, load_steps)
    rng = np.random.default_rng(config.seed)
    weights = partition_weights(config.keys, parts)
    # Commits: each dispatcher commits its handled prefix every commit interval on a timer of its own, which
    # starts with it and drifts by its loop's latency at every commit (pipeline/delivery/dispatcher.py
    # `_consume_loop`), so against the samples, KEDA's polls and the HPA's syncs its phase is unknown. A reading
    # at an unknown phase sees on average the prefix handled half an interval ago: the model commits that,
    # continuously (a fixed phase would put some readings just after every commit, an empty lag at low rates,
    # and KEDA would cool a busy function down to zero).
    commit_delay = max(round(topology.emulation.commit_interval_s / dt), 1) // 2
    timelines = [TopicTimeline() for _ in queues]
    bounds = _report_bounds(parts)

    out_steps: list[int] = []
    dlq_steps: list[int] = []
    seconds: list[PipelineSecond] = []
    # An emulated run's measured end-to-end transit at its baseline, beyond what the model charges (simulate --like).
    extra_s = max(float(measured.get("baseline_e2e_s") or 0.0) - sum(m.transit_s for m in models), 0.0)
    books = _Books(delay_steps=round(extra_s / dt),
                   acked_age_steps=round(float(measured.get("acked_age_s") or 0.0) / dt))
    # Samples every second from the load's start, or at an emulated run's own phase (its sampler's first tick
    # lands where the start line left it): a time to recover read on another grid is up to 1 s off by sampling.
    phase_steps = round(float(measured.get("sample_phase_s") or 0.0) / dt) % per_second
    drained_at: float | None = None
    stop_at: float | None = None
    k = 0
    while True:
        now = (k - lead_steps) * dt
        if k >= lead_steps + phase_steps and (k - lead_steps - phase_steps) % per_second == 0:
            t = round(now, 6)
            sample = _sample(t, queues, controls, first_stage, books, sent_by, dt, timelines, bounds,
                             seconds[-1] if seconds else None)
            seconds.append(sample)
            if progress is not None and int(t) % 30 == 0:
                progress(t)
            if stop_at is None and t >= profile.duration_s - 1e-9:
                if sample.backlog == 0 and sample.platform_lag == 0:
                    drained_at = t
                if drained_at is not None or t >= profile.duration_s + config.drain_timeout_s - 1e-9:
                    stop_at = t + config.settle_s
            if stop_at is not None and t >= stop_at - 1e-9:
                break
        for c, q in zip(controls, queues):
            c.control(now, q)
        i = k - lead_steps
        if 0 <= i < load_steps:
            n = int(sent_by[i]) - books.sent
            if n:
                queues[0].append(rng.multinomial(n, weights), n)
                books.sent += n
        books.step = k
        _serve(controls, queues, dt, books)
        books.arrive()
        out_steps.append(books.delivered)
        dlq_steps.append(books.dead)
        k += 1
        for q in queues:
            q.commit(commit_delay)

    cum_out = np.asarray(out_steps, dtype=np.int64)
    cum_dlq = np.asarray(dlq_steps, dtype=np.int64)
    transit = sum(m.transit_s for m in models)
    e2e, sink_seconds = _latencies(cum_out + cum_dlq, cum_out, cum_dlq, sent_by, lead_steps, dt, per_second, transit)
    end = profile.duration_s
    drain_s = (drained_at - end) if drained_at is not None else config.drain_timeout_s
    return SimRun(backend, topology, config, models, seconds, books.sent, books.delivered, books.dead, e2e,
                  sink_seconds, drained_at is not None, drain_s, k, start)


@dataclass
class _Books:
    """Where the orders are, besides the groups' partitions."""

    sent: int = 0
    delivered: int = 0
    dead: int = 0
    rejected: int = 0
    """Rejected by the first stage so far (the dead-letter topic's count)."""
    delay_steps: int = 0
    """Steps a finished order takes to reach the sink beyond the modeled hops: an emulated run's measured transit
    (simulate --like: its Kafka produce→fetch hops between the stages and to the sink, which the model does not
    otherwise charge); 0 otherwise. Dead-lettered orders are not delayed."""
    transit: deque[tuple[int, int]] = field(default_factory=deque)
    """(step it reaches the sink, orders) of finished orders on their way."""
    step: int = 0
    acked_age_steps: int = 0
    """Steps the acknowledged count is old when a sample reads it: an emulated duel reads the generator's count
    as last reported (simulate --like, `measured["acked_age_s"]`); 0 otherwise."""

    def deliver(self, n: int) -> None:
        if self.delay_steps:
            self.transit.append((self.step + self.delay_steps, n))
        else:
            self.delivered += n

    def arrive(self) -> None:
        while self.transit and self.transit[0][0] <= self.step:
            self.delivered += self.transit.popleft()[1]


def _serve(controls: list[StageControl], queues: list[GroupQueues], dt: float, books: _Books) -> None:
    """One step of the data plane: each group serves what its replicas allow and hands it to the next."""
    for g, (c, q) in enumerate(zip(controls, queues)):
        done = q.step(dt, c.pods.ready * q.model.concurrency, c.activator)
        c.observed(q, dt)
        if done is None:
            continue
        n = int(done.sum())
        if q.model.rejects > 0:
            # The first stage's rejections, spread over the run by its cumulative count (deterministic).
            total = math.floor(q.processed * q.model.rejects + 1e-9)
            r, books.rejected = total - books.rejected, total
            if r:
                done = done - share(done, r, n)
                books.dead += r
                n -= r
        if g + 1 < len(queues):
            queues[g + 1].append(done, n)
        else:
            books.deliver(n)


def _report_bounds(parts: int) -> np.ndarray | None:
    """Start indices of the reported partition ranges (None: every partition is reported)."""
    if parts <= REPORTED_PARTITIONS:
        return None
    return (np.arange(REPORTED_PARTITIONS) * parts) // REPORTED_PARTITIONS


def _reported(values: np.ndarray, bounds: np.ndarray | None) -> tuple[int, ...]:
    return tuple((values if bounds is None else np.add.reduceat(values, bounds)).tolist())


def _sample(t: float, queues: list[GroupQueues], controls: list[StageControl], first_stage: int, books: _Books,
            sent_by: np.ndarray, dt: float, timelines: list[TopicTimeline], bounds: np.ndarray | None,
            prev: PipelineSecond | None) -> PipelineSecond:
    groups = []
    for g, (c, q) in enumerate(zip(controls, queues)):
        lag = q.lag
        committed_total = int(q.committed.sum())
        # kafka-lag-exporter's estimate (load.timelag), on the reported partition ranges.
        ends = np.asarray(_reported(q.end, bounds), dtype=np.int64)
        timelines[g].add(ends, t)
        committed = np.asarray(_reported(q.committed, bounds), dtype=np.int64)
        lags_s = timelines[g].lags_s(committed if q.has_commit.all() else
                                     np.where(np.asarray(_reported(q.has_commit, bounds)) > 0, committed, -1), t)
        before = (*prev.groups, *prev.stages)[g].committed_total if prev else committed_total
        in_flight = q.in_flight if math.isfinite(q.in_flight) else 0.0
        groups.append(GroupSecond(
            stage=q.model.name, lag=int(lag.sum()), committed_total=committed_total,
            consume_rate=float(committed_total - before),
            time_lag_s=None if np.isnan(lags_s).all() else float(np.nanmax(lags_s)),
            partition_lag=_reported(lag, bounds), partition_committed=_reported(q.committed, bounds),
            desired=c.desired, ready=c.pods.ready, in_flight=round(in_flight), queued=round(c.queued(q)),
            processed=q.processed, cold_starts=c.pods.cold_starts, extra=c.extra(), pending=q.pending))
    accounted = books.delivered + books.dead

    def intended_s(seq: int) -> float | None:
        # The step the order was sent in, and its place within the step (the schedule spreads a step evenly).
        i = int(np.searchsorted(sent_by, seq, side="right"))
        if i >= len(sent_by):
            return None
        lo, hi = int(sent_by[i - 1]) if i else 0, int(sent_by[i])
        return (i + (seq - lo) / max(hi - lo, 1)) * dt

    age = oldest_age_s(accounted, intended_s, t) if books.sent > accounted else 0.0
    # The acknowledged count as the duel reads it (simulate --like): the generator's as last reported.
    j = round(t / dt) - books.acked_age_steps
    acked = books.sent if not books.acked_age_steps else int(sent_by[min(j, len(sent_by)) - 1]) if j > 0 else 0
    return PipelineSecond(
        t=t, acked=acked, accounted=accounted, time_lag_s=round(age, 3), input_end=books.sent,
        produce_rate=float(books.sent - prev.input_end) if prev else 0.0, output_end=books.delivered,
        output_rate=float(books.delivered - prev.output_end) if prev else 0.0, dead_letter_end=books.dead,
        stages=tuple(groups[first_stage:]), groups=tuple(groups[:first_stage]))


def _latencies(cum_dep: np.ndarray, cum_out: np.ndarray, cum_dlq: np.ndarray, sent_by: np.ndarray,
               lead_steps: int, dt: float, per_second: int, transit_s: float) -> tuple[str, list[dict[str, Any]]]:
    """End-to-end latency by group-wide FIFO: the orders leaving in step j are the next ones sent, so each
    (send step, leave step) pair gives a count and a latency; plus the per-second sink series."""
    h = histograms.new_histogram()
    prev_dep = 0
    n_seconds = (len(cum_dep) - lead_steps + per_second - 1) // per_second
    max_ms = [0.0] * max(n_seconds, 0)
    for j in np.flatnonzero(np.diff(np.concatenate([[0], cum_dep]))).tolist():
        lo, hi = prev_dep, int(cum_dep[j])
        prev_dep = hi
        i = int(np.searchsorted(sent_by, lo, side="right"))
        while lo < hi and i < len(sent_by):
            upto = min(hi, int(sent_by[i]))
            if upto > lo:
                wait = max(j - lead_steps - i, 0) * dt
                us = int((wait + transit_s) * 1_000_000)
                h.record_value(max(us, histograms.LOWEST_US), upto - lo)
                sec = (j - lead_steps) // per_second
                if 0 <= sec < len(max_ms):
                    max_ms[sec] = max(max_ms[sec], us / 1000)
                lo = upto
            i += 1
    out_s, dlq_s = _per_second(cum_out, lead_steps, per_second), _per_second(cum_dlq, lead_steps, per_second)
    sink = [{"t": s, "delivered": int(out_s[s]), "dead_lettered": int(dlq_s[s]), "duplicated": 0,
             "max_e2e_ms": round(max_ms[s], 3)} for s in range(min(len(out_s), len(max_ms)))]
    return histograms.encode(h), sink


def _per_second(cum: np.ndarray, lead_steps: int, per_second: int) -> np.ndarray:
    """Events per second of the load's clock from a per-step cumulative count."""
    after = cum[lead_steps:]
    if not len(after):
        return np.zeros(0, dtype=np.int64)
    base = int(cum[lead_steps - 1]) if lead_steps else 0
    ends = after[per_second - 1::per_second]
    if len(after) % per_second:
        ends = np.concatenate([ends, after[-1:]])
    return np.diff(np.concatenate([[base], ends]))
