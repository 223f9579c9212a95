"""The cluster replica reader (load/cluster.py) follows desired/ready as Deployments scale; KWOK makes the
pods Ready, the controller-manager makes the ReplicaSets and pods."""

from __future__ import annotations

import pytest
from kubernetes.config import kube_config

from load.cluster import KNATIVE_SERVICE_LABEL, ClusterReplicas, ClusterTarget
from pipeline.topology import load_topology
from tests.controlplane.faas import apply_object, function_deployment
from tests.controlplane.processes import CONTEXT, ControlPlane, await_condition
from tests.controlplane.test_apply import await_default_service_account, ensure_namespace

pytestmark = pytest.mark.controlplane


def scale(cp: ControlPlane, ns: str, name: str, replicas: int) -> None:
    r = cp.http().patch(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale", json={"spec": {"replicas": replicas}},
                        headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text


def test_openfaas_reader_follows_a_function_scaled_from_one_to_three(controlplane: ControlPlane,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(controlplane.kubeconfig))
    t = load_topology()
    ns = "replicas-fn"
    ensure_namespace(controlplane, ns)
    await_default_service_account(controlplane, ns)
    apply_object(controlplane, function_deployment(
        {"service": "validate", "namespace": ns, "image": "dev.local/lagduel-validate:0.1.0",
         "labels": {"com.openfaas.scale.min": "1"}}), "test")
    reader = ClusterReplicas("openfaas", t, ClusterTarget(CONTEXT, ns))

    def validate() -> tuple[int, int]:
        s = next(s for s in reader.status() if s.stage == "validate")
        return s.desired, s.ready

    await_condition("validate 1/1", lambda: validate() == (1, 1), 60)
    assert {s.stage: (s.desired, s.ready) for s in reader.status()}["enrich"] == (0, 0)  # not deployed
    scale(controlplane, ns, "validate", 3)
    seen = [validate()]

    def three_of_three() -> bool:
        seen.append(validate())
        return seen[-1] == (3, 3)
    await_condition("validate 3/3", three_of_three, 60)
    assert seen[0][0] == 3 and all(d >= r for d, r in seen)  # desired follows at once, ready never overtakes it


def test_knative_reader_sums_a_services_revisions(controlplane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(controlplane.kubeconfig))
    t = load_topology().model_copy(update={"namespace": "replicas-knative"})
    ensure_namespace(controlplane, t.namespace)
    await_default_service_account(controlplane, t.namespace)
    for revision, replicas in (("score-00001", "1"), ("score-00002", "2")):
        d = function_deployment({"service": revision, "namespace": t.namespace, "image": "dev.local/stage",
                                 "labels": {KNATIVE_SERVICE_LABEL: "score", "com.openfaas.scale.min": replicas}})
        apply_object(controlplane, d, "test")
    reader = ClusterReplicas("knative", t, ClusterTarget(CONTEXT))
    await_condition("score 3/3 over two revisions",
                    lambda: {s.stage: (s.desired, s.ready) for s in reader.status()}["score"] == (3, 3), 60)
