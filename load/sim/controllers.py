"""Each backend's control plane on simulated time: the policy objects the emulation drives, driven alike.

- Knative (pipeline/knative/revision.py `_autoscale`, `_poke`): one `PodAutoscaler` per stage; every second
  it observes the revision's time-averaged concurrency (requests in flight plus queued: what queue-proxies
  and the activator report, knative.md §3.3), every `emulation.knative.tick_s` it decides; a request at
  scale 0 pokes a decision at once (MultiScaler.Poke). Its replicas are what the Deployment is scaled to.
- OpenFaaS (pipeline/openfaas/backend.py `_control_loop`): every `emulation.openfaas.control_tick_s` each
  stage's `ScaledObjectPolicy` is stepped when it wants offsets, with the connector group's per-partition
  log end and committed offsets; the gateway scales a function at 0 to max(min, 1) when a request arrives
  (pipeline/openfaas/gateway.py `_scale_from_zero`, openfaas-keda.md §3.4).
- Native: one Faust worker per stage group, never scaled (pipeline/native/backend.py).

Times are seconds on the simulation's clock; the policies never see anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from pipeline.autoscale.kpa import KpaSettings, PodAutoscaler, ScaleDecision
from pipeline.autoscale.keda import ScaledObjectPolicy
from pipeline.topology import Stage, Topology

from load.sim.plant import GroupQueues, Pods

_EPS = 1e-9


class StageControl(Protocol):
    pods: Pods

    @property
    def desired(self) -> int: ...

    @property
    def activator(self) -> bool:
        """Knative: the activator is in the request path (its hop applies, it buffers)."""
        ...

    def control(self, now: float, queue: GroupQueues) -> None:
        """Decide at `now`, before the step is served."""
        ...

    def observed(self, queue: GroupQueues, dt: float) -> None:
        """What the step just served showed the control plane."""
        ...

    def queued(self, queue: GroupQueues) -> float:
        """Requests held in front of the replicas (StageStatus.queued): the activator's buffer, the gateway's
        hold while scaling from zero."""
        ...

    def extra(self) -> dict[str, float]: ...


class KnativeControl:
    def __init__(self, stage: Stage, topology: Topology, start: float,
                 clock: Mapping[str, float | None] | None = None) -> None:
        emu = topology.emulation
        # KnativeBackend: the stage's KPA settings with the emulation's scale-to-zero grace period.
        settings = replace(KpaSettings.for_stage(stage),
                           scale_to_zero_grace_period_s=emu.knative.scale_to_zero_grace_period_s)
        self.kpa = PodAutoscaler(settings, now=start)
        self.pods = Pods(emu.pod_start_delay_s, drop_oldest_starting=True)
        self.last: ScaleDecision | None = None
        self._tick_s = emu.knative.tick_s
        self._area, self._since = 0.0, start
        self._next_observe, self._next_tick = start + 1.0, start + self._tick_s
        self.pods.scale(self.kpa.tick(start, 0).replicas, start)  # Revision.start
        self._clock = clock

    def _at_load_start(self) -> None:
        """An emulated run's KPA clock at its load's start (Revision.control_clock): the last 1 s observation and
        the next 2 s tick; the emulation's loop observes a second after the last one (Revision._autoscale)."""
        c, self._clock = self._clock, None
        if c is None:
            return
        since = float(c.get("last_observe_s") or 0.0)
        self._since, self._next_observe = since, since + 1.0
        self._next_tick = float(c.get("next_tick_s") or self._tick_s)
    @property
    def desired(self) -> int:
        return self.kpa.replicas

    @property
    def activator(self) -> bool:
        return self.pods.ready == 0 or self.last is None or self.last.activator_in_path

    def control(self, now: float, queue: GroupQueues) -> None:
        if self._clock is not None and now >= -_EPS:
            self._at_load_start()
        self.pods.advance(now)
        if self.kpa.replicas == 0 and queue.pending > 0:
            # Revision._poke: a request at scale 0 records its concurrency (at least 1) and decides at once.
            self.kpa.observe(now, max(min(queue.model.max_in_flight, queue.pending), 1))
            self._decide(now)
        if now >= self._next_observe - _EPS:
            self.kpa.observe(now, self._area / max(now - self._since, 1e-3))
            self._area, self._since = 0.0, now
            self._next_observe += 1.0
            if now >= self._next_tick - _EPS:
                self._decide(now)
                self._next_tick = now + self._tick_s

    def _decide(self, now: float) -> None:
        self.last = self.kpa.tick(now, self.pods.ready)
        self.pods.scale(self.last.replicas, now)

    def observed(self, queue: GroupQueues, dt: float) -> None:
        self._area += queue.in_flight * dt  # time-weighted concurrency of the current second

    def queued(self, queue: GroupQueues) -> float:
        # Revision.queued: the activator's buffer, what no replica slot takes while it is in the path.
        return max(queue.in_flight - self.pods.ready * queue.model.concurrency, 0.0) if self.activator else 0.0

    def extra(self) -> dict[str, float]:
        last = self.last
        return {"panic": float(bool(last and last.panic)), "activator_in_path": float(self.activator),
                "excess_burst_capacity": float(last.excess_burst_capacity if last else 0)}


class OpenFaasControl:
    def __init__(self, stage: Stage, topology: Topology, start: float,
                 clock: Mapping[str, float | None] | None = None) -> None:
        emu = topology.emulation
        self.stage = stage
        self.policy = ScaledObjectPolicy.for_stage(stage, now=start, hpa_sync_period_s=emu.openfaas.hpa_sync_period_s,
                                                   ce_cap=emu.openfaas.ce_cap)
        self.pods = Pods(emu.pod_start_delay_s)
        self._desired = max(stage.initial_replicas, stage.min_replicas)  # OpenFaasBackend.starting_replicas
        self.pods.scale(self._desired, start)
        self._tick_s = emu.openfaas.control_tick_s
        self._next = start
        self._clock = clock

    def _at_load_start(self, now: float) -> None:
        """An emulated run's KEDA and HPA clocks at its load's start (OpenFaasBackend.control_clock): the next
        poll and the next 15 s sync fall where they fell there (the phase against a burst sets its peak)."""
        c, self._clock = self._clock, None
        if c is None:
            return
        if c.get("next_poll_s") is not None:
            self.policy.loop.next_poll = now + float(c["next_poll_s"])  # type: ignore[arg-type]
        if c.get("next_sync_s") is not None:
            self.policy.hpa.next_sync = now + float(c["next_sync_s"])  # type: ignore[arg-type]
        self._next = now

    @property
    def desired(self) -> int:
        return self._desired

    @property
    def activator(self) -> bool:
        return False

    def control(self, now: float, queue: GroupQueues) -> None:
        if self._clock is not None and now >= -_EPS:
            self._at_load_start(0.0)
        self.pods.advance(now)
        if self._desired == 0 and queue.pending > 0:
            self._scale(max(self.stage.min_replicas, 1), now)  # the gateway's scale from zero
        if now < self._next - _EPS:
            return
        self._next += self._tick_s
        if self.policy.wants_offsets(now, self._desired):
            decision = self.policy.step(now, queue.views(), self._desired)
            if decision.replicas != self._desired:
                self._scale(decision.replicas, now)

    def _scale(self, replicas: int, now: float) -> None:
        self._desired = replicas
        self.pods.scale(replicas, now)

    def observed(self, queue: GroupQueues, dt: float) -> None:
        pass

    def queued(self, queue: GroupQueues) -> float:
        # Gateway.held: requests waiting for the first replica of a function scaled from zero.
        return queue.in_flight if self.pods.ready == 0 else 0.0

    def extra(self) -> dict[str, float]:
        metric = self.policy.last_metric
        return {} if metric is None else {"keda_metric": float(metric.total_lag), "keda_active": float(metric.active)}


class FixedControl:
    """A group with a fixed number of ready replicas: the native workers, and Knative's KafkaSource."""

    def __init__(self, replicas: int) -> None:
        self.pods = Pods(0.0, ready=replicas)

    @property
    def desired(self) -> int:
        return self.pods.ready

    @property
    def activator(self) -> bool:
        return False

    def control(self, now: float, queue: GroupQueues) -> None:
        pass

    def observed(self, queue: GroupQueues, dt: float) -> None:
        pass

    def queued(self, queue: GroupQueues) -> float:
        return 0.0

    def extra(self) -> dict[str, float]:
        return {}
