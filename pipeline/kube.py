"""Server-side apply to a Kubernetes cluster: the one module in pipeline/ that imports the kubernetes client.

Every kind is looked up before anything is applied, so a cluster that lacks a CRD gets one clear
error and no half-applied pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubernetes import config
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ApiException, ResourceNotFoundError

FIELD_MANAGER = "lagduel"


class ApplyError(RuntimeError):
    """The manifests cannot be applied; the message names the cause."""


def dynamic_client(context: str | None = None, kubeconfig: Path | None = None) -> DynamicClient:
    try:
        api = config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None, context=context)
    except (ConfigException, OSError, TypeError) as exc:
        where = f"context {context!r}" if context else "the current kube context"
        raise ApplyError(f"no usable Kubernetes cluster config ({where}): {exc}") from None
    try:
        return DynamicClient(api)
    except Exception as exc:  # discovery against an unreachable or refusing API server
        raise ApplyError(f"cannot reach the Kubernetes API at {api.configuration.host}: {exc}") from None


class Applier:
    """The manifests, each with its API resource resolved up front (`missing` says what to install)."""

    def __init__(self, dyn: DynamicClient, manifests: Sequence[dict[str, Any]], missing: str) -> None:
        self.manifests = list(manifests)
        self._resources = []
        for m in self.manifests:
            try:
                self._resources.append(dyn.resources.get(api_version=m["apiVersion"], kind=m["kind"]))
            except ResourceNotFoundError:
                raise ApplyError(f"the cluster does not serve {m['kind']} ({m['apiVersion']}): {missing}") from None

    def apply(self) -> list[str]:
        """Server-side apply in order (Namespace first); returns "Kind/name" of each applied object."""
        done = []
        for m, res in zip(self.manifests, self._resources):
            meta = m["metadata"]
            try:
                res.server_side_apply(body=m, name=meta["name"], namespace=meta.get("namespace"),
                                      field_manager=FIELD_MANAGER, force_conflicts=True)
            except ApiException as exc:
                raise ApplyError(f"applying {m['kind']}/{meta['name']} failed: {exc.status} {exc.reason}: "
                                 f"{(exc.body or '')[:300]}") from None
            done.append(f"{m['kind']}/{meta['name']}")
        return done
