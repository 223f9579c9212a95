"""The CLI's face: help that explains, and user mistakes as one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Producer

from lagduel.cli import main
from pipeline.kafka import KafkaSettings, OffsetReader, create_topics, read_client_config
from pipeline.settings import read_environment


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI with its own broker state, sharing the resolved jars (no second Maven resolution)."""
    env = read_environment()
    cache = tmp_path / "cache"
    cache.mkdir()
    jars = env.cache_dir / f"kafka-{env.kafka_version}"
    if jars.exists():
        (cache / jars.name).symlink_to(jars)
    monkeypatch.setenv("LAGDUEL_CACHE_DIR", str(cache))
    monkeypatch.delenv("LAGDUEL_BOOTSTRAP", raising=False)
    return CliRunner()


def test_help_explains(cli: CliRunner) -> None:
    out = cli.invoke(main, ["--help"]).output
    assert "kafka" in out and "run" in out
    run_help = cli.invoke(main, ["run", "--help"]).output
    assert "--backend" in run_help and "--events" in run_help and "lost" in run_help


def test_invalid_topology_is_one_line(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("pipeline: orders\nstages: []\n")
    res = cli.invoke(main, ["run", "--topology", str(bad)])
    assert res.exit_code == 1
    assert res.output.startswith("Error: ") and "stages" in res.output
    assert "Traceback" not in res.output


def test_status_without_a_broker_says_what_to_do(cli: CliRunner) -> None:
    res = cli.invoke(main, ["kafka", "status"])
    assert res.exit_code == 1 and "lagduel kafka up" in res.output


def test_restart_without_a_broker_says_what_to_do(cli: CliRunner) -> None:
    res = cli.invoke(main, ["kafka", "restart"])
    assert res.exit_code == 1 and "lagduel kafka up" in res.output


def test_down_without_a_broker_is_harmless(cli: CliRunner) -> None:
    res = cli.invoke(main, ["kafka", "down"])
    assert res.exit_code == 0 and "no background broker" in res.output


def test_unknown_backend_is_refused_by_the_parser(cli: CliRunner) -> None:
    res = cli.invoke(main, ["run", "--backend", "lambda"])
    assert res.exit_code == 2 and "lambda" in res.output


@pytest.mark.kafka
def test_kafka_up_status_down(cli: CliRunner) -> None:
    up = cli.invoke(main, ["kafka", "up"])
    try:
        assert up.exit_code == 0, up.output
        bootstrap = up.stdout.strip().splitlines()[0]
        assert bootstrap.startswith("127.0.0.1:")
        assert "log:" in up.stderr
        again = cli.invoke(main, ["kafka", "up"])  # idempotent: the same broker
        assert again.stdout.strip().splitlines()[0] == bootstrap
        status = cli.invoke(main, ["kafka", "status"])
        assert status.exit_code == 0 and "version:   4.1" in status.output and bootstrap in status.output
        settings = KafkaSettings(bootstrap)
        create_topics(settings, ["kept"], 1)
        producer = Producer(settings.producer())
        producer.produce("kept", b"survives a restart")
        assert producer.flush(10) == 0
        restarted = cli.invoke(main, ["kafka", "restart"])
        assert restarted.exit_code == 0 and f"restarted Kafka at {bootstrap}" in restarted.output, restarted.output
        assert OffsetReader(settings).read(["kept"], []).ends["kept"].tolist() == [1]  # same port, same data
    finally:
        down = cli.invoke(main, ["kafka", "down"])
    assert down.exit_code == 0 and "stopped Kafka" in down.output
    assert "no background broker" in cli.invoke(main, ["kafka", "down"]).output


def test_the_terminal_stays_quiet_and_points_to_the_full_log(cli: CliRunner, tmp_path: Path) -> None:
    """A warning logged deep inside (as librdkafka's GETPID notices are) goes to the log file; the terminal
    shows one line pointing to it."""
    import logging

    from lagduel.cli import main as group

    @group.command("emit-warning", hidden=True)
    def emit_warning() -> None:
        logging.getLogger("lagduel.librdkafka").warning("GETPID Failed to acquire idempotence PID")

    try:
        res = cli.invoke(group, ["emit-warning"])
    finally:
        group.commands.pop("emit-warning")
    assert res.exit_code == 0
    assert "GETPID" not in res.output
    assert "1 warning(s) logged: " in res.output
    log = Path(res.output.strip().rsplit(": ", 1)[1])
    assert "GETPID Failed to acquire idempotence PID" in log.read_text()


def test_kafka_config_reaches_every_client_and_its_bootstrap_is_used(cli: CliRunner, kafka_settings: KafkaSettings,
                                                                     unique, tmp_path: Path) -> None:
    """`--kafka-config` as a secured cluster's users give it: bootstrap.servers and librdkafka keys in one file."""
    config = tmp_path / "client.properties"
    config.write_text(f"# the cluster's Kafka\nbootstrap.servers={kafka_settings.bootstrap_servers}\n"
                      "client.dns.lookup = use_all_dns_ips\n")
    topic = unique("configured")
    res = cli.invoke(main, ["load", "--kafka-config", str(config), "--topic", topic, "--profile", "constant:rate=50",
                            "--duration", "1"])
    assert res.exit_code == 0, res.output
    reader = OffsetReader(kafka_settings)
    try:
        assert sum(reader.read([topic], []).log_ends[topic].values()) == 50
    finally:
        reader.close()


def test_kafka_config_passes_through_to_producers_consumers_and_admin(tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text("security.protocol=SASL_SSL\nsasl.mechanism = SCRAM-SHA-512\n! comment\nfetch.min.bytes=1\n")
    s = KafkaSettings("k:9092", extra=read_client_config(config))
    assert s.producer()["security.protocol"] == s.consumer("g")["security.protocol"] == "SASL_SSL"
    assert s.admin()["sasl.mechanism"] == "SCRAM-SHA-512" and "fetch.min.bytes" not in s.admin()
    assert s.consumer("g")["enable.auto.commit"] is False
