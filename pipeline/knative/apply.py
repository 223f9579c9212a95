"""Apply rendered manifests to the current kube context: server-side apply through the dynamic client.

Every kind is looked up before anything is applied, so a cluster without Knative (or without the
Kafka broker/source/sink CRDs) gets one clear error and no half-applied pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubernetes import config
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ApiException, ResourceNotFoundError

FIELD_MANAGER = "lagduel"


class ApplyError(RuntimeError):
    """The manifests cannot be applied; the message names the cause."""


def _dynamic(context: str | None) -> DynamicClient:
    try:
        api = config.new_client_from_config(context=context)
    except (ConfigException, OSError, TypeError) as exc:
        where = f"context {context!r}" if context else "the current kube context"
        raise ApplyError(f"no usable Kubernetes cluster config ({where}): {exc}") from None
    try:
        return DynamicClient(api)
    except Exception as exc:  # discovery against an unreachable or refusing API server
        raise ApplyError(f"cannot reach the Kubernetes API at {api.configuration.host}: {exc}") from None


def apply(manifests: Sequence[dict[str, Any]], context: str | None = None) -> list[str]:
    """Apply in order (Namespace first); returns "Kind/name" of each applied object."""
    dyn = _dynamic(context)
    resources = []
    for m in manifests:
        try:
            resources.append(dyn.resources.get(api_version=m["apiVersion"], kind=m["kind"]))
        except ResourceNotFoundError:
            raise ApplyError(f"the cluster does not serve {m['kind']} ({m['apiVersion']}): install Knative Serving, "
                             "Knative Eventing and the Kafka broker, source and sink first") from None
    done = []
    for m, res in zip(manifests, resources):
        meta = m["metadata"]
        try:
            res.server_side_apply(body=m, name=meta["name"], namespace=meta.get("namespace"),
                                  field_manager=FIELD_MANAGER, force_conflicts=True)
        except ApiException as exc:
            raise ApplyError(f"applying {m['kind']}/{meta['name']} failed: {exc.status} {exc.reason}: "
                             f"{(exc.body or '')[:300]}") from None
        done.append(f"{m['kind']}/{meta['name']}")
    return done

