"""`lagduel load`: the open-loop load generator on its own, against the pipeline's input topic."""

from __future__ import annotations

import uuid
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live

from load.generator import GeneratorFailed, LoadProgress, run_load
from load.producer import LoadPlan
from load.profiles import ProfileError, parse_profile
from pipeline.kafka import create_topics
from pipeline.keys import KEYS_HELP, KeysError, KeySpec, parse_keys
from pipeline.topology import TopologyError, load_topology

from lagduel.kafka_cmd import kafka_config_option, serving_kafka

PROFILE_HELP = ("constant[:rate=R] | step[:start=,step=,every=] | ramp[:start=,end=] | "
                "burst[:baseline=,height=,at=,length=] | replay:trace=FILE.csv")


MAX_RECORD_BYTES = 900_000
"""Room for what the stages add to an order under librdkafka's 1,000,000-byte message.max.bytes and the
stage services' 1 MiB request-body limit: a larger record could never reach the output topic."""


def _keys(_ctx: click.Context, _param: click.Parameter, text: str) -> KeySpec:
    try:
        return parse_keys(text)
    except KeysError as exc:
        raise click.BadParameter(str(exc)) from None


def profile_options(f):  # what load is offered: shared by `load`, `duel`, `simulate` and `advise`
    for opt in reversed([
        click.option("--profile", "profile_spec", default="burst", show_default=True, help=PROFILE_HELP),
        click.option("--duration", type=click.FloatRange(1), default=None, help="Seconds of load (profile default: 60)."),
        click.option("--seed", type=int, default=42, show_default=True, help="Seed of the order stream."),
        click.option("--invalid-share", type=click.FloatRange(0, 1), default=0.1, show_default=True),
        click.option("--keys", default="uniform", show_default=True, metavar="DISTRIBUTION", callback=_keys,
                     help=KEYS_HELP),
    ]):
        f = opt(f)
    return f


TOPOLOGY_OPTION = click.option("--topology", "topology_path", type=click.Path(dir_okay=False, path_type=Path),
                               default=None)


def load_options(f):  # shared by `load` and `duel`
    for opt in reversed([
        click.option("--record-bytes", type=click.IntRange(400, MAX_RECORD_BYTES), default=512, show_default=True,
                     help="Pad each record to about this size (at most 900,000: what the stages add must still fit "
                          "Kafka's 1 MB message limit)."),
        click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
                     help="Producer processes (histograms merged)."),
        click.option("--late-ms", type=click.FloatRange(0.1), default=25.0, show_default=True,
                     help="An event sent later than this after its intended time is late; over 1% late, or a "
                          "p99 lateness over 2x this, flags the run as behind schedule."),
        click.option("--bootstrap", help="An existing Kafka (default: LAGDUEL_BOOTSTRAP, `kafka up`, or embedded)."),
        kafka_config_option,
        TOPOLOGY_OPTION,
    ]):
        f = opt(f)
    return profile_options(f)


@click.command("load")
@load_options
@click.option("--topic", default=None, help="Send to this topic instead of the topology's input topic.")
@click.option("--fail-when-behind", is_flag=True, help="Exit 1 when the generator could not hold the schedule.")
def load(profile_spec: str, duration: float | None, seed: int, invalid_share: float, keys: KeySpec, record_bytes: int,
         workers: int, late_ms: float, bootstrap: str | None, kafka_config: Path | None, topology_path: Path | None,
         topic: str | None, fail_when_behind: bool) -> None:
    """Send seeded orders on an open-loop schedule; report send lateness (coordinated omission shows)."""
    try:
        profile = parse_profile(profile_spec, duration)
        topology = load_topology(topology_path)
    except (ProfileError, TopologyError) as exc:
        raise click.ClickException(str(exc)) from None
    if topic:
        raw = topology.model_dump(mode="python")
        raw["input"]["topic"] = topic
        topology = type(topology).model_validate(raw)
    console = Console(stderr=True)
    with serving_kafka(bootstrap, kafka_config) as (kafka, settings):
        create_topics(settings, [topology.input.topic], topology.partitions, topology.replication_factor)
        plan = LoadPlan(topology, f"load-{uuid.uuid4().hex[:8]}", profile, seed, invalid_share, record_bytes, workers,
                        keys, late_threshold_ms=late_ms, max_p99_lateness_ms=2 * late_ms)
        with Live(console=console, refresh_per_second=4) as live:
            def show(p: LoadProgress) -> None:
                live.update(f"[bold]{p.elapsed_s:6.1f} s[/] sent {p.sent:,}/{p.scheduled:,} scheduled · "
                            f"acked {p.acked:,} · late {p.late:,} · failed {p.failed:,}")
            try:
                result = run_load(plan, settings, show)
            except GeneratorFailed as exc:
                raise click.ClickException(str(exc)) from None
    if not console.is_terminal:
        console.print()  # Live leaves no line break behind when not on a terminal
    d = result.to_dict()
    console.print(f"{d['sent']:,} events to {topology.input.topic}: offered {d['offered_rate']:,.0f} ev/s, "
                  f"achieved {d['achieved_rate']:,.0f} ev/s, {d['valid']:,} valid / {d['invalid']:,} invalid")
    lat = d["lateness_ms"]
    console.print(f"send lateness ms: p50 {lat['p50']} p99 {lat['p99']} p99.9 {lat['p99.9']} max {lat['max']}")
    console.print(("[red]" if result.behind else "[green]") + result.verdict)
    if result.behind and fail_when_behind:
        raise SystemExit(1)
