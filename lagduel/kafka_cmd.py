"""`lagduel kafka up | down | status`: a real broker left running in the background."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pipeline.broker import BrokerError, Kafka
from pipeline.broker.locate import BackgroundBroker, open_kafka, run_background
from pipeline.kafka import BrokerUnavailable, ClientConfigError, KafkaSettings, read_client_config, wait_for_broker
from pipeline.settings import read_environment


def broker_failure(exc: BrokerError) -> click.ClickException:
    """One line naming the cause, then where the log is and its tail."""
    return click.ClickException(exc.details())


def kafka_config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--kafka-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help="librdkafka settings for every Kafka client, one key=value a line (as kcat -X takes them), e.g. "
             "security.protocol=SASL_SSL; bootstrap.servers there is used when --bootstrap is not given "
             "(default: LAGDUEL_KAFKA_CONFIG).")(f)


def client_settings(bootstrap: str | None, kafka_config: Path | None) -> tuple[str | None, dict[str, str]]:
    """The bootstrap to use and the client settings from --kafka-config (or LAGDUEL_KAFKA_CONFIG); one-line error."""
    path = kafka_config or read_environment().kafka_config
    try:
        extra = read_client_config(path) if path else {}
    except ClientConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--kafka-config") from None
    file_bootstrap = extra.pop("bootstrap.servers", None)
    return bootstrap or file_bootstrap, extra


@contextmanager
def serving_kafka(bootstrap: str | None, kafka_config: Path | None = None) -> Iterator[tuple[Kafka, KafkaSettings]]:
    """The Kafka a command uses (see `open_kafka`), answering, or a one-line CLI error; stopped after if ours."""
    bootstrap, extra = client_settings(bootstrap, kafka_config)
    try:
        kafka = open_kafka(read_environment(), bootstrap)
    except BrokerError as exc:
        raise broker_failure(exc) from None
    with kafka:
        settings = KafkaSettings(kafka.bootstrap, extra=extra)
        try:
            wait_for_broker(settings)
        except BrokerUnavailable as exc:
            raise click.ClickException(str(exc)) from None
        yield kafka, settings


@click.group()
def kafka() -> None:
    """Manage the embedded Apache Kafka broker (single-node KRaft, no Docker needed)."""


@kafka.command()
def up() -> None:
    """Start a broker in the background and print its bootstrap address.

    The broker's jars are resolved from Maven Central on first use and cached per Kafka
    version (LAGDUEL_CACHE_DIR, default ~/.cache/lagduel), so later starts are offline.
    Uses KAFKA_HOME instead when it points to a Kafka distribution.
    """
    env = read_environment()
    started = time.monotonic()
    try:
        state = run_background(env)
    except BrokerError as exc:
        raise broker_failure(exc) from None
    click.echo(state.bootstrap)
    click.echo(f"Kafka {state.version} running (pid {state.pid}, ready in {time.monotonic() - started:.1f} s); "
               f"log: {state.log}; stop with `lagduel kafka down`", err=True)


@kafka.command()
def down() -> None:
    """Stop the background broker and delete its data."""
    env = read_environment()
    state = BackgroundBroker.read(env)
    if state is None:
        click.echo("no background broker is running", err=True)
        return
    state.stop(env)
    click.echo(f"stopped Kafka at {state.bootstrap} (pid {state.pid})", err=True)


@kafka.command()
def restart() -> None:
    """Restart the background broker in place: same port and data, so topics, records and committed offsets
    survive. Running pipelines see a broker restart, as on a cluster."""
    env = read_environment()
    state = BackgroundBroker.read(env)
    if state is None:
        raise click.ClickException("no background broker is running: start one with `lagduel kafka up`")
    started = time.monotonic()
    try:
        state = state.restart(env)
    except BrokerError as exc:
        raise broker_failure(exc) from None
    click.echo(f"restarted Kafka at {state.bootstrap} (pid {state.pid}) in {time.monotonic() - started:.1f} s", err=True)


@kafka.command()
@click.option("--bootstrap", envvar="LAGDUEL_BOOTSTRAP", help="Kafka to inspect (default: the background broker).")
def status(bootstrap: str | None) -> None:
    """Show the broker's version, topics and consumer groups."""
    env = read_environment()
    state = BackgroundBroker.read(env)
    if not bootstrap and state is None:
        raise click.ClickException("no background broker is running: start one with `lagduel kafka up` or give --bootstrap")
    kafka_ = open_kafka(env, bootstrap) if bootstrap else None
    address = bootstrap or state.bootstrap  # type: ignore[union-attr]
    version = state.version if state and not bootstrap else "unknown (external broker)"
    admin = AdminClient({"bootstrap.servers": address})
    try:
        md = admin.list_topics(timeout=5)
        groups = admin.list_consumer_groups(request_timeout=5).result()
    except KafkaException as exc:
        raise click.ClickException(f"the broker at {address} does not answer: {exc}") from None
    finally:
        if kafka_:
            kafka_.close()
    click.echo(f"bootstrap: {address}")
    click.echo(f"version:   {version}")
    if state and not bootstrap:
        click.echo(f"pid:       {state.pid}\nlog:       {state.log}")
    topics = sorted(t for t in md.topics if not t.startswith("__"))
    click.echo(f"topics ({len(topics)}):")
    for t in topics:
        click.echo(f"  {t}  [{len(md.topics[t].partitions)} partitions]")
    names = sorted(g.group_id for g in groups.valid)
    click.echo(f"consumer groups ({len(names)}):")
    for g in names:
        click.echo(f"  {g}")
