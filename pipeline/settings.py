"""Where lagduel reads the environment: here and nowhere else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

KAFKA_VERSION = "4.1.1"
# of-watchdog settings (openfaas-keda.md §1.3) and the stage a function replica serves.
FUNCTION_KEYS = ("port", "PORT", "max_inflight", "exec_timeout", "read_timeout", "write_timeout",
                 "healthcheck_interval", "LAGDUEL_STAGE", "LAGDUEL_TOPOLOGY")


@dataclass(frozen=True)
class Environment:
    """Everything lagduel takes from the process environment, read once."""

    bootstrap: str | None = None
    """`LAGDUEL_BOOTSTRAP`: an existing Kafka to use instead of starting one."""
    kafka_config: Path | None = None
    """`LAGDUEL_KAFKA_CONFIG`: a file of librdkafka key=value settings (SASL/TLS) for every Kafka client."""
    kafka_home: Path | None = None
    """`KAFKA_HOME`: an installed Apache Kafka distribution (its `libs/` holds the jars)."""
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "lagduel")
    """`LAGDUEL_CACHE_DIR`, else `$XDG_CACHE_HOME/lagduel`, else `~/.cache/lagduel`."""
    kafka_version: str = KAFKA_VERSION
    """`LAGDUEL_KAFKA_VERSION`: the Apache Kafka version resolved from Maven Central."""
    java: str = "java"
    """`JAVA_HOME/bin/java` when `JAVA_HOME` is set."""
    gateway_user: str | None = None
    """`OPENFAAS_USER` (default `admin`), for the OpenFaaS gateway's basic auth."""
    gateway_password: str | None = None
    """`OPENFAAS_PASSWORD`, for the OpenFaaS gateway's basic auth (never written in a file)."""
    function: Mapping[str, str] = field(default_factory=dict)
    """A function replica's settings: the of-watchdog variables and `LAGDUEL_STAGE` / `LAGDUEL_TOPOLOGY`."""


def read_environment(env: dict[str, str] | None = None) -> Environment:
    e = os.environ if env is None else env
    cache = e.get("LAGDUEL_CACHE_DIR") or (Path(e["XDG_CACHE_HOME"]) / "lagduel" if e.get("XDG_CACHE_HOME") else None)
    java_home = e.get("JAVA_HOME")
    return Environment(
        bootstrap=e.get("LAGDUEL_BOOTSTRAP") or None,
        kafka_config=Path(e["LAGDUEL_KAFKA_CONFIG"]) if e.get("LAGDUEL_KAFKA_CONFIG") else None,
        kafka_home=Path(e["KAFKA_HOME"]) if e.get("KAFKA_HOME") else None,
        cache_dir=Path(cache) if cache else Path.home() / ".cache" / "lagduel",
        kafka_version=e.get("LAGDUEL_KAFKA_VERSION") or KAFKA_VERSION,
        java=str(Path(java_home) / "bin" / "java") if java_home else "java",
        gateway_user=e.get("OPENFAAS_USER") or None,
        gateway_password=e.get("OPENFAAS_PASSWORD") or None,
        function={k: e[k] for k in FUNCTION_KEYS if e.get(k)},
    )
