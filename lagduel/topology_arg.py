"""The topology a command runs on, or a one-line CLI error naming the key and the problem."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.topology import Topology, TopologyError, load_topology


def topology_from(path: Path | None) -> Topology:
    try:
        return load_topology(path)
    except TopologyError as exc:
        raise click.ClickException(str(exc)) from None
