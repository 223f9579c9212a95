"""Test layers: pure tests need nothing; `kafka` tests share one real broker per session.

The broker is the embedded Apache Kafka (Maven-resolved jars), or `LAGDUEL_BOOTSTRAP` when set.
Every test gets unique topic and group names, so tests never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from pipeline.broker import Kafka, open_kafka
from pipeline.kafka import KafkaSettings, create_topics
from pipeline.settings import read_environment
from pipeline.topology import Topology, load_topology


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cluster", action="store_true", help="run tests against the current kube context")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--cluster"):
        return
    skip = pytest.mark.skip(reason="needs a real cluster: run with --cluster")
    for item in items:
        if "cluster" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def kafka() -> Iterator[Kafka]:
    """One real broker for the whole session."""
    with open_kafka(read_environment()) as k:
        yield k


@pytest.fixture(scope="session")
def kafka_settings(kafka: Kafka) -> KafkaSettings:
    return KafkaSettings(kafka.bootstrap, linger_ms=1)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """unique("orders") -> "orders-3f2a9c1b": a fresh name for a topic or group."""
    token = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{token}"


@pytest.fixture
def topology() -> Topology:
    return load_topology()


@pytest.fixture
def fresh_topology(topology: Topology, kafka_settings: KafkaSettings) -> Topology:
    """The reference topology on fresh topics of the session broker, created."""
    t = topology.with_topic_prefix(f"t{uuid.uuid4().hex[:8]}-")
    create_topics(kafka_settings, t.topics, t.partitions)
    return t
