"""Server-side apply to a Kubernetes cluster: the one module in pipeline/ that imports the kubernetes client.

Everything is checked before anything is applied (every kind is served, every namespace exists or is
among the manifests, every object already placeable passes a server-side dry run), so a cluster that
lacks a CRD or a namespace gets one clear error and no half-applied pipeline.
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
        dyn = DynamicClient(api)
        # The kind checks must see the cluster as it is now, not a discovery cache an earlier run left in /tmp.
        dyn.resources.invalidate_cache()
        return dyn
    except Exception as exc:  # discovery against an unreachable or refusing API server
        raise ApplyError(f"cannot reach the Kubernetes API at {api.configuration.host}: {exc}") from None


def _failure(what: str, m: dict[str, Any], exc: ApiException) -> ApplyError:
    return ApplyError(f"{what} {m['kind']}/{m['metadata']['name']} failed: {exc.status} {exc.reason}: "
                      f"{(exc.body or '')[:300]}")


class Applier:
    """The manifests, checked against the cluster up front; nothing changes until `apply()`.

    `missing` says what to install when a kind is not served; a namespace the manifests use but do not
    create must exist already (`namespaces` says who creates it, e.g. the OpenFaaS install).
    """

    def __init__(self, dyn: DynamicClient, manifests: Sequence[dict[str, Any]], missing: str,
                 namespaces: str = "create it first") -> None:
        self.manifests = list(manifests)
        self._resources = []
        for m in self.manifests:
            try:
                self._resources.append(dyn.resources.get(api_version=m["apiVersion"], kind=m["kind"]))
            except ResourceNotFoundError:
                raise ApplyError(f"the cluster does not serve {m['kind']} ({m['apiVersion']}): {missing}") from None
        created = {m["metadata"]["name"] for m in self.manifests if m["kind"] == "Namespace"}
        ns_api = dyn.resources.get(api_version="v1", kind="Namespace")
        existing = set()
        for ns in sorted({m["metadata"]["namespace"] for m in self.manifests if m["metadata"].get("namespace")}):
            try:
                ns_api.get(name=ns)
                existing.add(ns)
            except ApiException as exc:
                if exc.status != 404:
                    raise _failure("reading", {"kind": "Namespace", "metadata": {"name": ns}}, exc) from None
                if ns not in created:
                    raise ApplyError(f"namespace {ns!r} does not exist: {namespaces}") from None
        # Objects whose namespace exists already (or that have none) get a dry run: the apiserver's
        # validation and admission, without a change.
        for m, res in zip(self.manifests, self._resources):
            ns = m["metadata"].get("namespace")
            if ns is None or ns in existing:
                self._apply(m, res, dry_run=True)

    @staticmethod
    def _apply(m: dict[str, Any], res: Any, dry_run: bool = False) -> None:
        meta = m["metadata"]
        extra = {"dry_run": "All"} if dry_run else {}
        try:
            res.server_side_apply(body=m, name=meta["name"], namespace=meta.get("namespace"),
                                  field_manager=FIELD_MANAGER, force_conflicts=True, **extra)
        except ApiException as exc:
            raise _failure("checking (dry run)" if dry_run else "applying", m, exc) from None

    def apply(self) -> list[str]:
        """Server-side apply in order (Namespace first); returns "Kind/name" of each applied object."""
        for m, res in zip(self.manifests, self._resources):
            self._apply(m, res)
        return [f"{m['kind']}/{m['metadata']['name']}" for m in self.manifests]
