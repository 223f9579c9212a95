"""The topology model: `pipeline.yaml` loaded into typed, immutable objects.

Stages run in order; stage *k* consumes what stage *k-1* produces (the first consumes the
pipeline input). Per-stage settings are `defaults` deep-merged with the stage's own keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from functions import STAGES

DEFAULT_TOPOLOGY = Path(__file__).resolve().parent / "pipeline.yaml"
"""The reference topology, shipped in the package (the repository root links to it as pipeline.yaml)."""
_NAME = r"^[a-z][a-z0-9-]*$"
_TOPIC = r"^[a-zA-Z0-9._-]{1,249}$"
_TYPE = r"^[a-zA-Z0-9._-]+$"


TOPOLOGY_WIDE = frozenset({"partitions", "replication_factor", "emulation"})
"""Keys an override applies to the whole topology rather than to every stage."""


class TopologyError(ValueError):
    """The topology file is missing, unreadable or invalid; the message names the key."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Endpoint(_Frozen):
    topic: str = Field(pattern=_TOPIC)
    type: str = Field(pattern=_TYPE)


class Delivery(_Frozen):
    """Retry and ordering of every dispatch to a stage (Knative delivery spec, connector retries)."""

    retry: int = Field(5, ge=0, le=100)
    backoff_policy: Literal["exponential", "linear"] = "exponential"
    backoff_delay_s: float = Field(0.2, gt=0, le=60)
    ordering: Literal["ordered", "unordered"] = "unordered"


class Limits(_Frozen):
    cpu: str = Field("500m", pattern=r"^\d+(\.\d+)?m?$")
    memory: str = Field("256Mi", pattern=r"^\d+(Ki|Mi|Gi)?$")


class KnativeScaling(_Frozen):
    """KPA annotations of the stage's Knative Service (research/knative.md §3.1)."""

    target: float = Field(4, ge=0.01)
    target_utilization: float = Field(0.7, gt=0, le=1)
    window_s: int = Field(60, ge=6, le=3600)
    panic_window_percentage: float = Field(10, ge=1, le=100)
    panic_threshold_percentage: float = Field(200, ge=110, le=1000)
    scale_down_delay_s: int = Field(0, ge=0, le=3600)
    initial_scale: int | None = Field(None, ge=0)
    """None: the stage's initial_replicas."""
    target_burst_capacity: float = 211

    @field_validator("target_burst_capacity")
    @classmethod
    def _tbc(cls, v: float) -> float:
        if v < 0 and v != -1:
            raise ValueError("must be >= 0, or exactly -1 (activator always in the path)")
        return v


class KedaScaling(_Frozen):
    """The KEDA ScaledObject and kafka trigger of the stage's function (research/openfaas-keda.md §5)."""

    lag_threshold: int = Field(10, gt=0)
    activation_lag_threshold: int = Field(0, ge=0)
    polling_interval_s: int = Field(5, ge=1)
    cooldown_period_s: int = Field(60, ge=0)
    initial_cooldown_period_s: int = Field(0, ge=0)
    """ScaledObject initialCooldownPeriod: no scale to zero this long after creation (openfaas-keda.md §5.1)."""
    offset_reset_policy: Literal["earliest", "latest"] = "earliest"
    allow_idle_consumers: bool = False
    scale_down_stabilization_s: int = Field(300, ge=0, le=3600)
    # kafka trigger options, upstream defaults (kedacore/keda kafka_scaler.go v2.21, openfaas-keda.md §5.2)
    exclude_persistent_lag: bool = False
    limit_to_partitions_with_lag: bool = False
    ensure_even_distribution_of_partitions: bool = False
    scale_to_zero_on_invalid_offset: bool = False
    partition_limitation: str = Field("", pattern=r"^\s*(\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*)?\s*$")
    """Partition IDs the scaler reads, e.g. "0,2-4"; blank: all."""
    # HPA behavior.scale{Up,Down}.tolerance (HPAConfigurableTolerance, K8s 1.33+); None: the cluster's 0.1.
    scale_up_tolerance: float | None = Field(None, ge=0)
    scale_down_tolerance: float | None = Field(None, ge=0)

    @field_validator("partition_limitation", mode="before")
    @classmethod
    def _one_partition(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v  # `--set keda.partition_limitation=3`

    @model_validator(mode="after")
    def _exclusive_options(self) -> KedaScaling:
        # kafka_scaler.go kafkaMetadata.Validate
        if self.limit_to_partitions_with_lag and self.allow_idle_consumers:
            raise ValueError("allow_idle_consumers and limit_to_partitions_with_lag cannot be set simultaneously")
        if self.limit_to_partitions_with_lag and self.ensure_even_distribution_of_partitions:
            raise ValueError("limit_to_partitions_with_lag and ensure_even_distribution_of_partitions cannot be set "
                             "simultaneously")
        return self


class Stage(_Frozen):
    """One stage. `initial_replicas` is the replica count both serverless backends start with (Knative
    initial-scale unless `knative.initial_scale` overrides it; the OpenFaaS Deployment's starting count)."""

    name: str = Field(pattern=_NAME)
    function: str
    input: Endpoint
    output: Endpoint
    concurrency: int = Field(4, ge=1, le=1000)
    latency_ms: float = Field(0, ge=0, le=60_000)
    timeout_s: float = Field(30, gt=0, le=600)
    min_replicas: int = Field(0, ge=0)
    max_replicas: int = Field(5, ge=1)
    initial_replicas: int = Field(1, ge=0)
    limits: Limits = Limits()
    delivery: Delivery = Delivery()
    knative: KnativeScaling = KnativeScaling()
    keda: KedaScaling = KedaScaling()

    @field_validator("function")
    @classmethod
    def _known_function(cls, v: str) -> str:
        if v not in STAGES:
            raise ValueError(f"unknown stage function {v!r}; known: {', '.join(sorted(STAGES))}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _initial_scale(cls, raw: Any) -> Any:
        """knative.initial_scale, when not given, is the stage's initial_replicas."""
        if isinstance(raw, Mapping):
            knative = raw.get("knative")
            if not isinstance(knative, Mapping) or knative.get("initial_scale") is None:
                raw = {**raw, "knative": {**(knative if isinstance(knative, Mapping) else {}),
                                          "initial_scale": raw.get("initial_replicas", 1)}}
        return raw

    @model_validator(mode="after")
    def _replica_bounds(self) -> Stage:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) exceeds max_replicas ({self.max_replicas})")
        if self.initial_replicas > self.max_replicas:
            raise ValueError(f"initial_replicas ({self.initial_replicas}) exceeds max_replicas ({self.max_replicas})")
        return self

    @property
    def latency_s(self) -> float:
        return self.latency_ms / 1000.0


class Hops(_Frozen):
    """Modeled cost (ms) of each platform hop the emulation folds into the dispatcher's process.

    The research notes hold no measured per-hop latency for these proxies, so the defaults are small
    conservative values, equal for like hops: a network proxy (activator, gateway, broker ingress) 0.5 ms,
    an in-pod localhost proxy (queue-proxy, of-watchdog → function) 0.2 ms. See pipeline.yaml.
    """

    broker_ingress_ms: float = Field(0.5, ge=0, le=1000)
    activator_ms: float = Field(0.5, ge=0, le=1000)
    queue_proxy_ms: float = Field(0.2, ge=0, le=1000)
    gateway_ms: float = Field(0.5, ge=0, le=1000)
    watchdog_ms: float = Field(0.2, ge=0, le=1000)


class KnativeEmulation(_Frozen):
    scale_to_zero_grace_period_s: float = Field(30.0, ge=0, le=3600)
    tick_s: float = Field(2.0, gt=0, le=60)
    """KPA decision period (the autoscaler's tick)."""
    trigger_max_in_flight: int = Field(50, ge=1, le=100_000)
    """Records in flight per unordered Trigger dispatcher (max.poll.records)."""
    queue_depth_per_slot: int = Field(10, ge=0, le=1000)
    """queue-proxy queue depth per containerConcurrency slot."""
    activator_queue_depth: int = Field(10_000, ge=1)


class OpenFaasEmulation(_Frozen):
    hpa_sync_period_s: float = Field(15.0, gt=0, le=600)
    control_tick_s: float = Field(0.25, gt=0, le=60)
    ce_cap: bool = False
    connector_in_flight: int = Field(0, ge=0, le=100_000)
    """0: the stage's concurrency × max_replicas."""
    upstream_timeout_s: float = Field(60.0, gt=0, le=3600)


class Emulation(_Frozen):
    pod_start_delay_s: float = Field(2.0, ge=0, le=120)
    commit_interval_s: float = Field(1.0, gt=0, le=60)
    producer_linger_ms: float = Field(0.0, ge=0, le=1000)
    """linger.ms of every dispatcher's and connector's producer."""
    fetch_wait_ms: float = Field(25.0, ge=1, le=500)
    """fetch.wait.max.ms of every dispatcher's and connector's consumer (fetch.min.bytes 64 KB)."""
    hops: Hops = Hops()
    knative: KnativeEmulation = KnativeEmulation()
    openfaas: OpenFaasEmulation = OpenFaasEmulation()


class Topology(_Frozen):
    pipeline: str = Field(pattern=_NAME)
    namespace: str = Field("lagduel", pattern=_NAME)
    broker: str = Field("default", pattern=_NAME)
    source: str = "/lagduel"
    input: Endpoint
    dead_letter_topic: str = Field(pattern=_TOPIC)
    partitions: int = Field(6, ge=1, le=10_000)
    replication_factor: int = Field(1, ge=1)
    stages: tuple[Stage, ...] = Field(min_length=1)
    emulation: Emulation = Emulation()

    @model_validator(mode="after")
    def _chained(self) -> Topology:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names repeat: {names}")
        types = [self.input.type, *(s.output.type for s in self.stages)]
        if len(set(types)) != len(types):
            # A Trigger filters on type: a repeated type would loop events (research/knative.md §2.5).
            raise ValueError(f"event types must differ from stage to stage: {types}")
        topics = [self.input.topic, *(s.output.topic for s in self.stages), self.dead_letter_topic]
        if len(set(topics)) != len(topics):
            raise ValueError(f"topics must differ: {topics}")
        return self

    @property
    def output(self) -> Endpoint:
        return self.stages[-1].output

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic the pipeline reads or writes, input first, dead-letter last."""
        return (self.input.topic, *(s.output.topic for s in self.stages), self.dead_letter_topic)

    @property
    def broker_topic(self) -> str:
        """Topic of the Knative Kafka Broker (template knative-broker-{{.Namespace}}-{{.Name}}, knative.md §2.1)."""
        return f"knative-broker-{self.namespace}-{self.broker}"

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage named {name!r}; stages: {', '.join(s.name for s in self.stages)}")

    def with_topic_prefix(self, prefix: str) -> Topology:
        """The same pipeline on fresh topics (`prefix` + name): how runs and tests stay apart."""
        raw = self.model_dump(mode="python")
        raw["input"]["topic"] = prefix + raw["input"]["topic"]
        raw["dead_letter_topic"] = prefix + raw["dead_letter_topic"]
        if prefix:  # every name a platform derives consumer groups from, so no run joins another's groups
            raw["broker"] = _slug(prefix) + raw["broker"]
            raw["pipeline"] = _slug(prefix) + raw["pipeline"]
        for st in raw["stages"]:
            st["output"]["topic"] = prefix + st["output"]["topic"]
        return Topology.model_validate(_with_inputs(raw))

    def with_stage_overrides(self, **overrides: Any) -> Topology:
        """A copy with the given settings applied to every stage (e.g. latency_ms=0); the topology-wide keys
        (`partitions`, `replication_factor`, `emulation`) apply to the topology itself. Invalid values raise
        TopologyError naming the key path."""
        raw = self.model_dump(mode="python")
        _deep_merge_into(raw, {k: v for k, v in overrides.items() if k in TOPOLOGY_WIDE})
        stage_overrides = {k: v for k, v in overrides.items() if k not in TOPOLOGY_WIDE}
        for st in raw["stages"]:
            if "initial_replicas" in stage_overrides and st["knative"]["initial_scale"] == st["initial_replicas"]:
                st["knative"]["initial_scale"] = None  # derived, not set: follows the new initial_replicas
            _deep_merge_into(st, stage_overrides)
        try:
            return Topology.model_validate(raw)
        except ValidationError as exc:
            raise TopologyError(_describe_override(exc)) from None


def _slug(prefix: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in prefix.lower())


def _deep_merge_into(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge_into(target[key], value)
        else:
            target[key] = value


def _merged(defaults: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in defaults.items()}
    _deep_merge_into(out, own)
    return out


def _with_inputs(raw: dict[str, Any]) -> dict[str, Any]:
    """Chain the stages: each consumes the previous one's output (the first, the pipeline input)."""
    upstream = raw["input"]
    for st in raw["stages"]:
        st["input"] = dict(upstream)
        upstream = st["output"]
    return raw


def parse_topology(raw: Any, origin: str = "<topology>") -> Topology:
    """Validate a decoded topology document; errors name the key path and the problem."""
    if not isinstance(raw, Mapping):
        raise TopologyError(f"{origin}: expected a mapping at the top level")
    raw = dict(raw)
    defaults = raw.pop("defaults", {}) or {}
    stages = raw.get("stages")
    if not isinstance(defaults, Mapping):
        raise TopologyError(f"{origin}: defaults: expected a mapping")
    if not isinstance(stages, list) or not all(isinstance(s, Mapping) for s in stages):
        raise TopologyError(f"{origin}: stages: expected a list of mappings")
    for i, st in enumerate(stages):
        if "input" in st:
            raise TopologyError(f"{origin}: stages.{i}.input: not allowed; a stage consumes the previous output")
    raw["stages"] = [_merged(defaults, s) for s in stages]
    if isinstance(raw.get("input"), Mapping):
        _with_inputs(raw)
    try:
        return Topology.model_validate(raw)
    except ValidationError as exc:
        raise TopologyError(_describe(exc, origin)) from None


def _describe_override(exc: ValidationError) -> str:
    """As `_describe`, with a stage setting named once (it was applied to every stage), not per stage."""
    lines: list[str] = []
    for err in exc.errors():
        loc = err["loc"]
        if loc == ("stages",):
            continue  # a consequence of the stages' own errors
        if loc[:1] == ("stages",) and len(loc) > 2:
            loc = loc[2:]
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        line = f"{'.'.join(str(x) for x in loc)}: {msg}"
        if line not in lines:
            lines.append(line)
    return "; ".join(lines)


def _describe(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{where}: {msg}")
    return f"{origin}: " + "; ".join(lines)


def load_topology(path: str | Path | None = None) -> Topology:
    """Load and validate a topology file (default: the reference `pipeline.yaml`)."""
    p = Path(path) if path else DEFAULT_TOPOLOGY
    try:
        text = p.read_text()
    except OSError as exc:
        raise TopologyError(f"{p}: cannot read topology file ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(f"{p}: not valid YAML ({exc})") from None
    return parse_topology(raw, str(p))
