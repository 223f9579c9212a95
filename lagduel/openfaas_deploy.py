"""`lagduel deploy openfaas`: render stack.yml, connectors and KEDA ScaledObjects from the topology, or deploy them."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.kafka import ClientConfigError, read_client_config
from pipeline.openfaas.render import SECRET_FILE, RenderOptions, render, render_files, stack
from pipeline.settings import read_environment

from lagduel.deploy_topics import topic_options, topic_plan
from lagduel.render_files import build_wheel, image_option, write_rendered
from lagduel.topology_arg import topology_from


@click.command("openfaas")
@click.option("--render", "render_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write a build context into this directory: stack.yml, the faas-cli template, the handler folder "
                   "function/, the Dockerfiles, one YAML file per kind, and the lagduel wheel in function/wheels/.")
@click.option("--no-wheel", is_flag=True, help="With --render: build no lagduel wheel (the images need one).")
@click.option("--apply", "do_apply", is_flag=True,
              help="Deploy the functions through the gateway and apply the rest to the current kube context.")
@click.option("--topology", "topology_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Topology file (default: the reference pipeline.yaml).")
@click.option("--gateway", default=RenderOptions.stack_gateway, show_default=True,
              help="The OpenFaaS gateway as reachable from here: --apply deploys through it (basic auth: "
                   "OPENFAAS_USER / OPENFAAS_PASSWORD), and it is stack.yml's provider gateway, for faas-cli.")
@click.option("--connector-gateway", default=RenderOptions.gateway, show_default=True,
              help="The gateway as the in-cluster connectors reach it.")
@image_option("--image", RenderOptions.function_image, "The function images; {stage} is replaced by the stage name.",
              stage_template=True)
@image_option("--connector-image", RenderOptions.connector_image, "The connectors' image.")
@click.option("--bootstrap", default=RenderOptions.bootstrap, show_default=True, help="The cluster's Kafka bootstrap.")
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read the gateway password from this file instead of OPENFAAS_PASSWORD.")
@click.option("--context", default=None, help="Kube context for --apply (default: the current one).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Kubeconfig file for --apply (default: KUBECONFIG or ~/.kube/config).")
@topic_options
def openfaas(render_dir: Path | None, no_wheel: bool, do_apply: bool, topology_path: Path | None, gateway: str,
             connector_gateway: str, image: str, connector_image: str, bootstrap: str, password_file: Path | None,
             context: str | None, kubeconfig: Path | None, topics_bootstrap: str | None, kafka_config: Path | None,
             no_topics: bool) -> None:
    """OpenFaaS CE + KEDA: a function per stage (stack.yml), a Kafka connector Deployment per stage,
    a ScaledObject per function scaling on its connector's consumer lag.

    --apply creates every topic the pipeline reads or writes with the topology's partitions (KEDA never
    scales a function past its topic's partition count), after checking the gateway, the cluster and
    Kafka, before changing anything.

    --kafka-config FILE also goes to the connectors: its settings (bootstrap.servers aside) are rendered
    into the Secret <pipeline>-kafka-client (kafka-client-secret.yaml, owner-readable, ignored by git),
    mounted into each connector and passed as its --kafka-config. Files it names (ssl.ca.location, ...)
    must exist at those paths in the connector container. Without the option (LAGDUEL_KAFKA_CONFIG does
    not count here) no Secret is rendered."""
    if not render_dir and not do_apply:
        raise click.UsageError("give --render DIR, --apply, or both")
    topology = topology_from(topology_path)
    connector_kafka = None
    if kafka_config is not None:
        try:
            connector_kafka = read_client_config(kafka_config)
        except ClientConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--kafka-config") from None
        connector_kafka.pop("bootstrap.servers", None)  # the connectors get --bootstrap
    options = RenderOptions(gateway=connector_gateway, stack_gateway=gateway, bootstrap=bootstrap,
                            function_image=image, connector_image=connector_image, kafka_config=connector_kafka)
    if render_dir:
        files = render_files(topology, options)
        write_rendered(render_dir, files, private={SECRET_FILE})
        click.echo(f"wrote {len(files)} files to {render_dir}")
        if not no_wheel:
            wheel = build_wheel(render_dir / "function" / "wheels")
            click.echo(f"built {wheel}")
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
