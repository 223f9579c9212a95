"""Measurement plumbing: repeat, take medians, count records arriving at topics, describe the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from confluent_kafka import KafkaException, Producer

from pipeline.kafka import KafkaSettings, OffsetReader, create_topics
from pipeline.orders import OrderFactory, order_event
from pipeline.topology import Topology

RECORD_BYTES = 512


@dataclass
class Figure:
    """One benchmark figure: the runs' values and their median."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "median": self.median, "values": self.values, "note": self.note}


def repeat(name: str, unit: str, runs: int, measure: Callable[[int], float], note: str = "") -> Figure:
    fig = Figure(name, unit, note=note)
    for i in range(runs):
        fig.values.append(measure(i))
        print(f"  {name}: run {i + 1}/{runs}: {fig.values[-1]:,.1f} {unit}", flush=True)
    return fig


def prefill(settings: KafkaSettings, topology: Topology, topic: str, count: int, partitions: int) -> None:
    """`count` valid 512-byte order events, produced as fast as the broker takes them."""
    create_topics(settings, [topic], partitions)
    factory = OrderFactory(seed=1, invalid_share=0.0, record_bytes=RECORD_BYTES)
    producer = Producer(settings.producer(**{"linger.ms": 20}))
    now = time.time_ns() // 1000
    for seq in range(count):
        rec = order_event(topology, "bench", seq, now, factory.order(seq)[0], RECORD_BYTES)
        while True:
            try:
                producer.produce(topic, rec.value, rec.key, headers=rec.headers)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(120) == 0


def steady_rate(settings: KafkaSettings, topics: Sequence[str], target: int, timeout_s: float = 300.0,
                alive: Callable[[], bool] = lambda: True) -> float:
    """Records/s arriving at `topics`, from the first record to the `target`-th: start-up time excluded."""
    reader = OffsetReader(settings)

    def count() -> int:
        while True:
            try:
                return int(sum(a.sum() for a in reader.read(topics, []).ends.values()))
            except KafkaException:  # a just-created topic's leader may not be known to this client yet
                time.sleep(0.1)

    deadline = time.monotonic() + timeout_s
    first_t, first_n = None, 0
    while time.monotonic() < deadline:
        n = count()
        now = time.monotonic()
        if first_t is None and n > 0:
            first_t, first_n = now, n
        if n >= target:
            if first_t is None or now - first_t < 1e-3:
                raise RuntimeError("target reached before the first sample: use more records")
            return (n - first_n) / (now - first_t)
        if not alive():
            raise RuntimeError("the process under test died")
        time.sleep(0.05)
    raise TimeoutError(f"only {count()} of {target} records arrived within {timeout_s:.0f} s")


def machine() -> dict[str, Any]:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    libs = {}
    for dist in ("confluent-kafka", "faust-streaming", "aiokafka", "cloudevents", "httpx", "uvicorn", "starlette", "orjson"):
        try:
            libs[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    from confluent_kafka import libversion

    libs["librdkafka"] = libversion()[0]
    return {
        "cores": os.cpu_count(), "memory_gib": round(mem / 2**30, 1), "python": platform.python_version(),
        "platform": platform.platform(), "libraries": libs,
    }
