"""Resolve the broker's jars from Maven Central into a per-version cache (research/kafka-broker.md §1.3)."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

from pipeline.broker.errors import BrokerError

# log4j2 version each Kafka line was released with (kafka-broker.md §1.1).
_LOG4J2 = {"4.0": "2.24.3", "4.1": "2.24.3", "4.2": "2.25.3"}
_DONE = ".resolved"


def libs_dir(cache_dir: Path, version: str) -> Path:
    return cache_dir / f"kafka-{version}" / "libs"


def resolve_jars(cache_dir: Path, version: str, mvn: str = "mvn") -> Path:
    """The classpath directory for `version`: cached after the first resolution, so reruns stay offline."""
    libs = libs_dir(cache_dir, version)
    if (libs / _DONE).exists():
        return libs
    if not version.startswith("4."):
        raise BrokerError(f"Kafka {version} is not supported: lagduel runs Kafka 4.x (KRaft); set LAGDUEL_KAFKA_VERSION=4.1.1")
    if shutil.which(mvn) is None:
        raise BrokerError(
            "Maven (mvn) is not installed: it resolves the Kafka broker jars from Maven Central. "
            "Install Maven, set KAFKA_HOME to a Kafka distribution, or give --bootstrap / LAGDUEL_BOOTSTRAP"
        )
    staging = libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pom = libs.parent / "pom.xml"
    pom.write_bytes(resources.files("pipeline.broker").joinpath("pom.xml").read_bytes())
    log4j2 = _LOG4J2.get(".".join(version.split(".")[:2]), "2.24.3")
    cmd = [
        mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
        f"-Dkafka.version={version}", f"-Dlog4j2.version={log4j2}", "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}", "-Dmdep.prependGroupId=true",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise BrokerError("Maven did not finish resolving the Kafka jars within 15 minutes (is Maven Central reachable?)") from None
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        hint = next((line for line in out if "Could not" in line or "ERROR" in line), out[-1] if out else "no output")
        raise BrokerError(f"Maven could not resolve Apache Kafka {version} from Maven Central: {hint.strip()}",
                          tail="\n".join("  " + line for line in out[-10:]))
    if not any(staging.glob("org.apache.kafka.kafka_2.13-*.jar")):
        raise BrokerError(f"Maven finished but left no kafka_2.13 jar in {staging}")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    (libs / _DONE).write_text(version + "\n")
    return libs
