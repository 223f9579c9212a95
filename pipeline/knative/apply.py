"""Apply the rendered Knative manifests to the current kube context (server-side apply)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.kube import ApplyError, Applier, dynamic_client

__all__ = ["ApplyError", "apply"]


def apply(manifests: Sequence[dict[str, Any]], context: str | None = None,
          kubeconfig: Path | None = None) -> list[str]:
    """Check everything, then apply in order (Namespace first); returns "Kind/name" of each applied object."""
    return Applier(dynamic_client(context, kubeconfig), manifests,
                   "install Knative Serving, Knative Eventing and the Kafka broker, source and sink first").apply()
