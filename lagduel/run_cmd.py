"""`lagduel run`: the reference pipeline on one backend, with a completeness check."""

from __future__ import annotations

import uuid
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from load.batch import BatchResult, run_batch
from pipeline.backends import BACKENDS, StageStatus, UnknownBackend, make_backend
from pipeline.kafka import KafkaSettings, create_topics
from pipeline.orders import OrderFactory
from pipeline.topology import Topology

from lagduel.interrupts import run_until_interrupted
from lagduel.kafka_cmd import kafka_config_option, serving_kafka
from lagduel.topology_arg import topology_from


def _status_table(backend: str, done: int, expected: int, statuses: list[StageStatus]) -> Table:
    table = Table(title=f"{backend}: {done}/{expected} orders at the sinks", title_justify="left")
    for col in ("stage", "desired", "ready", "in flight", "queued", "retries", "dead-lettered"):
        table.add_column(col, justify="right" if col != "stage" else "left")
    for s in statuses:
        table.add_row(s.stage, str(s.desired), str(s.ready), str(s.in_flight), str(s.queued), str(s.retries),
                      str(s.dead_lettered))
    return table


@click.command()
@click.option("--backend", "backend_name", type=click.Choice(sorted(BACKENDS)), default="native", show_default=True,
              help="Where the stages run.")
@click.option("--events", "count", type=click.IntRange(1), default=10_000, show_default=True, help="Orders to send.")
@click.option("--invalid-share", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Share of deliberately invalid orders (they must end in the dead-letter topic).")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the order stream.")
@click.option("--record-bytes", type=click.IntRange(200), default=None, help="Pad each order record to about this size.")
@click.option("--topology", "topology_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Topology file (default: the reference pipeline.yaml).")
@click.option("--bootstrap", help="An existing Kafka (default: LAGDUEL_BOOTSTRAP, the `kafka up` broker, or a new embedded one).")
@kafka_config_option
@click.option("--latency-ms", type=click.FloatRange(0), default=None, help="Override every stage's emulated latency.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(1), default=600, show_default=True,
              help="Give up waiting for the sinks after this many seconds.")
def run(backend_name: str, count: int, invalid_share: float, seed: int, record_bytes: int | None,
        topology_path: Path | None, bootstrap: str | None, kafka_config: Path | None, latency_ms: float | None,
        timeout_s: float) -> None:
    """Run the pipeline on one backend: send orders, wait until each is delivered or dead-lettered,
    and print throughput and the lost / duplicate counts (lost must be 0).
    """
    topology = topology_from(topology_path)
    if latency_ms is not None:
        topology = topology.with_stage_overrides(latency_ms=latency_ms)
    console = Console(stderr=True)
    with serving_kafka(bootstrap, kafka_config) as (kafka, settings):
        console.print(f"Kafka at {kafka.bootstrap} ({kafka.origin})" + (f"; broker log: {kafka.log_path}" if kafka.log_path else ""))
        result = run_until_interrupted(_run(backend_name, topology, settings, count,
                                  OrderFactory(seed, invalid_share, record_bytes), timeout_s, console))
    _report(result, backend_name)


async def _run(backend_name: str, topology: Topology, settings: KafkaSettings, count: int, factory: OrderFactory,
               timeout_s: float, console: Console) -> BatchResult:
    run_topology = topology.with_topic_prefix(f"run-{uuid.uuid4().hex[:6]}-")
    try:
        create_topics(settings, run_topology.topics, run_topology.partitions, run_topology.replication_factor)
        backend = make_backend(backend_name, run_topology, settings)
    except UnknownBackend as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        raise click.ClickException(f"cannot set up the {backend_name} backend: {exc}") from None
    console.print(f"starting the {backend_name} backend on topics {run_topology.input.topic} → {run_topology.output.topic}")
    async with backend:
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            return await run_batch(backend, run_topology, settings, count, factory, timeout_s,
                                   progress=lambda done, s: live.update(_status_table(backend_name, done, count, s)))


def _report(result: BatchResult, backend: str) -> None:
    r = result.report
    click.echo(f"backend:        {backend}")
    click.echo(f"orders:         {result.events} ({result.valid} valid, {result.events - result.valid} invalid)")
    click.echo(f"delivered:      {r['delivered']} to the output topic")
    reasons = ", ".join(f"{k}: {v}" for k, v in list(r["dead_letter_reasons"].items())[:6])
    click.echo(f"dead-lettered:  {r['dead_lettered']}" + (f" ({reasons})" if reasons else ""))
    click.echo(f"lost:           {r['lost']}" + (f" (late: {r['late']})" if r["late"] else ""))
    click.echo(f"duplicates:     {r['duplicated']}")
    click.echo(f"misrouted:      {r['misrouted']}")
    click.echo(f"throughput:     {result.throughput:.0f} events/s ({result.seconds:.1f} s end to end)")
    if result.replicas_seen:
        click.echo("peak replicas:  " + ", ".join(f"{k}={v}" for k, v in result.replicas_seen.items()))
    if not result.complete:
        raise click.ClickException(f"incomplete run: {r['lost']} lost, {r['misrouted']} misrouted "
                                   "(timeout or backend failure)")
