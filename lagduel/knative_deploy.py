"""`lagduel deploy knative`: render the topology's Knative resources to YAML, or apply them to a cluster."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.knative.manifests import RenderOptions, render, render_files

from lagduel.deploy_topics import topic_options, topic_plan
from lagduel.render_files import build_wheel, image_option, write_rendered
from lagduel.topology_arg import topology_from


@click.command("knative")
@click.option("--render", "render_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write a build context into this directory: the manifests (one YAML file per kind + "
                   "kustomization.yaml), the stage image's Dockerfile and the lagduel wheel in wheels/.")
@click.option("--no-wheel", is_flag=True, help="With --render: build no lagduel wheel (the image needs one).")
@click.option("--apply", "do_apply", is_flag=True, help="Server-side apply them to the current kube context.")
@click.option("--topology", "topology_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Topology file (default: the reference pipeline.yaml).")
@click.option("--namespace", default=None, help="Namespace (default: the topology's).")
@image_option("--image", RenderOptions.image, "The stage image.")
@click.option("--bootstrap", default=RenderOptions.bootstrap, show_default=True, help="The cluster's Kafka bootstrap.")
@click.option("--context", default=None, help="Kube context for --apply (default: the current one).")
@topic_options
def knative(render_dir: Path | None, no_wheel: bool, do_apply: bool, topology_path: Path | None, namespace: str | None, image: str,
            bootstrap: str, context: str | None, topics_bootstrap: str | None, kafka_config: Path | None,
            no_topics: bool) -> None:
    """Knative Eventing + Serving: KafkaSource, Kafka Broker, a Trigger and a Service per stage, KafkaSinks.

    --apply creates the input topic with the topology's partitions (the Kafka broker and sinks create
    theirs from the rendered partition counts), after checking the cluster and Kafka, before changing
    anything."""
    if not render_dir and not do_apply:
        raise click.UsageError("give --render DIR, --apply, or both")
    topology = topology_from(topology_path)
    manifests = render(topology, RenderOptions(image=image, bootstrap=bootstrap, namespace=namespace))
    if render_dir:
        write_rendered(render_dir, render_files(manifests))
        click.echo(f"wrote {len(manifests)} manifests to {render_dir}")
        if not no_wheel:
            click.echo(f"built {build_wheel(render_dir / 'wheels')}")
    if do_apply:
        from pipeline.knative.apply import ApplyError, apply

        topics = topic_plan(topology, [topology.input.topic], bootstrap, topics_bootstrap, kafka_config, no_topics)
        try:
            done = apply(manifests, context=context, topics=topics)
        except ApplyError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo("\n".join(done))
