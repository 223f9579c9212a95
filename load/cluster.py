"""The pipeline as deployed on a real cluster, driven like any backend: the only `kubernetes` import in load/.

A cluster duel starts no emulation. The load goes to the deployed pipeline's own input topic, the sink reads
its output and dead-letter topics filtering on the run id, the sampler reads the consumer groups the platform
really runs, and replicas come from the Kubernetes API. Nothing is written to the cluster.

Replicas: Knative, the Deployments of a Service's revisions (label serving.knative.dev/service=<stage>) in
the topology's namespace; OpenFaaS, the function's Deployment (<stage>) in the function namespace.
desired = spec.replicas, ready = status.readyReplicas, summed over a Service's revisions. The autoscalers'
own view, where their objects exist, goes into each stage's extra series: the PodAutoscaler's desired and
actual scale (Knative), the HPA KEDA made (its desired replicas and current lag metric) and whether the
ScaledObject is active (OpenFaaS).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka.admin import AdminClient
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from pipeline.backends import LagSource, StageStatus
from pipeline.kafka import KafkaSettings
from pipeline.knative.backend import lag_sources as knative_lag_sources
from pipeline.openfaas.backend import lag_sources as openfaas_lag_sources
from pipeline.topology import Topology

log = logging.getLogger(__name__)

KNATIVE_SERVICE_LABEL = "serving.knative.dev/service"
CLUSTER_BACKENDS = ("knative", "openfaas")
_TIMEOUT_S = 5


class ClusterUnavailable(RuntimeError):
    """The cluster cannot be read, or the deployed pipeline is not there; the message names the cause."""


@dataclass(frozen=True)
class ClusterTarget:
    """Where the deployed pipelines run: a kube context (None: the current one) and OpenFaaS's function namespace.
    Knative's namespace is the topology's (as `lagduel deploy knative` renders it)."""

    context: str | None = None
    function_namespace: str = "openfaas-fn"


class ClusterReplicas:
    """Desired/ready replicas of each stage, and the autoscaler's own view where its objects exist."""

    def __init__(self, backend: str, topology: Topology, target: ClusterTarget) -> None:
        if backend not in CLUSTER_BACKENDS:
            raise ClusterUnavailable(f"backend {backend!r} has no deployment on a cluster; "
                                     f"choose from {', '.join(CLUSTER_BACKENDS)}")
        try:
            api = config.new_client_from_config(context=target.context)
        except (ConfigException, OSError, TypeError) as exc:
            raise ClusterUnavailable(f"no usable kube context {target.context or '(current)'}: {exc}") from None
        self._apps = client.AppsV1Api(api)
        self._hpa = client.AutoscalingV2Api(api)
        self._custom = client.CustomObjectsApi(api)
        self.backend = backend
        self.topology = topology
        self.namespace = topology.namespace if backend == "knative" else target.function_namespace

    def status(self) -> list[StageStatus]:
        return [self._stage(st.name) for st in self.topology.stages]

    def _stage(self, stage: str) -> StageStatus:
        if self.backend == "knative":
            deps = self._apps.list_namespaced_deployment(
                self.namespace, label_selector=f"{KNATIVE_SERVICE_LABEL}={stage}", _request_timeout=_TIMEOUT_S).items
            extra = self._pod_autoscaler(stage)
        else:
            dep = self._absent_as_none(lambda: self._apps.read_namespaced_deployment(
                stage, self.namespace, _request_timeout=_TIMEOUT_S))
            deps = [dep] if dep is not None else []
            extra = self._keda(stage)
        return StageStatus(stage, sum(d.spec.replicas or 0 for d in deps),
                           sum(d.status.ready_replicas or 0 for d in deps), extra=extra)

    def _pod_autoscaler(self, stage: str) -> dict[str, float]:
        pas = self._absent_as_none(lambda: self._custom.list_namespaced_custom_object(
            "autoscaling.internal.knative.dev", "v1alpha1", self.namespace, "podautoscalers",
            label_selector=f"{KNATIVE_SERVICE_LABEL}={stage}", _request_timeout=_TIMEOUT_S))
        out: dict[str, float] = {}
        for pa in (pas or {}).get("items", []):
            st = pa.get("status") or {}
            for key, name in (("desiredScale", "pa_desired"), ("actualScale", "pa_actual")):
                if isinstance(st.get(key), int):
                    out[name] = out.get(name, 0.0) + st[key]
        return out

    def _keda(self, stage: str) -> dict[str, float]:
        so = self._absent_as_none(lambda: self._custom.get_namespaced_custom_object(
            "keda.sh", "v1alpha1", self.namespace, "scaledobjects", stage, _request_timeout=_TIMEOUT_S))
        if so is None:
            return {}
        status = so.get("status") or {}
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions", [])}
        out = {"keda_active": float(conditions.get("Active") == "True")}
        hpa = self._absent_as_none(lambda: self._hpa.read_namespaced_horizontal_pod_autoscaler(
            status.get("hpaName") or f"keda-hpa-{stage}", self.namespace, _request_timeout=_TIMEOUT_S))
        if hpa is not None and hpa.status is not None:
            out["hpa_desired"] = float(hpa.status.desired_replicas or 0)
            for metric in hpa.status.current_metrics or []:
                current = metric.external.current if metric.external else None
                if current is not None and current.average_value is not None:
                    out["keda_metric"] = _quantity(current.average_value)
        return out

    @staticmethod
    def _absent_as_none(read: Any) -> Any:
        try:
            return read()
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


def _quantity(text: str) -> float:
    """A Kubernetes quantity as the HPA reports a metric ("12", "1500m", "2k") as a number."""
    scale = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}
    return float(text[:-1]) * scale[text[-1]] if text and text[-1] in scale else float(text)


class DeployedPipeline:
    """A backend whose data and control planes are the cluster's own: lagduel only watches.

    `status()` never blocks the event loop: a task reads the API every second and keeps the latest view.
    """

    def __init__(self, name: str, topology: Topology, settings: KafkaSettings, target: ClusterTarget) -> None:
        self.name = name
        self.topology = topology
        self.settings = settings
        self.target = target
        self._replicas = ClusterReplicas(name, topology, target)
        self._latest = [StageStatus(st.name, 0, 0) for st in topology.stages]
        self._refresh: asyncio.Task[None] | None = None
        self.read_errors = 0

    async def __aenter__(self) -> DeployedPipeline:
        await asyncio.to_thread(self._check_topics)
        await self._read()
        self._refresh = asyncio.create_task(self._keep_reading())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)

    def _check_topics(self) -> None:
        """The deployed pipeline's topics exist: lagduel creates nothing on a cluster's Kafka but its records."""
        t = self.topology
        metadata = AdminClient(self.settings.admin()).list_topics(timeout=10)
        missing = [topic for topic in (*t.topics, *([t.broker_topic] if self.name == "knative" else []))
                   if topic not in metadata.topics]
        if missing:
            raise ClusterUnavailable(f"the deployed {self.name} pipeline's topics {', '.join(missing)} do not exist on "
                                     f"{self.settings.bootstrap_servers}: deploy it first (lagduel deploy {self.name})")

    async def _read(self) -> None:
        try:
            self._latest = await asyncio.to_thread(self._replicas.status)
        except (ApiException, HTTPError, OSError) as exc:  # a missed read keeps the last view; the log says why
            self.read_errors += 1
            log.warning("reading %s replicas from the cluster failed: %s", self.name, exc)

    async def _keep_reading(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await self._read()

    def lag_sources(self) -> list[LagSource]:
        if self.name == "knative":
            return knative_lag_sources(self.topology, self.topology.namespace)
        return openfaas_lag_sources(self.topology)

    def status(self) -> list[StageStatus]:
        return self._latest

    def kill_replica(self, stage: str) -> str | None:
        return None  # a cluster run writes nothing to the cluster: no pod is deleted

    def settings_in_force(self) -> dict[str, Any]:
        return {"backend": self.name, "target": "cluster", "kube_context": self.target.context or "(current)",
                "namespace": self._replicas.namespace, "bootstrap": self.settings.bootstrap_servers,
                "groups": [s.group for s in self.lag_sources()], "emulation": None,
                "replica_read_errors": self.read_errors}
