"""The deploy commands' Kafka topics: created through the admin API from where lagduel runs, at --apply."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from pipeline.kafka import KafkaSettings, TopicPlan
from pipeline.topology import Topology

from lagduel.kafka_cmd import client_settings


def topic_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--no-topics", is_flag=True,
                     help="Create no topics at --apply (then create them yourself, with the topology's partitions, "
                          "before the pipeline runs).")(f)
    f = click.option("--kafka-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="librdkafka settings, one key=value a line (e.g. SASL/TLS): for the admin connection that "
                          "creates the topics (default: LAGDUEL_KAFKA_CONFIG) and, with deploy openfaas, the "
                          "connectors' Secret.")(f)
    return click.option("--topics-bootstrap", default=None, metavar="HOST:PORT",
                        help="Kafka as reachable from here (e.g. a kubectl port-forward), used at --apply to create "
                             "the pipeline's topics with the topology's partitions (default: --bootstrap).")(f)


def topic_plan(topology: Topology, topics: Sequence[str], bootstrap: str, topics_bootstrap: str | None,
               kafka_config: Path | None, no_topics: bool) -> TopicPlan | None:
    """What --apply creates: `topics` on the Kafka reachable from here, unless --no-topics."""
    if no_topics:
        return None
    server, extra = client_settings(topics_bootstrap, kafka_config)
    return TopicPlan(KafkaSettings(server or bootstrap, extra=extra), tuple(topics), topology.partitions,
                     topology.replication_factor)
