"""`lagduel deploy openfaas`: render stack.yml, connectors and KEDA ScaledObjects from the topology, or deploy them."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.openfaas.render import RenderOptions, render, render_files, stack
from pipeline.settings import read_environment

from lagduel.deploy_topics import topic_options, topic_plan
from lagduel.render_files import write_rendered
from lagduel.topology_arg import topology_from


@click.command("openfaas")
@click.option("--render", "render_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write stack.yml, function/pipeline.yaml and one YAML file per kind into this directory.")
@click.option("--apply", "do_apply", is_flag=True,
              help="Deploy the functions through the gateway and apply the rest to the current kube context.")
@click.option("--topology", "topology_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Topology file (default: the reference pipeline.yaml).")
@click.option("--gateway", default="http://127.0.0.1:8080", show_default=True,
              help="The OpenFaaS gateway for --apply (basic auth: OPENFAAS_USER / OPENFAAS_PASSWORD).")
@click.option("--connector-gateway", default=RenderOptions.gateway, show_default=True,
              help="The gateway as the in-cluster connectors reach it.")
@click.option("--bootstrap", default=RenderOptions.bootstrap, show_default=True, help="The cluster's Kafka bootstrap.")
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read the gateway password from this file instead of OPENFAAS_PASSWORD.")
@click.option("--context", default=None, help="Kube context for --apply (default: the current one).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Kubeconfig file for --apply (default: KUBECONFIG or ~/.kube/config).")
@topic_options
def openfaas(render_dir: Path | None, do_apply: bool, topology_path: Path | None, gateway: str, connector_gateway: str,
             bootstrap: str, password_file: Path | None, context: str | None, kubeconfig: Path | None,
             topics_bootstrap: str | None, kafka_config: Path | None, no_topics: bool) -> None:
    """OpenFaaS CE + KEDA: a function per stage (stack.yml), a Kafka connector Deployment per stage,
    a ScaledObject per function scaling on its connector's consumer lag.

    --apply creates every topic the pipeline reads or writes with the topology's partitions (KEDA never
    scales a function past its topic's partition count), after checking the gateway, the cluster and
    Kafka, before changing anything."""
    if not render_dir and not do_apply:
        raise click.UsageError("give --render DIR, --apply, or both")
    topology = topology_from(topology_path)
    options = RenderOptions(gateway=connector_gateway, bootstrap=bootstrap)
    if render_dir:
        files = render_files(topology, options)
        write_rendered(render_dir, files)
        click.echo(f"wrote {len(files)} files to {render_dir}")
    if do_apply:
        from pipeline.openfaas.apply import ApplyError, GatewayCredentials, apply

        try:
            credentials = GatewayCredentials.resolve(read_environment(), password_file)
            topics = topic_plan(topology, topology.topics, bootstrap, topics_bootstrap, kafka_config, no_topics)
            done = apply(stack(topology, options), render(topology, options), gateway, credentials, context, kubeconfig,
                         topics)
        except ApplyError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo("\n".join(done))
