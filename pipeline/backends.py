"""The contract every backend keeps, so `lagduel run` and `lagduel duel` drive any of them alike.

A backend runs a whole topology on Kafka: started as an async context manager, it consumes
the pipeline input and delivers to the output and dead-letter topics until stopped.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pipeline.kafka import KafkaSettings
from pipeline.topology import Topology


@dataclass(frozen=True, slots=True)
class StageStatus:
    """One stage at one instant, as the backend's control plane sees it."""

    stage: str
    desired: int
    ready: int
    in_flight: int = 0
    queued: int = 0
    """Requests held in front of the stage (activator buffer, gateway scale-from-zero hold)."""
    retries: int = 0
    dead_lettered: int = 0
    errors: int = 0
    cold_starts: int = 0
    processed: int = 0
    """Events the stage finished (a reply, a rejection or a dead letter), cumulative: its achieved throughput."""
    slots: int | None = None
    """Events the stage can serve at once now; None: ready replicas × the stage's per-replica concurrency."""
    extra: Mapping[str, float] = field(default_factory=dict)
    """Backend-specific series (e.g. panic mode, KEDA metric), for the report."""


@dataclass(frozen=True, slots=True)
class LagSource:
    """A consumer group and topic whose lag the platform's autoscaler (or its dispatch) sees.

    `role` "stage" is a stage's own group (KEDA's lag, a Trigger's group); "source" and "sink" are the
    platform's groups in front of and behind the stages (Knative's KafkaSource and output Trigger), shown
    per group in the report but never counted as a stage.
    """

    stage: str
    group: str
    topic: str
    role: str = "stage"


@runtime_checkable
class Backend(Protocol):
    name: str

    async def __aenter__(self) -> Backend: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def lag_sources(self) -> list[LagSource]:
        """Every consumer group of the backend, stage groups first in stage order."""
        ...

    def status(self) -> list[StageStatus]: ...

    def kill_replica(self, stage: str) -> str | None:
        """SIGKILL one ready replica of the stage (a crashed pod; the native baseline: a worker), as a fault
        scenario does; returns its name, None when no replica is ready."""
        ...

    def settings_in_force(self) -> dict[str, Any]:
        """The autoscaler and delivery settings the backend runs with, for the run manifest."""
        ...


def capacity_in_force(replicas: str, per_replica: int, dispatch_in_flight: int, service_time_ms: float) -> dict[str, Any]:
    """One stage's capacity as a backend really runs it, in the same words on every backend, so the report
    can say where backends differ: replica range, events per replica at once, events its dispatcher (Trigger,
    connector, agent) has in flight at most, and the emulated service time."""
    return {"replicas": replicas, "per_replica_concurrency": per_replica, "dispatch_in_flight": dispatch_in_flight,
            "service_time_ms": service_time_ms}


# name -> "module:factory"; factories take (topology, kafka settings, **options) and return a Backend.
BACKENDS: dict[str, str] = {
    "native": "pipeline.native.backend:NativeBackend",
    "knative": "pipeline.knative.backend:KnativeBackend",
    "openfaas": "pipeline.openfaas.backend:OpenFaasBackend",
}


class UnknownBackend(ValueError):
    pass


def make_backend(name: str, topology: Topology, settings: KafkaSettings, **options: Any) -> Backend:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise UnknownBackend(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}") from None
    module, factory = target.split(":")
    try:
        cls = getattr(importlib.import_module(module), factory)
    except (ImportError, AttributeError) as exc:
        raise UnknownBackend(f"backend {name!r} is not available in this installation ({exc})") from None
    return cls(topology, settings, **options)
