"""The embedded broker: it really serves, and each way of failing is one clear line plus the log tail."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from pipeline.broker import BrokerError, EmbeddedKafka
from pipeline.broker import process as broker_process
from pipeline.broker.locate import open_kafka
from pipeline.broker.maven import resolve_jars
from pipeline.kafka import KafkaSettings, OffsetReader, create_topics
from pipeline.settings import Environment

pytestmark = pytest.mark.kafka


def test_the_session_broker_round_trips_records(kafka_settings: KafkaSettings, unique) -> None:
    topic, group = unique("rt"), unique("g")
    create_topics(kafka_settings, [topic], partitions=3)
    p = Producer(kafka_settings.producer())
    for i in range(30):
        p.produce(topic, str(i).encode(), key=str(i % 7).encode())
    assert p.flush(10) == 0
    c = Consumer(kafka_settings.consumer(group))
    c.subscribe([topic])
    seen: list[bytes] = []
    while len(seen) < 30:
        msgs = c.consume(100, timeout=5)
        assert msgs, "no records within 5 s"
        seen += [m.value() for m in msgs]
    lag = OffsetReader(kafka_settings).lag(group, topic)
    assert lag.uncommitted == 3 and lag.total == 0  # nothing committed yet: shown as such, not as zero lag
    c.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    lag = OffsetReader(kafka_settings).lag(group, topic)
    assert lag.uncommitted == 2
    assert lag.total == next(p.log_end for p in lag.partitions if p.partition == 0)
    c.close()
    assert sorted(seen, key=int) == [str(i).encode() for i in range(30)]


@pytest.fixture(scope="module")
def libs() -> Path:
    from pipeline.settings import read_environment

    env = read_environment()
    return resolve_jars(env.cache_dir, env.kafka_version)


def test_a_cluster_id_that_looks_like_an_option_still_formats(tmp_path: Path, libs: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    real = broker_process.new_cluster_id
    monkeypatch.setattr(broker_process, "new_cluster_id", lambda: "-" + real()[1:])
    broker = EmbeddedKafka(libs, tmp_path).start()
    try:
        assert AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).brokers
    finally:
        broker.stop()


def test_missing_java_is_named(tmp_path: Path, libs: Path) -> None:
    with pytest.raises(BrokerError, match="Java is not installed"):
        EmbeddedKafka(libs, tmp_path, java="/nonexistent/java").start()


def test_missing_maven_is_named(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match=r"Maven \(mvn\) is not installed"):
        resolve_jars(tmp_path, "4.1.1", mvn="mvn-that-does-not-exist")


def test_a_broker_that_dies_during_start_reports_the_log_tail(tmp_path: Path) -> None:
    empty = tmp_path / "libs"
    empty.mkdir()
    with pytest.raises(BrokerError) as err:
        EmbeddedKafka(empty, tmp_path / "w").start()
    assert "formatting the broker's storage failed" in err.value.cause
    assert err.value.log == tmp_path / "w" / "broker.log"
    assert "kafka.tools.StorageTool" in err.value.tail  # the JVM's own complaint, from the log


def test_a_port_clash_is_named(tmp_path: Path, libs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = [port, broker_process.free_port()]  # the broker port is taken, the controller's free
        monkeypatch.setattr(broker_process, "free_ports", lambda n: ports)
        with pytest.raises(BrokerError, match="port clash"):
            EmbeddedKafka(libs, tmp_path, start_timeout_s=60).start(attempts=1)


def test_free_ports_are_distinct() -> None:
    for _ in range(50):
        ports = broker_process.free_ports(4)
        assert len(set(ports)) == 4 and all(p > 0 for p in ports)


def test_an_explicit_bootstrap_wins(tmp_path: Path) -> None:
    env = Environment(bootstrap="10.0.0.1:9092", cache_dir=tmp_path)
    assert open_kafka(env).bootstrap == "10.0.0.1:9092"
    assert open_kafka(env, "127.0.0.1:1").bootstrap == "127.0.0.1:1"


def test_kafka_home_without_jars_is_named(tmp_path: Path) -> None:
    env = Environment(kafka_home=tmp_path, cache_dir=tmp_path)
    with pytest.raises(BrokerError, match="not a Kafka distribution"):
        open_kafka(env)
