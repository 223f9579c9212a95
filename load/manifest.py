"""What a run ran on: versions, machine, seed, profile, topology and autoscaler settings in force."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

import confluent_kafka

_LIBS = ("lagduel", "confluent-kafka", "hdrhistogram", "cloudevents", "faust-streaming", "kubernetes", "plotly", "jinja2")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        mem = None
    return {"cores": os.cpu_count(), "memory_bytes": mem, "platform": platform.platform(),
            "python": sys.version.split()[0]}


def versions(kafka_version: str | None) -> dict[str, Any]:
    return {"kafka_broker": kafka_version, "librdkafka": confluent_kafka.libversion()[0],
            **{lib: _version(lib) for lib in _LIBS}}
