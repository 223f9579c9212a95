"""`lagduel simulate`: the duel's load and report, with the backends' autoscalers on a modeled data plane."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console

from load.agreement import check, scenario_of
from load.duel import EXIT_SLO, exit_status
from load.profiles import ProfileError, parse_profile
from load.runfolder import read_summary
from load.sim.model import SIMULATED_BACKENDS, SimConfig, SimError, with_partitions
from load.simulation import run_simulation
from pipeline.keys import KeySpec
from pipeline.topology import TopologyError, load_topology

from lagduel.duel_cmd import (
    BACKENDS_OPTION, DRAIN_TIMEOUT_OPTION, OUT_OPTION, SET_OPTION, SETTLE_OPTION, SLO_OPTION, parse_backends,
    parse_overrides, parse_slos, writable_out,
)
from lagduel.load_cmd import TOPOLOGY_OPTION, profile_options


@click.command("simulate")
@profile_options
@TOPOLOGY_OPTION
@BACKENDS_OPTION
@click.option("--partitions", type=click.IntRange(1, 10_000), default=None,
              help="Partitions of every topic (default: the topology's). The same as --set partitions=N.")
@OUT_OPTION
@DRAIN_TIMEOUT_OPTION
@SETTLE_OPTION
@SET_OPTION
@SLO_OPTION
@click.option("--like", "like", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Simulate what this run folder (an emulated duel) ran: its profile, seed, invalid share, topology "
                   "and backends (--set, --partitions and --keys still apply on top), then report how well the two "
                   "agree: replicas within ±1 on 90 % of the samples, peak backlog and time to recover within 20 %. "
                   "Each control plane starts on the run's recorded clocks at its load's start (the KPA's tick, "
                   "KEDA's poll and the HPA's 15 s sync: the manifest's start_line control_clock); for a run without "
                   "them, the starting line's wait is the start lead. The run's measured data plane (pod start, the "
                   "real HTTP hop to a replica, the baseline transit to the sink: its calibration) replaces the "
                   "modeled one.")
@click.option("--start-lead", "lead_s", type=click.FloatRange(0, 3600), default=None,
              help="Seconds each backend runs before the load starts (default: the pod start delay). It sets where "
                   "KEDA's polls and the HPA's 15 s syncs fall against a burst; an emulated duel's is its starting "
                   "line plus the generator's start, a few seconds. With --like it replaces the run's recorded "
                   "clocks.")
@click.option("--step", "step_s", type=click.FloatRange(0.01, 1.0), default=0.1, show_default=True,
              help="The simulator's time step in seconds (a multiple of 0.01 that divides 1 s). Each hop's timing "
                   "is exact to about one step.")
def simulate(profile_spec: str, duration: float | None, seed: int, invalid_share: float, keys: KeySpec,
             topology_path: Path | None,
             backends: str, partitions: int | None, out: Path, drain_timeout: float, settle: float,
             sets: tuple[str, ...], slo_texts: tuple[str, ...], like: Path | None,
             lead_s: float | None, step_s: float) -> None:
    """Simulate each backend on the duel's seeded load and write the same run folder and report.

    \b
    The autoscalers are the very policy objects the local emulation runs (the Knative KPA with
    panic mode and the activator; KEDA's kafka scaler and scale loop with the HPA; native has none),
    on a modeled data plane: partitions, dispatcher in-flight limits, per-replica concurrency and
    service time, pod start delay, commit interval and hop costs, all from the topology
    (pipeline.yaml, --set). No Kafka and no cluster are needed, and a run takes seconds, so it
    reaches scales one machine cannot emulate, e.g.

    \b
      lagduel simulate --backends knative,openfaas --partitions 1000 --duration 600 \\
          --profile burst:baseline=2000,height=80000,at=60,length=120

    \b
    The report says "simulated" and gives the model's error bound (events are aggregated per
    partition and time step); the instrument check does not apply. `lagduel compare` and --slo
    work as for a duel. Prints the report's path.

    \b
    Exit status: 0 all good, 1 error, 2 usage, 3 an SLO failed.
    """
    names = parse_backends(backends)
    if like is not None:
        try:
            scenario = scenario_of(like)
        except (ValueError, KeyError, ProfileError) as exc:
            raise click.BadParameter(str(exc).splitlines()[0], param_hint="--like") from None
        profile, topology, seed, invalid_share = (scenario.profile, scenario.topology, scenario.seed,
                                                  scenario.invalid_share)
        names = [b for b in scenario.backends if b in SIMULATED_BACKENDS]
        drain_timeout, settle = scenario.drain_timeout_s, scenario.settle_s
        clocks = scenario.clocks if lead_s is None else None
        measured = scenario.measured
        lead_s = scenario.lead_s if lead_s is None else lead_s
        if click.get_current_context().get_parameter_source("keys") is click.core.ParameterSource.DEFAULT:
            keys = scenario.keys
    else:
        clocks = measured = None
        try:
            profile = parse_profile(profile_spec, duration)
        except ProfileError as exc:
            raise click.BadParameter(str(exc), param_hint="--profile") from None
        try:
            topology = load_topology(topology_path)
        except TopologyError as exc:
            raise click.ClickException(str(exc).splitlines()[0]) from None
    if sets:
        try:
            topology = topology.with_stage_overrides(**parse_overrides(sets))
        except TopologyError as exc:
            raise click.BadParameter(str(exc).splitlines()[0], param_hint="--set") from None
    try:
        topology = with_partitions(topology, partitions)
        config = SimConfig(step_s=step_s, seed=seed, invalid_share=invalid_share, keys=keys,
                           drain_timeout_s=drain_timeout, settle_s=settle, lead_s=lead_s, clocks=clocks,
                           measured=measured)
    except TopologyError as exc:
        raise click.BadParameter(str(exc).splitlines()[0], param_hint="--partitions") from None
    except SimError as exc:
        raise click.BadParameter(str(exc), param_hint="--step") from None
    slos = parse_slos(slo_texts)
    writable_out(out)
    console = Console(stderr=True)
    began = time.perf_counter()
    with console.status("simulating") as status:
        folder = run_simulation(names, topology, profile, config, out, slos,  # type: ignore[arg-type]
                                on_progress=lambda b, t: status.update(f"simulating {b}: {t:,.0f} s"))
    console.print((folder / "summary.md").read_text())
    console.print(f"simulated {', '.join(names)} in {time.perf_counter() - began:.1f} s")
    if like is not None:
        for a in check(like, folder):
            console.print(f"{a.backend}: {'agrees' if a.ok else 'DIFFERS'} with {like.name} — "
                          + "; ".join(f"{s.stage} desired/ready within ±1 on {s.desired_share:.0%}/{s.ready_share:.0%}"
                                      for s in a.stages) + "; "
                          + "; ".join(f"{m.text} ({'ok' if m.ok else 'off'})" for m in a.metrics)
                          + ("; the reference run was instrument-bound, so the machine may explain a difference"
                             if a.reference_bound else ""))
    click.echo(f"report: {folder / 'report.html'}")
    summary = read_summary(folder)
    status_code = exit_status(summary)
    if status_code == EXIT_SLO:
        console.print(f"SLO failed: {', '.join(summary['slo_failed'])} (exit {EXIT_SLO})")
    sys.exit(status_code)
