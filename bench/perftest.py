"""Kafka's own producer benchmark, `kafka-producer-perf-test` (org.apache.kafka.tools.ProducerPerformance),
from the same Maven-resolved jars as the broker, against the same broker (research/benchmarks.md §2.1)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pipeline.kafka import KafkaSettings, create_topics

_SUMMARY = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")


def producer_perf_test(libs: Path, settings: KafkaSettings, topic: str, records: int, record_bytes: int,
                       partitions: int, acks: str = "all", java: str = "java") -> float:
    """Records/s of the Java producer at full speed (--throughput -1) with the given acks and size."""
    create_topics(settings, [topic], partitions)
    cmd = [
        java, "-Xmx512m", "-cp", f"{libs}/*", "org.apache.kafka.tools.ProducerPerformance",
        "--topic", topic, "--num-records", str(records), "--record-size", str(record_bytes), "--throughput", "-1",
        "--producer-props", f"bootstrap.servers={settings.bootstrap_servers}", f"acks={acks}",
        f"linger.ms={int(settings.linger_ms)}", f"batch.size={settings.batch_size}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    match = None
    for line in out.stdout.splitlines():  # the last summary line is the whole run's
        match = _SUMMARY.search(line) or match
    if out.returncode != 0 or match is None:
        raise RuntimeError(f"ProducerPerformance failed ({out.returncode}): {(out.stderr or out.stdout)[-400:]}")
    return float(match.group(2))
