"""The modeled data plane: one consumer group's partitions, its dispatcher and its replicas, in time steps.

A fluid model with integer counts. Per partition the group's input topic has a log end, a handled count
(the contiguous prefix finished: offsets are committed only below fully handled events on every backend,
pipeline/delivery/dispatcher.py) and a committed offset, the handled count of half a commit interval
(`emulation.commit_interval_s`) ago: what a reading at an unknown phase of the commit timer sees on average. Events are not tracked one by one: each step the stage finishes

    rate = min(in_flight / (service + after), slots / service)          (Little's law, both servers)

events, where `in_flight` is what the dispatcher has out (its cap, or one per partition when ordered) and
`slots` the ready replicas' concurrency; a fractional remainder carries to the next step, so no event is
created or lost. The finished events are taken from the partitions in proportion to their pending events
(unordered dispatchers fetch from every assigned partition), or evenly from the partitions with work
(ordered: one in flight per partition).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from load.sim.model import StageModel


class PartitionView(NamedTuple):
    """One partition as KEDA's kafka scaler reads it (`pipeline.autoscale.keda.PartitionOffsets`)."""

    partition: int
    log_end: int
    committed: int | None


def share(pending: np.ndarray, n: int, total: int) -> np.ndarray:
    """n events taken from the partitions in proportion to their pending counts, never more than a partition
    holds; `total` is pending.sum(). Integer arithmetic on the cumulative counts (each partition takes
    floor(cum_i·n/total) − floor(cum_(i−1)·n/total) ≤ ceil(pending_i·n/total) ≤ pending_i), so the shares sum
    to exactly n."""
    if n >= total:
        return pending.copy()
    upto = np.cumsum(pending) * n // total
    taken = upto.copy()
    taken[1:] -= upto[:-1]
    return taken


def even(pending: np.ndarray, n: int, total: int) -> np.ndarray:
    """n events taken evenly from the partitions with work (ordered delivery), never more than one holds."""
    if n >= total:
        return pending.copy()
    taken = np.zeros_like(pending)
    left = n
    while left > 0:
        room = pending - taken
        active = np.flatnonzero(room > 0)
        each = left // len(active)
        if each == 0:  # fewer events than partitions with work: the lowest-numbered go first
            taken[active[:left]] += 1
            break
        add = np.minimum(room[active], each)
        taken[active] += add
        left -= int(add.sum())
    return taken


@dataclass
class GroupQueues:
    """A consumer group on its input topic: per-partition log end, handled and committed counts."""

    model: StageModel
    partitions: int
    end: np.ndarray = field(init=False)
    handled: np.ndarray = field(init=False)
    committed: np.ndarray = field(init=False)
    has_commit: np.ndarray = field(init=False)
    pending: int = 0
    """Events appended and not yet handled, over all partitions."""
    processed: int = 0
    """Events handled so far (the stage's cumulative processed count)."""
    in_flight: float = 0.0
    """Events the dispatcher had out during the last step."""
    _credit: float = 0.0
    _handled_before: deque[np.ndarray] = field(default_factory=deque)

    def __post_init__(self) -> None:
        p = self.partitions
        self.end = np.zeros(p, dtype=np.int64)
        self.handled = np.zeros(p, dtype=np.int64)
        self.committed = np.zeros(p, dtype=np.int64)
        self.has_commit = np.zeros(p, dtype=bool)

    def append(self, counts: np.ndarray, total: int) -> None:
        if total:
            self.end += counts
            self.pending += total

    def step(self, dt: float, slots: float, activator: bool = False) -> np.ndarray | None:
        """Serve one step with `slots` replica slots ready; returns the events finished per partition."""
        m = self.model
        if self.pending == 0:
            self.in_flight, self._credit = 0.0, 0.0
            return None
        pending = self.end - self.handled
        busy = int(np.count_nonzero(pending)) if m.ordered else self.pending
        in_flight = min(m.max_in_flight, busy)
        if activator:  # knative.md §3.3: the activator buffers what no replica slot takes
            service = m.service_s + m.activator_s
        else:
            service = m.service_s
            if math.isfinite(m.queue_per_slot):
                # knative.md §3.2: out of the activator's path each pod queues 10 × CC; beyond, 503 and redispatch.
                in_flight = min(in_flight, slots * (1 + m.queue_per_slot))
        rate = _rate(in_flight, service + m.after_s) if slots > 0 else 0.0
        rate = min(rate, _rate(slots, service))
        self._credit += rate * dt
        n = min(int(self._credit), self.pending) if math.isfinite(self._credit) else self.pending
        self._credit = 0.0 if n == self.pending or not math.isfinite(self._credit) else self._credit - n
        done = (even if m.ordered else share)(pending, n, self.pending) if n > 0 else None
        if done is not None:
            n = int(done.sum())  # the events really taken: the books balance by construction
            self.handled += done
            self.pending -= n
            self.processed += n
        # Concurrency over the step by Little's law: those served, for the time each held the dispatcher's slot,
        # plus what is still waiting, up to what the dispatcher has out (what queue-proxy/activator report).
        self.in_flight = min(in_flight, n / dt * (service + m.after_s) + self.pending)
        return done

    def commit(self, delay_steps: int = 0) -> None:
        """Called every step: every partition's committed offset moves to its handled prefix of `delay_steps`
        steps ago (half a commit interval: what a reading at an unknown phase of the commit timer sees on
        average, `load.sim.engine`)."""
        self._handled_before.append(self.handled.copy())
        if len(self._handled_before) <= delay_steps:
            return
        np.copyto(self.committed, self._handled_before.popleft())
        self.has_commit |= self.committed > 0

    @property
    def lag(self) -> np.ndarray:
        """Per-partition offset lag (log end − committed; a partition without a commit counts from 0, as an
        `earliest` group on a fresh topic reads it)."""
        return self.end - self.committed

    def views(self) -> list[PartitionView]:
        """The partitions as KEDA reads them: no commit yet is None (kafka_scaler.go `getLagForPartition`)."""
        commits = self.committed.tolist()
        if not self.has_commit.all():
            for p in np.flatnonzero(~self.has_commit).tolist():
                commits[p] = None
        return list(map(PartitionView._make, zip(range(self.partitions), self.end.tolist(), commits)))


def _rate(servers: float, seconds: float) -> float:
    if servers <= 0:
        return 0.0
    return math.inf if seconds <= 0 else servers / seconds


@dataclass
class Pods:
    """A stage's pods: ready ones, and starting ones with the moment each becomes ready.

    A new pod is ready `start_delay_s` after it was asked for (`emulation.pod_start_delay_s`, the
    scheduling + container start both emulations sleep before a replica process starts). A pod scaled away
    leaves the routing at once; starting pods go first: the oldest on Knative (Revision._scale sorts the
    not-ready first, stably), the newest on OpenFaaS (FunctionReplicas.scale cancels the highest serial).
    """

    start_delay_s: float
    drop_oldest_starting: bool = False
    ready: int = 0
    starting: list[float] = field(default_factory=list)
    cold_starts: int = 0

    @property
    def live(self) -> int:
        return self.ready + len(self.starting)

    def scale(self, want: int, now: float) -> None:
        want = max(want, 0)
        while self.live < want:
            self.starting.append(now + self.start_delay_s)
        while self.live > want:
            if self.starting:
                self.starting.pop(0 if self.drop_oldest_starting else -1)
            else:
                self.ready -= 1

    def advance(self, now: float) -> None:
        if self.starting and self.starting[0] <= now + 1e-9:
            up = sum(1 for at in self.starting if at <= now + 1e-9)
            self.starting = self.starting[up:]
            self.ready += up
            self.cold_starts += up
