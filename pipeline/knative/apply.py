"""Apply the rendered Knative manifests to the current kube context (server-side apply)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.kafka import TopicError, TopicPlan
from pipeline.kube import ApplyError, Applier, dynamic_client

__all__ = ["ApplyError", "apply"]


def apply(manifests: Sequence[dict[str, Any]], context: str | None = None, kubeconfig: Path | None = None,
          topics: TopicPlan | None = None) -> list[str]:
    """Check everything (the cluster, then Kafka), create the missing topics, then apply in order (Namespace
    first); returns what was done, a line per topic and per object."""
    applier = Applier(dynamic_client(context, kubeconfig), manifests,
                      "install Knative Serving, Knative Eventing and the Kafka broker, source and sink first")
    try:
        made = topics.create() if topics else []
    except TopicError as exc:
        raise ApplyError(str(exc)) from None
    return made + [f"applied {what}" for what in applier.apply()]
