"""`lagduel advise`: the cheapest autoscaler settings that meet your SLOs, found in the simulator."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import click
from rich.console import Console

from load.advice import KNOBS, advise, recommended_yaml
from load.duel import EXIT_SLO
from load.profiles import ProfileError, parse_profile
from load.report.tradeoff import render
from pipeline.keys import KeySpec
from load.sim.model import SimConfig, SimError, with_partitions
from pipeline.topology import TopologyError, load_topology

from lagduel.duel_cmd import OUT_OPTION, SET_OPTION, SLO_OPTION, parse_overrides, parse_slos, writable_out
from lagduel.load_cmd import TOPOLOGY_OPTION, profile_options


def _swept(backend: str, lead: str) -> str:
    primary, secondary = KNOBS[backend]
    names = ", ".join(k.upstream.removeprefix("autoscaling.knative.dev/") for k in (*primary, *secondary))
    return textwrap.fill(names, 96, initial_indent=lead, subsequent_indent="      ")


ADVISE_HELP = f"""Recommend the cheapest autoscaler settings that meet the SLOs, from simulated runs.

\b
Sweeps the backend's settings in the simulator (`lagduel simulate`), every stage alike:
{_swept("openfaas", "  openfaas (KEDA + HPA): ")}
{_swept("knative", "  knative (KPA): ")}
a grid over the first two, then the others one at a time from the best so far. Each trial is
judged by the duel's SLO rules; its cost is replica-seconds. Prints the chosen settings as the
exact ScaledObject fields or Knative annotations to paste, the matching `--set` arguments to
check them in `lagduel duel`, and structural limits no setting lifts (replicas above the
partition count, the HPA tolerance stall below the cap, what lagThreshold means per replica).
Writes a trade-off page (cost against the first SLO's metric) under --out.

\b
  lagduel advise --backend openfaas --profile burst --slo 'time_lag.p99<5s'

\b
Exit status: 0 a recommendation meets every SLO, 1 error, 2 usage, 3 no setting swept does.
"""


@click.command("advise", help=ADVISE_HELP)
@click.option("--backend", type=click.Choice(sorted(KNOBS)), required=True, help="Whose settings to sweep.")
@profile_options
@TOPOLOGY_OPTION
@click.option("--partitions", type=click.IntRange(1, 10_000), default=None,
              help="Partitions of every topic (default: the topology's).")
@SLO_OPTION
@OUT_OPTION
@SET_OPTION
@click.option("--step", "step_s", type=click.FloatRange(0.01, 1.0), default=0.1, show_default=True,
              help="The simulator's time step in seconds.")
def advise_cmd(backend: str, profile_spec: str, duration: float | None, seed: int, invalid_share: float, keys: KeySpec,
               topology_path: Path | None, partitions: int | None, slo_texts: tuple[str, ...], out: Path,
               sets: tuple[str, ...], step_s: float) -> None:
    if not slo_texts:
        raise click.BadParameter("give at least one SLO to meet, e.g. --slo 'time_lag.p99<5s'", param_hint="--slo")
    slos = parse_slos(slo_texts)
    try:
        profile = parse_profile(profile_spec, duration)
    except ProfileError as exc:
        raise click.BadParameter(str(exc), param_hint="--profile") from None
    try:
        topology = load_topology(topology_path)
    except TopologyError as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    try:
        if sets:
            topology = topology.with_stage_overrides(**parse_overrides(sets))
        topology = with_partitions(topology, partitions)
        config = SimConfig(step_s=step_s, seed=seed, invalid_share=invalid_share, keys=keys)
    except TopologyError as exc:
        raise click.BadParameter(str(exc).splitlines()[0], param_hint="--set") from None
    except SimError as exc:
        raise click.BadParameter(str(exc), param_hint="--step") from None
    writable_out(out)
    console = Console(stderr=True)
    with console.status("simulating") as status:
        advice = advise(topology, profile, backend, slos, config,  # type: ignore[arg-type]
                        on_trial=lambda t, n: status.update(f"trial {n}: {t.cost:,.0f} replica·s, "
                                                            f"{'meets' if t.passed else 'misses'} the SLOs"))
    folder = out / f"advise-{backend}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True, exist_ok=True)
    text = recommended_yaml(advice)
    (folder / "tradeoff.html").write_text(render(advice, profile.describe(), text))
    (folder / "advice.json").write_text(json.dumps({
        "backend": backend, "profile": profile.describe(), "slos": list(slo_texts), "met": advice.met,
        "recommended": advice.best.settings, "set": advice.set_args(), "warnings": advice.warnings,
        "trials": [{"settings": t.settings, "replica_seconds": t.cost, "metric": t.metric, "passed": t.passed}
                   for t in advice.trials]}, indent=2, default=str) + "\n")
    b = advice.best
    if advice.met:
        click.echo(f"Cheapest of {len(advice.trials)} simulated settings meeting {', '.join(slo_texts)}: "
                   f"{b.cost:,.0f} replica·s, {slos[0].metric} {b.metric}")
    else:
        click.echo(f"None of {len(advice.trials)} simulated settings meets {', '.join(slo_texts)}; the closest "
                   f"({slos[0].metric} {b.metric}, {b.cost:,.0f} replica·s):")
    click.echo(text, nl=False)
    click.echo("check it in the emulation: lagduel duel --backends " + backend + " "
               + " ".join(f"--set {a}" for a in advice.set_args()))
    for w in advice.warnings:
        click.echo(f"warning: {w}")
    click.echo(f"trade-off: {folder / 'tradeoff.html'}")
    sys.exit(0 if advice.met else EXIT_SLO)
