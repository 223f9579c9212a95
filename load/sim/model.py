"""What a simulated run models, read from the topology: per-stage service and dispatch, and the load.

Every number here comes from `pipeline.yaml` (stage `concurrency`/`latency_ms`/`max_replicas`/`delivery`,
`emulation.*`), exactly as the emulated backends read it, so a simulation and an emulation of one topology
run the same plant. The load is the duel's profile (`load.profiles`), integrated per time step with the
arithmetic of `load.profiles.schedule`, so both send the same number of orders by every moment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from load.profiles import Profile
from pipeline.keys import KeySpec
from pipeline.topology import Stage, Topology

Backend = Literal["knative", "openfaas", "native"]
SIMULATED_BACKENDS: tuple[Backend, ...] = ("knative", "openfaas", "native")
PROFILE_GRID_S = 0.01
"""`load.profiles.schedule`'s default step: the rate is read at this resolution (exact for piecewise-constant
profiles, as the generator's schedule is)."""


class SimError(ValueError):
    """Settings a simulation cannot run with; the message is one line naming the setting."""


@dataclass(frozen=True)
class SimConfig:
    """How the simulator runs (not what it models: that is the topology)."""

    step_s: float = 0.1
    """The fixed time step: the fluid model's resolution (see `load.sim.engine` for the error bound)."""
    seed: int = 42
    """Seeds the spread of each step's orders over partitions (a multinomial on the partitions' key shares)."""
    invalid_share: float = 0.1
    """Share of orders the first stage rejects to the dead-letter topic (the generator's invalid share)."""
    keys: KeySpec = KeySpec()
    """How the orders' keys are drawn, hence how they spread over partitions (`load.sim.keys`)."""
    drain_timeout_s: float = 180.0
    """After the load, run at most this long for the pipeline to empty (the duel's drain window)."""
    settle_s: float = 45.0
    """After the drain, keep sampling this long to see replicas scale back (the duel's settle period)."""
    lead_s: float | None = None
    """How long the backend runs before the load starts: its policies' clocks start then, which sets where
    KEDA's polls and the HPA's 15 s syncs fall against a burst. None: the pod start delay (the starting pods
    are just ready). An emulated duel's is its starting line plus the generator's start, a few seconds that
    vary from run to run (the manifest's start_line)."""
    clocks: Mapping[str, Mapping[str, Mapping[str, float | None]]] | None = None
    """Per backend and stage, where an emulated run's control-plane clocks stood at its load's start (the
    manifest's start_line `control_clock`: KPA created/observed/next tick; KEDA's next poll and the HPA's next
    sync). When given for a backend, its lead is the clock's age and its policies are put on the same phase at
    the load's start, instead of `lead_s`."""
    measured: Mapping[str, Mapping[str, Any]] | None = None
    """Per backend, what an emulated run's data plane measured beyond the modeled numbers (its calibration's
    `pod_start_s` and per-stage `replica_hop_ms`, `pipeline.emulation.measured_data_plane`): `simulate --like`
    runs the same pod start and adds the real HTTP hop to each replica's slot time, as the emulation pays them;
    and samples at the run's own phase in each second (`sample_phase_s`), so both read recovery on one grid."""

    def __post_init__(self) -> None:
        ratio = self.step_s / PROFILE_GRID_S
        if not 0.01 <= self.step_s <= 1.0 or abs(ratio - round(ratio)) > 1e-9:
            raise SimError(f"step must be a multiple of {PROFILE_GRID_S:g} s between 0.01 and 1 s, not {self.step_s:g}")
        per_second = 1.0 / self.step_s
        if abs(per_second - round(per_second)) > 1e-9:
            raise SimError(f"step must divide 1 s (samples are taken every second), not {self.step_s:g}")
        if self.lead_s is not None and not 0 <= self.lead_s <= 3600:
            raise SimError(f"start lead must be within 0..3600 s, not {self.lead_s:g}")
        if not 0 <= self.invalid_share <= 1:
            raise SimError(f"invalid share must be within 0..1, not {self.invalid_share:g}")


@dataclass(frozen=True)
class StageModel:
    """One consumer group and what sits behind it, as the backend runs it."""

    name: str
    concurrency: float
    """Events one ready replica serves at once (inf: no replica limit, e.g. the KafkaSource)."""
    service_s: float
    """Time a replica slot is held per event: the stage's latency_ms plus the in-pod hops taken while the
    slot is reserved (Knative's queue-proxy and, while in the path, activator: pipeline/knative/revision.py
    `handle` reserves the pod before those hops)."""
    after_s: float
    """Time the dispatcher's in-flight slot is held beyond the replica slot: hops outside the pod (the
    OpenFaaS gateway + watchdog hop before the call, pipeline/openfaas/gateway.py `invoke`; the reply's broker
    ingress hop on Knative, pipeline/knative/trigger.py)."""
    max_in_flight: float
    """Events the dispatcher (Trigger dispatcher, connector, Faust agent) has in flight at most."""
    ordered: bool
    """Ordered delivery: at most one event in flight per partition (pipeline/delivery/dispatcher.py)."""
    rejects: float = 0.0
    """Share of the stage's events that go to the dead-letter topic instead of the next stage."""
    activator_s: float = 0.0
    """Knative only: extra slot time while the activator is in the path (emulation.hops.activator_ms)."""
    queue_per_slot: float = math.inf
    """Knative only: queue-proxy depth per containerConcurrency slot when the activator is out of the path
    (knative.md §3.2); beyond it requests are refused and dispatched again."""

    @property
    def transit_s(self) -> float:
        """An event's time through the stage when nothing queues (no activator)."""
        return self.service_s + self.after_s


def stage_models(topology: Topology, backend: Backend, invalid_share: float,
                 real_hop_s: Mapping[str, float] | None = None) -> list[StageModel]:
    """The consumer groups in pipeline order: Knative's KafkaSource first (a group of its own, ordered,
    costing the broker-ingress hop, pipeline/knative/source.py), then one per stage. `real_hop_s`: per stage,
    an emulated run's measured wall time of its one real HTTP hop to a replica, held on the replica's slot
    (Revision.handle reserves the pod, Gateway.invoke the watchdog's slot, for the whole call)."""
    emu = topology.emulation
    real = real_hop_s or {}
    hops = emu.hops
    out: list[StageModel] = []
    if backend == "knative":
        out.append(StageModel("source", math.inf, 0.0, hops.broker_ingress_ms / 1000, math.inf, ordered=True))
    for i, st in enumerate(topology.stages):
        # The first stage (validate) rejects the invalid orders to the dead-letter topic (functions/validate.py).
        rejects = invalid_share if i == 0 else 0.0
        ordered = st.delivery.ordering == "ordered"
        if backend == "knative":
            out.append(StageModel(st.name, st.concurrency,
                                  st.latency_s + hops.queue_proxy_ms / 1000 + real.get(st.name, 0.0),
                                  hops.broker_ingress_ms / 1000, emu.knative.trigger_max_in_flight, ordered, rejects,
                                  hops.activator_ms / 1000, emu.knative.queue_depth_per_slot))
        elif backend == "openfaas":
            # ConnectorConfig.for_stage: connector_in_flight, 0 = concurrency × max_replicas.
            in_flight = emu.openfaas.connector_in_flight or st.concurrency * st.max_replicas
            out.append(StageModel(st.name, st.concurrency, st.latency_s + real.get(st.name, 0.0),
                                  (hops.gateway_ms + hops.watchdog_ms) / 1000,
                                  in_flight, ordered, rejects))
        else:
            out.append(StageModel(st.name, native_slots(st), st.latency_s, 0.0, native_slots(st), ordered, rejects))
    return out


def native_slots(stage: Stage) -> int:
    """pipeline/native/app.py `agent_concurrency`: the serverless backends' full capacity on one worker
    (not imported: that module loads Faust)."""
    return stage.concurrency * stage.max_replicas


def with_partitions(topology: Topology, partitions: int | None) -> Topology:
    """The topology with `--partitions N` applied (a topology-wide key, as `--set partitions=N`)."""
    if partitions is None or partitions == topology.partitions:
        return topology
    return topology.with_stage_overrides(partitions=partitions)


def cumulative_sent(profile: Profile, step_s: float, steps: int) -> np.ndarray:
    """Orders sent by the end of each load step: int64[steps], as `load.profiles.schedule` sends them.

    `schedule` sends order k once the integral of the rate reaches k (within 1e-9); integrating the same
    0.01 s samples of the rate gives, at every step edge, exactly the count of orders it has sent by then.
    """
    n_grid = math.ceil(profile.duration_s / PROFILE_GRID_S - 1e-9)
    starts = np.arange(n_grid) * PROFILE_GRID_S
    widths = np.minimum(PROFILE_GRID_S, profile.duration_s - starts)
    rates = np.fromiter((profile.rate(float(t)) for t in starts), dtype=np.float64, count=n_grid)
    owed = np.concatenate([[0.0], np.cumsum(np.maximum(rates, 0.0) * widths)])
    per = round(step_s / PROFILE_GRID_S)
    edges = np.minimum(np.arange(1, steps + 1) * per, n_grid)
    at = owed[edges] - 1e-9
    return np.where(at >= 0, np.floor(at) + 1, 0).astype(np.int64)
