"""The stage contract: one signature, one registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

Data: TypeAlias = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Emit:
    """The stage's output: the data of the next event."""

    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    """The input cannot be processed; `reason` says why (it travels to the dead-letter topic)."""

    reason: str


StageResult: TypeAlias = Emit | Rejected | None
StageFunction: TypeAlias = Callable[[Data], StageResult]

STAGES: dict[str, StageFunction] = {}


def stage(name: str) -> Callable[[StageFunction], StageFunction]:
    """Register a stage function under `name`; the function is returned unchanged."""

    def register(fn: StageFunction) -> StageFunction:
        if name in STAGES:
            raise ValueError(f"stage function {name!r} is registered twice")
        STAGES[name] = fn
        return fn

    return register
