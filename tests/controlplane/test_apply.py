"""`deploy knative --apply` and `deploy openfaas --apply` against a real kube-apiserver: server-side apply
passes validation and Pod Security admission, is idempotent, checks everything before changing anything;
both backends' NetworkPolicies read back select only their own pods and let them reach what they need."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from confluent_kafka.admin import AdminClient
from kubernetes.config import kube_config

from lagduel.knative_deploy import knative
from lagduel.openfaas_deploy import openfaas
from pipeline.kafka import KafkaSettings, create_topics
from pipeline.knative.manifests import render as render_knative
from pipeline.knative.manifests import topology_document
from pipeline.openfaas import apply as openfaas_apply
from pipeline.openfaas.render import RenderOptions, stack
from pipeline.openfaas.render import render as render_openfaas
from pipeline.topology import Topology, load_topology
from tests.controlplane import faas
from tests.controlplane.netpol import check_policies, pipeline_pods
from tests.controlplane.processes import CONTEXT, ControlPlane, await_condition, free_port, kubernetes_version

pytestmark = pytest.mark.controlplane
FUNCTION_NAMESPACE = "openfaas-fn"


@pytest.fixture
def kube_context(controlplane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> str:
    """The control plane as the default kubeconfig, so the CLI finds it as a user's cluster."""
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(controlplane.kubeconfig))
    return CONTEXT


def namespaces(cp: ControlPlane) -> set[str]:
    return {n["metadata"]["name"] for n in cp.http().get("/api/v1/namespaces").json()["items"]}


def get(cp: ControlPlane, m: dict[str, Any]) -> dict[str, Any]:
    group, version = m["apiVersion"].split("/") if "/" in m["apiVersion"] else ("", m["apiVersion"])
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    plural = {"NetworkPolicy": "networkpolicies", "KafkaSource": "kafkasources", "KafkaSink": "kafkasinks",
              "ConfigMap": "configmaps", "Namespace": "namespaces", "Broker": "brokers", "Trigger": "triggers",
              "Service": "services", "Deployment": "deployments", "ScaledObject": "scaledobjects",
              "Secret": "secrets"}[m["kind"]]
    ns = m["metadata"].get("namespace")
    r = cp.http().get(f"{base}/namespaces/{ns}/{plural}/{m['metadata']['name']}" if ns
                      else f"{base}/{plural}/{m['metadata']['name']}")
    assert r.status_code == 200, f"{m['kind']}/{m['metadata']['name']}: {r.status_code} {r.text[:200]}"
    return r.json()


def ensure_namespace(cp: ControlPlane, name: str) -> None:
    r = cp.http().post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code in (201, 409), r.text


def await_default_service_account(cp: ControlPlane, ns: str) -> None:
    await_condition(f"the default ServiceAccount in {ns}",
                    lambda: cp.http().get(f"/api/v1/namespaces/{ns}/serviceaccounts/default").status_code == 200, 30)


def revision_pod(service: dict[str, Any], queue_proxy_security: dict[str, Any]) -> dict[str, Any]:
    """A pod as Knative's revision reconciler makes it: the Service's container, and queue-proxy beside it."""
    template = service["spec"]["template"]
    spec = copy.deepcopy(template["spec"])
    for key in ("containerConcurrency", "timeoutSeconds"):
        spec.pop(key)
    spec["containers"][0]["name"] = "user-container"
    spec["containers"][0]["readinessProbe"]["httpGet"]["port"] = 8080
    spec["containers"][0]["livenessProbe"]["httpGet"]["port"] = 8080
    spec["containers"].append({"name": "queue-proxy", "image": "gcr.io/knative-releases/queue", "ports": [
        {"name": "http-queueadm", "containerPort": 8022}], "securityContext": queue_proxy_security})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{service['metadata']['name']}-00001-pod",
                                                            "labels": template["metadata"]["labels"]}, "spec": spec}


def test_the_apiserver_is_the_pinned_release(controlplane: ControlPlane) -> None:
    assert controlplane.version() == kubernetes_version()  # the build's ldflags, not v0.0.0-master


def test_knative_apply_twice_is_idempotent_and_reads_back(controlplane: ControlPlane, kube_context: str) -> None:
    manifests = render_knative(load_topology())
    first = CliRunner().invoke(knative, ["--apply", "--no-topics", "--context", kube_context])
    assert first.exit_code == 0, first.output
    before = {(m["kind"], m["metadata"]["name"]): get(controlplane, m)["metadata"]["resourceVersion"] for m in manifests}
    second = CliRunner().invoke(knative, ["--apply", "--no-topics", "--context", kube_context])
    assert second.exit_code == 0, second.output
    assert second.output.splitlines() == [f"applied {m['kind']}/{m['metadata']['name']}" for m in manifests]
    for m in manifests:
        live = get(controlplane, m)
        assert live["metadata"]["resourceVersion"] == before[(m["kind"], m["metadata"]["name"])], \
            f"{m['kind']}/{m['metadata']['name']} changed on a second apply"
        assert live["metadata"]["labels"].items() >= m["metadata"].get("labels", {}).items()
        if "spec" in m and m["kind"] != "Service":
            assert live["spec"].items() >= m["spec"].items(), m["kind"]
    source = get(controlplane, next(m for m in manifests if m["kind"] == "KafkaSource"))
    assert source["apiVersion"] == "sources.knative.dev/v1" and source["spec"]["ordering"] == "ordered"


def test_knative_namespace_admits_a_revision_pod_and_refuses_a_baseline_violation(controlplane: ControlPlane,
                                                                               kube_context: str) -> None:
    t = load_topology()
    result = CliRunner().invoke(knative, ["--apply", "--no-topics", "--context", kube_context])
    assert result.exit_code == 0, result.output
    await_default_service_account(controlplane, t.namespace)
    service = next(m for m in render_knative(t) if m["kind"] == "Service")
    pods = f"/api/v1/namespaces/{t.namespace}/pods"
    # queue-proxy as Knative before 1.8 set it (allowPrivilegeEscalation only): admitted, with a warning.
    old = controlplane.http().post(pods, params={"dryRun": "All"},
                                   json=revision_pod(service, {"allowPrivilegeEscalation": False}))
    assert old.status_code == 201, old.text
    warning = old.headers.get("warning", "")
    assert "would violate PodSecurity" in warning and "restricted:latest" in warning and "queue-proxy" in warning
    # queue-proxy as Knative sets it since 1.8: admitted without a warning.
    current = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
               "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    new = controlplane.http().post(pods, params={"dryRun": "All"}, json=revision_pod(service, current))
    assert new.status_code == 201 and "warning" not in new.headers, (new.text, new.headers.get("warning"))
    # Enforcement is on: a capability beyond baseline's set is refused.
    net_admin = controlplane.http().post(pods, params={"dryRun": "All"},
                                         json=revision_pod(service, {"capabilities": {"add": ["NET_ADMIN"]}}))
    assert net_admin.status_code == 403 and 'violates PodSecurity \\"baseline:latest\\"' in net_admin.text, \
        net_admin.text


def test_openfaas_apply_deploys_functions_and_applies_twice(controlplane: ControlPlane, kube_context: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_namespace(controlplane, FUNCTION_NAMESPACE)  # the OpenFaaS install makes it
    monkeypatch.setenv("OPENFAAS_PASSWORD", faas.PASSWORD)
    t = load_topology()
    manifests = render_openfaas(t)
    with faas.serve(controlplane) as (gateway, url):
        for attempt in range(2):
            result = CliRunner().invoke(openfaas, ["--apply", "--no-topics", "--gateway", url, "--context",
                                                   kube_context,
                                                   "--kubeconfig", str(controlplane.kubeconfig)])
            assert result.exit_code == 0, result.output
    assert gateway.deployed == [st.name for st in t.stages] * 2
    assert f"applied Namespace/{t.namespace}" in result.output
    for m in manifests:
        live = get(controlplane, m)
        assert live["metadata"]["labels"].items() >= m["metadata"]["labels"].items()
    for st in t.stages:
        assert get(controlplane, {"apiVersion": "apps/v1", "kind": "Deployment",
                                  "metadata": {"name": st.name, "namespace": FUNCTION_NAMESPACE}})


@pytest.fixture
def without_keda(controlplane: ControlPlane) -> Any:
    """The cluster as if KEDA were not installed; its CRD is back (and Established) afterwards."""
    from tests.controlplane.conftest import CRD_PATH, await_crd, vendored_crds

    name = "scaledobjects.keda.sh"
    crd = next(c for c in vendored_crds() if c["metadata"]["name"] == name)
    controlplane.http().delete(f"{CRD_PATH}/{name}")
    await_condition(f"CRD {name} gone", lambda: controlplane.http().get(f"{CRD_PATH}/{name}").status_code == 404, 60)
    yield
    assert controlplane.http().post(CRD_PATH, json=crd).status_code == 201
    await_crd(controlplane, name)


def fresh(t: Topology) -> Topology:
    return t.model_copy(update={"namespace": "fresh-pipeline"})


def test_openfaas_apply_without_keda_changes_nothing(controlplane: ControlPlane, without_keda: None) -> None:
    t = fresh(load_topology())
    options = RenderOptions(function_namespace="fresh-fn")
    before = namespaces(controlplane)
    with faas.serve(controlplane) as (gateway, url):
        credentials = openfaas_apply.GatewayCredentials("admin", faas.PASSWORD)
        with pytest.raises(openfaas_apply.ApplyError) as err:
            openfaas_apply.apply(stack(t, options), render_openfaas(t, options), url, credentials,
                                 kubeconfig=controlplane.kubeconfig)
    assert str(err.value) == ("the cluster does not serve ScaledObject (keda.sh/v1alpha1): "
                              "install KEDA (ScaledObject) first")
    assert gateway.deployed == [] and namespaces(controlplane) == before


def test_openfaas_apply_without_the_function_namespace_changes_nothing(controlplane: ControlPlane) -> None:
    t = fresh(load_topology())
    options = RenderOptions(function_namespace="no-such-fn")
    before = namespaces(controlplane)
    with faas.serve(controlplane) as (gateway, url):
        with pytest.raises(openfaas_apply.ApplyError) as err:
            openfaas_apply.apply(stack(t, options), render_openfaas(t, options), url,
                                 openfaas_apply.GatewayCredentials("admin", faas.PASSWORD),
                                 kubeconfig=controlplane.kubeconfig)
    assert "namespace 'no-such-fn' does not exist: install OpenFaaS first" in str(err.value)
    assert gateway.deployed == [] and namespaces(controlplane) == before


def test_both_backends_policies_read_back_select_only_their_own_pods(controlplane: ControlPlane,
                                                                     kube_context: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_namespace(controlplane, FUNCTION_NAMESPACE)
    monkeypatch.setenv("OPENFAAS_PASSWORD", faas.PASSWORD)
    t = load_topology()
    assert CliRunner().invoke(knative, ["--apply", "--no-topics", "--context", kube_context]).exit_code == 0
    with faas.serve(controlplane) as (_, url):
        result = CliRunner().invoke(openfaas, ["--apply", "--no-topics", "--gateway", url, "--kubeconfig",
                                               str(controlplane.kubeconfig)])
        assert result.exit_code == 0, result.output
    live = controlplane.http().get("/apis/networking.k8s.io/v1/networkpolicies",
                                   params={"labelSelector": f"lagduel.dev/pipeline={t.pipeline}"}).json()["items"]
    assert sorted(p["metadata"]["name"] for p in live) == ["orders-connectors", "orders-functions", "orders-stages"]
    assert check_policies(live, pipeline_pods(render_knative(t), render_openfaas(t), stack(t))) == []


def _topology_file(t: Topology, tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(topology_document(t), sort_keys=False))
    return path


def _partitions(settings: KafkaSettings, topics: tuple[str, ...]) -> dict[str, int]:
    md = AdminClient(settings.admin()).list_topics(timeout=10)
    return {t: len(md.topics[t].partitions) for t in topics if t in md.topics and md.topics[t].error is None}


@pytest.mark.kafka
def test_openfaas_apply_creates_every_topic_with_the_topologys_partitions(
        controlplane: ControlPlane, kube_context: str, kafka_settings: KafkaSettings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_namespace(controlplane, FUNCTION_NAMESPACE)
    monkeypatch.setenv("OPENFAAS_PASSWORD", faas.PASSWORD)
    t = load_topology().with_topic_prefix(f"d{uuid.uuid4().hex[:6]}-").model_copy(update={"partitions": 4})
    create_topics(kafka_settings, [t.input.topic], 5)  # a user's input topic, already there with more partitions
    args = ["--apply", "--topology", str(_topology_file(t, tmp_path)), "--topics-bootstrap",
            kafka_settings.bootstrap_servers, "--context", kube_context]
    with faas.serve(controlplane) as (_, url):
        result = CliRunner().invoke(openfaas, [*args, "--gateway", url])
    assert result.exit_code == 0, result.output
    assert f"kept topic/{t.input.topic} (4 partitions)" in result.output
    assert f"created topic/{t.dead_letter_topic} (4 partitions)" in result.output
    assert _partitions(kafka_settings, t.topics) == {t.input.topic: 5, **{topic: 4 for topic in t.topics[1:]}}


@pytest.mark.kafka
def test_a_topic_with_too_few_partitions_is_refused_before_anything_changes(
        controlplane: ControlPlane, kube_context: str, kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    t = fresh(load_topology().with_topic_prefix(f"d{uuid.uuid4().hex[:6]}-"))
    create_topics(kafka_settings, [t.input.topic], 1)  # as broker auto-create would have made it
    before = namespaces(controlplane)
    result = CliRunner().invoke(knative, ["--apply", "--topology", str(_topology_file(t, tmp_path)),
                                          "--topics-bootstrap", kafka_settings.bootstrap_servers,
                                          "--context", kube_context])
    assert result.exit_code == 1, result.output
    assert (f"topic '{t.input.topic}' has 1 partition(s), the topology wants {t.partitions}: its stage could never "
            f"scale past 1 replica(s)") in result.output
    assert namespaces(controlplane) == before


def test_apply_names_an_unreachable_kafka_before_anything_changes(controlplane: ControlPlane, kube_context: str,
                                                                  tmp_path: Path) -> None:
    t = fresh(load_topology())
    before = namespaces(controlplane)
    result = CliRunner().invoke(knative, ["--apply", "--topology", str(_topology_file(t, tmp_path)),
                                          "--topics-bootstrap", f"127.0.0.1:{free_port()}",
                                          "--context", kube_context])
    assert result.exit_code == 1 and "cannot reach Kafka at 127.0.0.1:" in result.output, result.output
    assert "Traceback" not in result.output and namespaces(controlplane) == before


def test_openfaas_apply_with_kafka_config_gives_the_connectors_a_secret(controlplane: ControlPlane, kube_context: str,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_namespace(controlplane, FUNCTION_NAMESPACE)
    monkeypatch.setenv("OPENFAAS_PASSWORD", faas.PASSWORD)
    t = load_topology()
    config = tmp_path / "client.properties"
    config.write_text("security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=u\nsasl.password=p\n")
    with faas.serve(controlplane) as (_, url):
        result = CliRunner().invoke(openfaas, ["--apply", "--no-topics", "--gateway", url, "--context", kube_context,
                                               "--kafka-config", str(config)])
    assert result.exit_code == 0, result.output
    secret = get(controlplane, {"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": f"{t.pipeline}-kafka-client", "namespace": t.namespace}})
    assert set(secret["data"]) == {"client.properties"}
    for st in t.stages:  # each connector mounts it and is told to read it; Pod Security admitted the template
        spec = get(controlplane, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
            "name": f"{t.pipeline}-connector-{st.name}", "namespace": t.namespace}})["spec"]["template"]["spec"]
        args = spec["containers"][0]["args"]
        mounted = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert args[args.index("--kafka-config") + 1].startswith(mounted["kafka-client"])
