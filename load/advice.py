"""Settings advice: sweep a backend's autoscaler settings in the simulator, recommend the cheapest that meet the SLOs.

Each trial is one simulated run (`load.sim`) of the topology with the trial's settings applied to every stage,
judged by the duel's own summary and SLO code (`load.summary.backend_summary`, `load.slo.evaluate`); its cost
is the run's replica-seconds (the headline cost proxy). The search is a grid over the two settings that decide
how fast a backend scales out (KEDA: lagThreshold × pollingInterval; KPA: target × window), then a greedy pass
over the others one at a time from the best trial so far (the cheapest that meets every SLO, else the one
closest to the first SLO). Deterministic: the same topology, profile, SLOs and seed give the same advice.

Each trial runs at `PHASES` start leads spread over one control period (the HPA's sync period on OpenFaaS, the
KPA's tick on Knative) and is judged at its worst: where the HPA's 15 s syncs fall against a burst is not
something a user chooses (it follows from when the ScaledObject was created), and it moves the peak backlog
severalfold, so a setting that meets an SLO at one phase only is no recommendation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any

import yaml

from load.profiles import Profile
from load.recovery import RecoveryRules
from load.sim.engine import simulate
from load.sim.model import Backend, SimConfig
from load.simulation import NO_INSTRUMENT, backend_run
from load.slo import Slo, SloResult, evaluate
from load.summary import backend_summary
from pipeline.knative.manifests import kpa_annotations
from pipeline.openfaas.render import RenderOptions, scaled_object
from pipeline.topology import Stage, Topology


@dataclass(frozen=True)
class Knob:
    """One setting the sweep varies: its `--set` key, the values tried, and its upstream name."""

    key: str
    values: tuple[Any, ...]
    upstream: str


# openfaas-keda.md §5.1-§5.2 (ScaledObject, kafka trigger), §5.5 (HPA behavior).
KEDA_PRIMARY = (Knob("keda.lag_threshold", (5, 10, 20, 50, 100, 200), "lagThreshold"),
                Knob("keda.polling_interval_s", (1, 5, 15, 30), "pollingInterval"))
KEDA_SECONDARY = (Knob("keda.cooldown_period_s", (30, 60, 300), "cooldownPeriod"),
                  Knob("keda.activation_lag_threshold", (0, 10, 100), "activationLagThreshold"),
                  Knob("keda.limit_to_partitions_with_lag", (False, True), "limitToPartitionsWithLag"),
                  Knob("keda.scale_down_stabilization_s", (0, 60, 300),
                       "behavior.scaleDown.stabilizationWindowSeconds"))
# knative.md §3.1 (autoscaling.knative.dev/ annotations).
KPA_PRIMARY = (Knob("knative.target", (1, 2, 4, 8, 16), "autoscaling.knative.dev/target"),
               Knob("knative.window_s", (10, 30, 60, 120), "autoscaling.knative.dev/window"))
KPA_SECONDARY = (Knob("knative.target_utilization", (0.5, 0.7, 0.9),
                      "autoscaling.knative.dev/target-utilization-percentage"),
                 Knob("knative.panic_threshold_percentage", (150, 200, 400),
                      "autoscaling.knative.dev/panic-threshold-percentage"),
                 Knob("knative.scale_down_delay_s", (0, 30, 120), "autoscaling.knative.dev/scale-down-delay"),
                 Knob("min_replicas", (0, 1, 2), "autoscaling.knative.dev/min-scale"))
KNOBS: dict[str, tuple[tuple[Knob, ...], tuple[Knob, ...]]] = {
    "openfaas": (KEDA_PRIMARY, KEDA_SECONDARY), "knative": (KPA_PRIMARY, KPA_SECONDARY)}


@dataclass(frozen=True)
class Trial:
    settings: dict[str, Any]
    """`--set` key -> value, for every knob of the backend."""
    cost: float
    """Replica-seconds over the run."""
    metric: float | None
    """The first SLO's metric."""
    results: tuple[SloResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


@dataclass
class Advice:
    backend: Backend
    slos: tuple[Slo, ...]
    trials: list[Trial]
    best: Trial
    topology: Topology
    """The topology with the best trial's settings."""
    warnings: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return self.best.passed

    def set_args(self) -> list[str]:
        """The best settings as `--set` arguments, to run them back through `lagduel duel`."""
        return [f"{k}={_yaml_scalar(v)}" for k, v in self.best.settings.items()]


def nested(settings: dict[str, Any]) -> dict[str, Any]:
    """{"keda.lag_threshold": 20} -> {"keda": {"lag_threshold": 20}} (what with_stage_overrides takes)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        node = out
        *path, leaf = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def current(stage: Stage, knobs: Iterable[Knob]) -> dict[str, Any]:
    """The topology's own value of each knob (the first stage's; the sweep sets every stage alike)."""
    out = {}
    for k in knobs:
        node: Any = stage
        for part in k.key.split("."):
            node = getattr(node, part)
        out[k.key] = node
    return out


PHASES = 5
"""Start leads per trial, spread evenly over one control period."""


def leads(topology: Topology, backend: Backend, config: SimConfig, phases: int = PHASES) -> list[float]:
    """The start leads a trial runs at: the configured one (default: the pod start delay) plus fractions of the
    backend's control period (openfaas: the HPA sync period; knative: the KPA tick)."""
    emu = topology.emulation
    base = config.lead_s if config.lead_s is not None else emu.pod_start_delay_s
    period = emu.openfaas.hpa_sync_period_s if backend == "openfaas" else emu.knative.tick_s
    return [round(base + period * i / phases, 2) for i in range(phases)]


def trial(topology: Topology, profile: Profile, backend: Backend, settings: dict[str, Any], slos: Sequence[Slo],
          config: SimConfig, rules: RecoveryRules, phases: int = PHASES) -> Trial:
    """The settings at every phase of `leads`: the SLO results and metric of the worst phase, the mean cost."""
    topo = topology.with_stage_overrides(**nested(settings))
    worst: Trial | None = None
    costs = []
    for lead in leads(topo, backend, config, phases):
        run = backend_run(simulate(topo, profile, backend, replace(config, lead_s=lead)), "advise", profile)
        headline = backend_summary(run, profile.disturbance(), rules, NO_INSTRUMENT)["headline"]
        costs.append(float(headline["replica_seconds"]))
        t = Trial(dict(settings), 0.0, headline.get(slos[0].metric) if slos else None,
                  tuple(evaluate(slos, headline)))
        if worst is None or (worst.passed and not t.passed) or (t.passed == worst.passed and _miss_or_margin(t, slos)
                                                                > _miss_or_margin(worst, slos)):
            worst = t
    assert worst is not None
    return replace(worst, cost=round(sum(costs) / len(costs), 1))


def _miss_or_margin(t: Trial, slos: Sequence[Slo]) -> float:
    """How bad the first SLO's metric is: larger is worse (the value itself for < and <=, its negative for >)."""
    if t.metric is None or not slos:
        return math.inf
    return t.metric if slos[0].op in ("<", "<=") else -t.metric


def better(a: Trial, b: Trial, slos: Sequence[Slo]) -> bool:
    """Whether `a` is a better recommendation than `b`: meets the SLOs where b does not, else cheaper when both
    do, else closer to the first SLO's threshold."""
    if a.passed != b.passed:
        return a.passed
    if a.passed:
        return a.cost < b.cost
    return _miss(a, slos) < _miss(b, slos)


def _miss(t: Trial, slos: Sequence[Slo]) -> float:
    """How far the first SLO's metric is on the wrong side of its threshold (inf: not measured)."""
    if t.metric is None or not slos:
        return math.inf
    s = slos[0]
    return max(t.metric - s.threshold, 0.0) if s.op in ("<", "<=") else max(s.threshold - t.metric, 0.0)


def advise(topology: Topology, profile: Profile, backend: Backend, slos: Sequence[Slo],
           config: SimConfig = SimConfig(), rules: RecoveryRules = RecoveryRules(),
           on_trial: Callable[[Trial, int], None] = lambda _t, _n: None, phases: int = PHASES) -> Advice:
    primary, secondary = KNOBS[backend]
    base = current(topology.stages[0], (*primary, *secondary))
    trials: list[Trial] = []

    def run(settings: dict[str, Any]) -> Trial:
        for t in trials:
            if t.settings == settings:
                return t
        t = trial(topology, profile, backend, settings, slos, config, rules, phases)
        trials.append(t)
        on_trial(t, len(trials))
        return t

    best = run(base)
    for values in product(*(k.values for k in primary)):
        t = run({**base, **{k.key: v for k, v in zip(primary, values)}})
        if better(t, best, slos):
            best = t
    for knob in secondary:
        start = best
        for v in knob.values:
            t = run({**start.settings, knob.key: v})
            if better(t, best, slos):
                best = t
    chosen = topology.with_stage_overrides(**nested(best.settings))
    return Advice(backend, tuple(slos), trials, best, chosen, structural_warnings(chosen, backend))


def structural_warnings(topology: Topology, backend: Backend) -> list[str]:
    """Limits no setting of the sweep can lift, and settings whose meaning is easy to misread."""
    alike = _alike(topology)
    out: list[str] = []
    for st in topology.stages[:1] if alike else topology.stages:
        who = "every stage" if alike else st.name
        lines = _keda_limits(topology, st) if backend == "openfaas" else _kpa_limits(topology, st)
        out += [f"{who}: {line}" for line in lines]
    return out


def _keda_limits(topology: Topology, st: Stage) -> list[str]:
    p, out = topology.partitions, []
    if st.max_replicas > p and not st.keda.allow_idle_consumers:
        out.append(f"maxReplicaCount {st.max_replicas} is above the {p} partitions: KEDA caps the lag metric at "
                   f"partitions × lagThreshold, so no more than {p} replicas ever come (kafka_scaler.go "
                   "getTotalLag; allowIdleConsumers: false).")
    stall = math.ceil(p / 1.1)  # openfaas-keda.md §5.5: at the cap the ratio is P/R, within tolerance from P/1.1
    if p >= 11 and min(st.max_replicas, p) >= stall:
        out.append(f"at the partition cap the HPA's ratio is {p}/replicas, inside its 10 % tolerance from {stall} "
                   f"replicas: scale-up can stall at {stall}–{p - 1} instead of {p} (kedacore/keda#2908, #4791); set "
                   "behavior.scaleUp.tolerance or a lower lagThreshold.")
    commit_s = topology.emulation.commit_interval_s
    uncommitted = (st.concurrency / st.latency_s if st.latency_s > 0 else math.inf) * commit_s / 2
    if st.keda.lag_threshold < uncommitted:
        out.append(f"lagThreshold {st.keda.lag_threshold} is lag per replica (desired = ceil(lag / lagThreshold)), "
                   f"and one busy replica leaves ≈{uncommitted:,.0f} finished but uncommitted events in the lag "
                   f"between commits (every {commit_s:g} s): replicas scale out on commit timing, not on backlog.")
    return out


def _kpa_limits(topology: Topology, st: Stage) -> list[str]:
    out = []
    total = min(st.knative.target, st.concurrency) if st.concurrency else st.knative.target
    ordered = st.delivery.ordering == "ordered"
    in_flight = topology.partitions if ordered else topology.emulation.knative.trigger_max_in_flight
    useful = math.ceil(in_flight / (total * st.knative.target_utilization))
    if st.max_replicas > useful:
        out.append(f"max-scale {st.max_replicas} is never reached: the KPA scales on concurrency, and the Trigger "
                   f"dispatcher keeps at most {in_flight} events in flight, so it asks for at most {useful} pods "
                   "(knative.md §3.4).")
    if st.knative.target > st.concurrency:
        out.append(f"target {st.knative.target:g} is above containerConcurrency {st.concurrency}: the KPA uses "
                   f"min(target, containerConcurrency) = {st.concurrency} (knative.md §3.3).")
    return out


def _alike(topology: Topology) -> bool:
    first = topology.stages[0]
    return all((s.keda, s.knative, s.max_replicas, s.concurrency, s.latency_ms) ==
               (first.keda, first.knative, first.max_replicas, first.concurrency, first.latency_ms)
               for s in topology.stages)


def recommended_yaml(advice: Advice) -> str:
    """The chosen settings as the exact fields to paste: the ScaledObject's, or the Service's annotations."""
    st = advice.topology.stages[-1]
    if advice.backend == "openfaas":
        spec = scaled_object(advice.topology, st, RenderOptions())["spec"]
        meta = spec["triggers"][0]["metadata"]
        doc: dict[str, Any] = {"spec": {
            "pollingInterval": spec["pollingInterval"], "cooldownPeriod": spec["cooldownPeriod"],
            "advanced": spec["advanced"],
            "triggers": [{"type": "kafka", "metadata": {k: meta[k] for k in (
                "lagThreshold", "activationLagThreshold", "limitToPartitionsWithLag")}}]}}
        head = "# keda.sh/v1alpha1 ScaledObject of every function: the fields the sweep chose"
    else:
        keys = ("target", "target-utilization-percentage", "window", "panic-threshold-percentage",
                "scale-down-delay", "min-scale")
        notes = kpa_annotations(st)
        doc = {"spec": {"template": {"metadata": {"annotations": {
            f"autoscaling.knative.dev/{k}": notes[f"autoscaling.knative.dev/{k}"] for k in keys}}}}}
        head = "# serving.knative.dev/v1 Service of every stage: the annotations the sweep chose"
    return head + "\n" + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def _yaml_scalar(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)
