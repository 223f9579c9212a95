"""`lagduel connector`: the Kafka connector of one OpenFaaS function (runs in the connector image)."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.kafka import KafkaSettings
from pipeline.openfaas.connector import ConnectorConfig, FunctionConnector, run_connector
from pipeline.settings import read_environment
from pipeline.topology import TopologyError, load_topology

from lagduel.kafka_cmd import client_settings, kafka_config_option


@click.command()
@click.option("--stage", required=True, help="The stage (function) to feed.")
@click.option("--topology", "topology_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Topology file (default: the reference pipeline.yaml).")
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers (default: LAGDUEL_BOOTSTRAP or localhost:9092).")
@kafka_config_option
@click.option("--gateway", default="http://127.0.0.1:8080", show_default=True, help="The OpenFaaS gateway.")
@click.option("--max-in-flight", type=click.IntRange(1), default=None,
              help="Invocations in flight (default: the stage's concurrency × max replicas).")
@click.option("--commit-interval", type=click.FloatRange(0.01), default=1.0, show_default=True,
              help="Seconds between offset commits.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=0,
              help="Serve Prometheus metrics on this port (0: off).")
@click.option("--totals-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="On a graceful stop, write the final counts here as JSON.")
def connector(stage: str, topology_path: Path | None, bootstrap: str | None, kafka_config: Path | None, gateway: str,
              max_in_flight: int | None, commit_interval: float, metrics_port: int, totals_file: Path | None) -> None:
    """Consume the stage's input topic, invoke <gateway>/function/<stage>, produce the reply to the
    stage's output topic, dead-letter rejected and exhausted events. SIGTERM drains in-flight work."""
    try:
        topology = load_topology(topology_path)
        config = ConnectorConfig.for_stage(topology, stage, gateway, max_in_flight, commit_interval)
    except (TopologyError, KeyError) as exc:
        raise click.ClickException(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)) from None
    bootstrap, extra = client_settings(bootstrap, kafka_config)
    settings = KafkaSettings(bootstrap or read_environment().bootstrap or "localhost:9092", extra=extra)
    conn = FunctionConnector(settings, config)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, registry=conn.metrics.registry)
    click.echo(f"connector {config.group}: {config.stage.input.topic} → {config.function_url} → "
               f"{config.stage.output.topic} (in flight ≤ {config.max_in_flight})", err=True)
    run_connector(conn, totals_file)
