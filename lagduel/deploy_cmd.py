"""`lagduel deploy knative | openfaas`: render the manifests from the topology, or apply them."""

from __future__ import annotations

import click

from lagduel.knative_deploy import knative
from lagduel.openfaas_deploy import openfaas


@click.group()
def deploy() -> None:
    """Render the reference pipeline's manifests for a backend (--render DIR) or apply them to the
    current kube context (--apply). The committed sets live in deploy/knative and deploy/openfaas."""


deploy.add_command(knative)
deploy.add_command(openfaas)
