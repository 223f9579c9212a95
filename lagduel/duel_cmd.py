"""`lagduel duel`: the same seeded load on each backend; backlog, replicas, latency; a report folder; an exit
status a CI job can gate on."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from load.backend_run import DuelPlan, Live as BackendLive
from load.cluster import CLUSTER_BACKENDS, ClusterTarget, ClusterUnavailable
from load.duel import EXIT_ERROR, EXIT_INSTRUMENT, EXIT_SLO, DuelInterrupted, exit_status, run_duel
from load.faults import FAULT_HELP, FaultError, parse_fault
from load.profiles import ProfileError, parse_profile
from load.runfolder import read_summary
from load.slo import SLO_HELP, Slo, SloError, parse_slo
from pipeline.backends import BACKENDS, UnknownBackend
from pipeline.keys import KeySpec
from pipeline.topology import TopologyError, load_topology

from lagduel.interrupts import Interrupted, run_until_interrupted
from lagduel.kafka_cmd import client_settings, serving_kafka
from lagduel.load_cmd import load_options


def parse_overrides(items: tuple[str, ...]) -> dict:
    """`knative.window_s=30` -> {"knative": {"window_s": 30}} (values parsed as YAML scalars)."""
    out: dict = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{item!r}: expected key=value, e.g. keda.polling_interval_s=1", param_hint="--set")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise click.BadParameter(f"{item!r}: the value is not valid YAML ({problem})", param_hint="--set") from None
        node = out
        *path, leaf = key.split(".")
        for depth, part in enumerate(path):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise click.BadParameter(f"{item!r} conflicts with --set {'.'.join(path[:depth + 1])}=...",
                                         param_hint="--set")
        if isinstance(node.get(leaf), dict):
            raise click.BadParameter(f"{item!r} conflicts with the --set {key}.* given before it", param_hint="--set")
        node[leaf] = parsed
    return out


def writable_out(out: Path) -> None:
    """Refuse an output folder the report could not be written to, before any backend starts."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".lagduel-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise click.BadParameter(f"{out}: cannot write the run folder there ({exc.strerror})", param_hint="--out") from None


def _table(lives: dict[str, BackendLive]) -> Table:
    t = Table(title="lagduel duel", title_justify="left")
    for col in ("backend", "run", "phase", "t (s)", "sent/scheduled", "in ev/s", "out ev/s", "backlog", "ready",
                "orders out"):
        t.add_column(col, justify="left" if col in ("backend", "phase") else "right")
    for (b, repeat), v in lives.items():
        t.add_row(b, str(repeat + 1), v.phase, f"{v.elapsed_s:.0f}", f"{v.sent:,}/{v.scheduled:,}",
                  f"{v.produce_rate:,.0f}", f"{v.output_rate:,.0f}", f"{v.lag:,}", str(v.ready), f"{v.received:,}")
    return t


def _cluster_target(target: str, names: list[str], bootstrap: str | None, kube_context: str | None,
                    function_namespace: str, sets: tuple[str, ...], faults: tuple[str, ...]) -> ClusterTarget | None:
    """The cluster to drive, or None for a local duel; what a cluster duel cannot do is refused up front."""
    if target == "local":
        if kube_context:
            raise click.BadParameter("a kube context names a cluster: add --target cluster to duel the deployed "
                                     "pipelines", param_hint="--kube-context")
        return None
    if not bootstrap:
        raise click.BadParameter("a cluster duel needs the cluster's Kafka: give --bootstrap HOST:PORT (or "
                                 "bootstrap.servers in --kafka-config)", param_hint="--target")
    if len(names) > 1:  # deployed from one topology, both would read its input topic: each run's load would flow
        # through both pipelines, and the results would not be one backend's.
        raise click.BadParameter("a cluster duel drives one deployed pipeline per run: give --backends knative or "
                                 "--backends openfaas (with the --topology it was deployed from) and compare the "
                                 "runs with `lagduel compare`", param_hint="--backends")
    local_only = [b for b in names if b not in CLUSTER_BACKENDS]
    if local_only:
        raise click.BadParameter(f"{', '.join(local_only)} runs only locally; on a cluster choose from "
                                 f"{', '.join(CLUSTER_BACKENDS)}", param_hint="--backends")
    if sets:
        raise click.BadParameter("--set changes the local emulation; on a cluster the deployed settings are in "
                                 "force (change pipeline.yaml and deploy again)", param_hint="--set")
    writing = [f for f in faults if not f.startswith("poison")]
    if writing:
        raise click.BadParameter(f"{', '.join(writing)}: a cluster duel writes nothing to the cluster, so only "
                                 "poison faults (a record on the input topic) are injected there", param_hint="--fault")
    return ClusterTarget(kube_context, function_namespace)


def parse_slos(texts: tuple[str, ...]) -> list[Slo]:
    try:
        return [parse_slo(t) for t in texts]
    except SloError as exc:
        raise click.BadParameter(str(exc), param_hint="--slo") from None


# Options `simulate` shares with `duel`.
BACKENDS_OPTION = click.option("--backends", default="knative,openfaas,native", show_default=True,
                               help=f"Comma-separated, run in this order (known: {', '.join(BACKENDS)}).")
OUT_OPTION = click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"),
                          show_default=True)
DRAIN_TIMEOUT_OPTION = click.option("--drain-timeout", type=click.FloatRange(1), default=180, show_default=True,
                                    help="After the load, wait at most this long for each backend to deliver "
                                         "everything.")
SETTLE_OPTION = click.option("--settle", type=click.FloatRange(0), default=45, show_default=True,
                             help="Keep sampling this long after the drain, to see replicas scale back.")
SET_OPTION = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                          help="Override a stage setting on every stage, e.g. --set keda.scale_down_stabilization_s=30; "
                               "partitions, replication_factor and emulation.* apply to the topology, e.g. "
                               "--set partitions=12.")
SLO_OPTION = click.option("--slo", "slo_texts", multiple=True, metavar="METRIC<OP><VALUE>", help=SLO_HELP)


def parse_backends(backends: str) -> list[str]:
    """`--backends`: known names, each once."""
    names = [b.strip() for b in backends.split(",") if b.strip()]
    if len(set(names)) != len(names):
        raise click.BadParameter(f"{backends!r} names a backend twice; use --repeat to run it again",
                                 param_hint="--backends")
    unknown = [b for b in names if b not in BACKENDS]
    if unknown or not names:
        raise click.ClickException(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    return names


@click.command("duel")
@load_options
@BACKENDS_OPTION
@OUT_OPTION
@DRAIN_TIMEOUT_OPTION
@SETTLE_OPTION
@click.option("--target", type=click.Choice(["local", "cluster"]), default="local", show_default=True,
              help="local: each backend emulated on this machine. cluster: drive the pipelines deployed with "
                   "`lagduel deploy` (needs the cluster's Kafka: --bootstrap or --kafka-config); no emulation runs "
                   "and nothing but the load's records is written.")
@click.option("--kube-context", default=None, help="With --target cluster: the kube context (default: the current one).")
@click.option("--function-namespace", default="openfaas-fn", show_default=True,
              help="With --target cluster: where the OpenFaaS functions run.")
@SET_OPTION
@click.option("--repeat", "repeats", type=click.IntRange(1, 50), default=1, show_default=True,
              help="Run each backend N times in a seeded, interleaved order; report medians and spreads, and declare "
                   "a winner only where the intervals do not overlap (min–max for 2 runs, bootstrap 95 % CI from 3).")
@SLO_OPTION
@click.option("--fault", "fault_texts", multiple=True, metavar="KIND[:STAGE]@TIME", help=FAULT_HELP)
@click.option("--start-timeout", type=click.FloatRange(1), default=120, show_default=True,
              help="Before the load: wait at most this long for every consumer group to be assigned and every stage "
                   "to reach its starting replica count.")
def duel(profile_spec: str, duration: float | None, seed: int, invalid_share: float, keys: KeySpec, record_bytes: int,
         workers: int,
         late_ms: float, bootstrap: str | None, kafka_config: Path | None, topology_path: Path | None, backends: str,
         out: Path, drain_timeout: float, settle: float, target: str, kube_context: str | None, function_namespace: str,
         sets: tuple[str, ...], repeats: int, slo_texts: tuple[str, ...], fault_texts: tuple[str, ...],
         start_timeout: float) -> None:
    """Run identical seeded load through each backend and write a run folder with an HTML report.

    \b
    A backend run is instrument-bound when the machine, not the autoscaler, limited it: CPU saturated
    for much of the disturbance, the generator behind schedule, or a stage with a growing backlog
    processing clearly less than its modeled capacity. No winner is drawn from such a run.

    \b
    Exit status: 0 all good, 1 error, 2 usage, 3 an SLO failed, 4 a backend was instrument-bound,
    130 interrupted (Ctrl-C or SIGTERM: the backends are stopped, the finished runs reported).
    """
    names = parse_backends(backends)
    bootstrap, _ = client_settings(bootstrap, kafka_config)
    cluster = _cluster_target(target, names, bootstrap, kube_context, function_namespace, sets, fault_texts)
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
    slos = parse_slos(slo_texts)
    try:
        faults = tuple(parse_fault(f, [s.name for s in topology.stages], profile.duration_s) for f in fault_texts)
    except FaultError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None
    writable_out(out)
    plan = DuelPlan(profile, seed, invalid_share, record_bytes, workers, late_ms, drain_timeout, settle,
                    cluster=cluster, start_timeout_s=start_timeout, repeats=repeats, faults=faults, keys=keys)
    console = Console(stderr=True)
    with serving_kafka(bootstrap, kafka_config) as (kafka, settings):
        if any(f.kind == "broker-restart" for f in faults):
            if kafka.restart is None:
                raise click.BadParameter(f"lagduel cannot restart the broker at {kafka.bootstrap} ({kafka.origin}); "
                                         "drop --bootstrap to let lagduel run one", param_hint="--fault")
            plan = replace(plan, broker_restart=kafka.restart)
        lives: dict[tuple[str, int], BackendLive] = {}
        with Live(_table(lives), console=console, refresh_per_second=2) as live:
            def show(v: BackendLive) -> None:
                lives[(v.backend, v.repeat)] = v
                live.update(_table(lives))
            try:
                folder = run_until_interrupted(run_duel(names, topology, settings, plan, out, kafka.version,
                                                        on_live=show, slos=slos))
            except (UnknownBackend, ClusterUnavailable) as exc:
                raise click.ClickException(str(exc)) from None
            except DuelInterrupted as exc:
                raise Interrupted(f"{exc}; every process this run started was stopped") from None
    console.print((folder / "summary.md").read_text())
    console.print(f"report: {folder / 'report.html'}")
    summary = read_summary(folder)
    status = exit_status(summary)
    if status == EXIT_INSTRUMENT:
        console.print(f"instrument-bound: {', '.join(summary['instrument_bound'])} (exit {EXIT_INSTRUMENT})")
    elif status == EXIT_SLO:
        console.print(f"SLO failed: {', '.join(summary['slo_failed'])} (exit {EXIT_SLO})")
    if summary["unavailable"] and status == 0:
        status = EXIT_ERROR
    sys.exit(status)
