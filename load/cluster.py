"""Replicas of each stage as a real cluster reports them: the only `kubernetes` import in load/.

Knative: the Deployments of a Service's revisions (label serving.knative.dev/service=<stage>) in the
topology's namespace. OpenFaaS: the function's Deployment (<stage>) in the function namespace.
desired = spec.replicas, ready = status.readyReplicas, summed over a Service's revisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from pipeline.backends import StageStatus
from pipeline.topology import Topology

KNATIVE_SERVICE_LABEL = "serving.knative.dev/service"


class ClusterUnavailable(RuntimeError):
    pass


class ClusterReplicas:
    def __init__(self, backend: str, topology: Topology, context: str | None = None,
                 function_namespace: str = "openfaas-fn") -> None:
        if backend not in ("knative", "openfaas"):
            raise ClusterUnavailable(f"no cluster replica source for backend {backend!r}")
        try:
            config.load_kube_config(context=context)
        except (ConfigException, FileNotFoundError) as exc:
            raise ClusterUnavailable(f"no kube context {context or '(current)'}: {exc}") from None
        self._apps = client.AppsV1Api()
        self.backend = backend
        self.topology = topology
        self.function_namespace = function_namespace

    def _replicas(self, stage: str) -> tuple[int, int]:
        if self.backend == "knative":
            deps = self._apps.list_namespaced_deployment(
                self.topology.namespace, label_selector=f"{KNATIVE_SERVICE_LABEL}={stage}", _request_timeout=5).items
        else:
            try:
                deps = [self._apps.read_namespaced_deployment(stage, self.function_namespace, _request_timeout=5)]
            except ApiException as exc:
                if exc.status == 404:
                    return 0, 0
                raise
        return (sum(d.spec.replicas or 0 for d in deps), sum(d.status.ready_replicas or 0 for d in deps))

    def status(self) -> list[StageStatus]:
        out = []
        for s in self.topology.stages:
            desired, ready = self._replicas(s.name)
            out.append(StageStatus(s.name, desired, ready))
        return out


def with_cluster_replicas(backend_status: Sequence[StageStatus], cluster: Sequence[StageStatus]) -> list[StageStatus]:
    """The backend's counters (retries, errors, …) with desired/ready replaced by the cluster's."""
    by_stage = {c.stage: c for c in cluster}
    merged = [replace(s, desired=by_stage[s.stage].desired, ready=by_stage[s.stage].ready) if s.stage in by_stage else s
              for s in backend_status]
    seen = {s.stage for s in backend_status}
    return merged + [c for c in cluster if c.stage not in seen]
