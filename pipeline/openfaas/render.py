"""The topology rendered for a cluster: stack.yml for faas-cli, a connector Deployment per stage,
a KEDA ScaledObject per function, NetworkPolicies, and the files that make the rendered directory a build
context (the faas-cli template, the handler folder, the Dockerfiles: package data in `image/`).
Pure: topology and options in, documents out."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from pipeline.images import context_files
from pipeline.knative.manifests import dns_egress, egress_to, namespace
from pipeline.openfaas.connector import connector_group
from pipeline.openfaas.replicaset import topology_document
from pipeline.topology import Stage, Topology

Manifest = dict[str, Any]
SECRET_FILE = "kafka-client-secret.yaml"
"""Holds the connectors' Kafka credentials when --kafka-config is given: ignored by git."""
HEADER = "# Rendered from the topology by `lagduel deploy openfaas --render`; edit pipeline.yaml, not this file.\n"
TEMPLATE = "lagduel-python3-http"
SECURITY = {  # the restricted Pod Security Standard
    "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
}
METRICS_PORT = 8081
KAFKA_CONFIG_DIR = "/etc/lagduel-kafka"
KAFKA_CONFIG_FILE = "client.properties"


@dataclass(frozen=True)
class RenderOptions:
    gateway: str = "http://gateway.openfaas:8080"
    """The gateway as the connectors reach it (in-cluster Service of the openfaas chart)."""
    stack_gateway: str = "http://127.0.0.1:8080"
    """stack.yml's provider gateway: the gateway as faas-cli reaches it from where it runs."""
    bootstrap: str = "my-cluster-kafka-bootstrap.kafka:9092"
    function_namespace: str = "openfaas-fn"
    """Where faas-netes puts each function's Deployment (chart default, openfaas-keda.md §3.3)."""
    gateway_namespace: str = "openfaas"
    function_image: str = "dev.local/lagduel-{stage}:0.1.0"
    """Each function's image; `{stage}` is replaced by the stage name."""
    connector_image: str = "dev.local/lagduel-connector:0.1.0"
    kafka_config: Mapping[str, str] | None = None
    """librdkafka settings of the connectors (SASL/TLS): rendered into the Secret `<pipeline>-kafka-client`,
    mounted into each connector and passed as --kafka-config. None: no Secret."""
    ce: bool = True
    """OpenFaaS Community Edition: at most 5 replicas per function (§3.3)."""


def _labels(t: Topology, stage: Stage | None = None, component: str | None = None) -> dict[str, str]:
    out = {"lagduel.dev/pipeline": t.pipeline}
    if stage:
        out["lagduel.dev/stage"] = stage.name
    if component:
        out["app.kubernetes.io/component"] = component
    return out


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def _max_replicas(stage: Stage, o: RenderOptions) -> int:
    return min(stage.max_replicas, 5) if o.ce else stage.max_replicas


def function_image(o: RenderOptions, stage: Stage) -> str:
    return o.function_image.replace("{stage}", stage.name)


def stack(t: Topology, o: RenderOptions = RenderOptions()) -> dict[str, Any]:
    """stack.yml (openfaas-keda.md §3.1): one function per stage, built from the local template."""
    functions = {}
    for st in t.stages:
        # §1.3 / §2: exec_timeout <= gateway upstream_timeout; read/write a little longer than exec.
        functions[st.name] = {
            "lang": TEMPLATE,
            "handler": "./function",
            "image": function_image(o, st),
            "namespace": o.function_namespace,
            "environment": {
                "LAGDUEL_STAGE": st.name,
                "LAGDUEL_TOPOLOGY": "/home/app/function/pipeline.yaml",
                "max_inflight": str(st.concurrency),
                "exec_timeout": _duration(st.timeout_s),
                "read_timeout": _duration(st.timeout_s + 5),
                "write_timeout": _duration(st.timeout_s + 5),
                "healthcheck_interval": "5s",
            },
            # §3.4: labels for the OpenFaaS autoscalers; KEDA does the scaling here. `scale.min` is
            # what faas-cli deploy resets the replicas to (§3.3), so it is at least 1.
            "labels": {
                "com.openfaas.scale.min": str(max(st.min_replicas, 1)),
                "com.openfaas.scale.max": str(_max_replicas(st, o)),
                "lagduel.dev/pipeline": t.pipeline,
                "lagduel.dev/stage": st.name,
            },
            "annotations": {
                "lagduel.dev/input-topic": st.input.topic,
                "lagduel.dev/output-topic": st.output.topic,
                "lagduel.dev/consumer-group": connector_group(t, st),
                "lagduel.dev/scaler": "keda",
            },
            "limits": {"cpu": st.limits.cpu, "memory": st.limits.memory},
            "requests": {"cpu": st.limits.cpu, "memory": st.limits.memory},
            "readonly_root_filesystem": True,
            "build_args": {"PYTHON_VERSION": "3.11"},
        }
    return {
        "version": "1.0",
        "provider": {"name": "openfaas", "gateway": o.stack_gateway},
        "configuration": {"templates": [{"name": TEMPLATE}]},  # ./template/<name>, next to this file
        "functions": functions,
    }


def kafka_secret_name(t: Topology) -> str:
    return f"{t.pipeline}-kafka-client"


def _kafka_secret(t: Topology, settings: Mapping[str, str]) -> Manifest:
    """The connectors' librdkafka settings, one key=value a line, as `lagduel connector --kafka-config` reads them."""
    text = "".join(f"{key}={value}\n" for key, value in settings.items())
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": kafka_secret_name(t), "namespace": t.namespace, "labels": _labels(t)},
            "type": "Opaque", "stringData": {KAFKA_CONFIG_FILE: text}}


def _connector(t: Topology, st: Stage, o: RenderOptions) -> Manifest:
    name = f"{t.pipeline}-connector-{st.name}"
    labels = _labels(t, st, "connector")
    args = ["connector", "--stage", st.name, "--topology", "/etc/lagduel/pipeline.yaml",
            "--bootstrap", o.bootstrap, "--gateway", o.gateway, "--metrics-port", str(METRICS_PORT)]
    mounts = [{"name": "topology", "mountPath": "/etc/lagduel", "readOnly": True}]
    volumes: list[Manifest] = [{"name": "topology", "configMap": {"name": f"{t.pipeline}-openfaas-topology"}}]
    if o.kafka_config is not None:
        args += ["--kafka-config", f"{KAFKA_CONFIG_DIR}/{KAFKA_CONFIG_FILE}"]
        mounts.append({"name": "kafka-client", "mountPath": KAFKA_CONFIG_DIR, "readOnly": True})
        volumes.append({"name": "kafka-client", "secret": {"secretName": kafka_secret_name(t)}})
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": t.namespace, "labels": labels},
        "spec": {
            # One connector per stage: its in-flight bound (concurrency × max replicas) is the parallelism.
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {
                    "prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT)}},
                "spec": {
                    "enableServiceLinks": False,
                    "automountServiceAccountToken": False,
                    # The connector drains in-flight invocations on SIGTERM: give it the stage timeout.
                    "terminationGracePeriodSeconds": int(st.timeout_s) + 10,
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "connector",
                        "image": o.connector_image,
                        "args": args,
                        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                        "readinessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 5},
                        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"},
                                      "limits": {"cpu": "500m", "memory": "256Mi"}},
                        "securityContext": SECURITY,
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                },
            },
        },
    }


def scaled_object(t: Topology, st: Stage, o: RenderOptions) -> Manifest:
    """openfaas-keda.md §5.1/§5.2: the function's Deployment scaled on its connector group's lag."""
    k = st.keda
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": st.name, "namespace": o.function_namespace, "labels": _labels(t, st, "function")},
        "spec": {
            "scaleTargetRef": {"name": st.name},  # §3.3: the Deployment is named after the function
            "pollingInterval": k.polling_interval_s,
            "cooldownPeriod": k.cooldown_period_s,
            "initialCooldownPeriod": k.initial_cooldown_period_s,
            "minReplicaCount": st.min_replicas,
            "maxReplicaCount": _max_replicas(st, o),
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _hpa_behavior(st)}},
            "triggers": [{"type": "kafka", "metadata": {
                "bootstrapServers": o.bootstrap,
                "consumerGroup": connector_group(t, st),
                "topic": st.input.topic,
                "lagThreshold": str(k.lag_threshold),
                "activationLagThreshold": str(k.activation_lag_threshold),
                "offsetResetPolicy": k.offset_reset_policy,
                "allowIdleConsumers": str(k.allow_idle_consumers).lower(),
                "excludePersistentLag": str(k.exclude_persistent_lag).lower(),
                "scaleToZeroOnInvalidOffset": str(k.scale_to_zero_on_invalid_offset).lower(),
                "limitToPartitionsWithLag": str(k.limit_to_partitions_with_lag).lower(),
                "ensureEvenDistributionOfPartitions": str(k.ensure_even_distribution_of_partitions).lower(),
                **({"partitionLimitation": k.partition_limitation.strip()} if k.partition_limitation.strip() else {}),
            }}],
        },
    }


def _hpa_behavior(st: Stage) -> Manifest:
    """The HPA behavior KEDA copies verbatim (openfaas-keda.md §5.1); a tolerance only when set, else the
    cluster's --horizontal-pod-autoscaler-tolerance applies (§5.5)."""
    k = st.keda
    down: Manifest = {"stabilizationWindowSeconds": k.scale_down_stabilization_s}
    if k.scale_down_tolerance is not None:
        down["tolerance"] = f"{k.scale_down_tolerance:g}"
    behavior: Manifest = {"scaleDown": down}
    if k.scale_up_tolerance is not None:
        behavior["scaleUp"] = {"tolerance": f"{k.scale_up_tolerance:g}"}
    return behavior


def _network_policies(t: Topology, o: RenderOptions) -> list[Manifest]:
    functions = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": f"{t.pipeline}-functions", "namespace": o.function_namespace, "labels": _labels(t)},
        "spec": {
            # §3.3: faas-netes labels every function pod `faas_function: <name>`.
            "podSelector": {"matchExpressions": [{"key": "faas_function", "operator": "In",
                                                  "values": [st.name for st in t.stages]}]},
            "policyTypes": ["Ingress"],
            # Only the gateway (and its Prometheus) may call a function; the connectors go through the gateway.
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": o.gateway_namespace}}}],
                "ports": [{"protocol": "TCP", "port": 8080}]}],
        },
    }
    connectors = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": f"{t.pipeline}-connectors", "namespace": t.namespace, "labels": _labels(t)},
        "spec": {
            "podSelector": {"matchLabels": {**_labels(t), "app.kubernetes.io/component": "connector"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": METRICS_PORT}]}],  # metrics scrapes only
            # A connector consumes and produces Kafka and calls the gateway; nothing else.
            "egress": [dns_egress(), *(egress_to(b, 9092) for b in o.bootstrap.split(",")),
                       egress_to(o.gateway, 8080)],
        },
    }
    return [functions, connectors]


def render(t: Topology, o: RenderOptions = RenderOptions()) -> list[Manifest]:
    """The Kubernetes objects (stack.yml is separate: faas-cli, not kubectl, applies it). Their namespaces
    are apart: see `namespaces`."""
    config = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": f"{t.pipeline}-openfaas-topology", "namespace": t.namespace, "labels": _labels(t)},
              "data": {"pipeline.yaml": yaml.safe_dump(topology_document(t), sort_keys=False)}}
    secret = [] if o.kafka_config is None else [_kafka_secret(t, o.kafka_config)]
    return [config, *secret, *(_connector(t, st, o) for st in t.stages),
            *(scaled_object(t, st, o) for st in t.stages), *_network_policies(t, o)]


def namespaces(manifests: list[Manifest], function_namespaces: Collection[str]) -> list[Manifest]:
    """The namespaces the manifests use, but for the function namespaces, which the OpenFaaS install owns.

    Each is the document the Knative backend renders for it (so applying either backend leaves it alike),
    for the pipeline named by the manifests' label.
    """
    used = {m["metadata"]["namespace"]: m["metadata"]["labels"]["lagduel.dev/pipeline"] for m in manifests
            if m["metadata"].get("namespace") not in (None, *function_namespaces)}
    return [namespace(pipeline, ns) for ns, pipeline in sorted(used.items())]


_FILES = {"Namespace": "namespace.yaml", "ConfigMap": "config.yaml", "Secret": SECRET_FILE,
          "Deployment": "connectors.yaml", "ScaledObject": "scaledobjects.yaml", "NetworkPolicy": "network-policy.yaml"}


def render_files(t: Topology, o: RenderOptions = RenderOptions()) -> dict[str, str]:
    """File name → text: stack.yml, one file per kind, and the build context: the faas-cli template, the
    handler folder `function/` (the template's skeleton plus the topology `pipeline.yaml` built into the
    function image), the Dockerfiles and a README. The lagduel wheel the images install is not rendered:
    the command builds it into `function/wheels/`."""
    files = context_files("pipeline.openfaas")
    skeleton = f"template/{TEMPLATE}/function/"
    files.update({"function/" + name[len(skeleton):]: text for name, text in list(files.items())
                  if name.startswith(skeleton)})
    grouped: dict[str, list[Manifest]] = {}
    manifests = render(t, o)
    for m in namespaces(manifests, {o.function_namespace}) + manifests:
        grouped.setdefault(_FILES[m["kind"]], []).append(m)
    files.update({name: HEADER + yaml.safe_dump_all(docs, sort_keys=False) for name, docs in grouped.items()})
    files["stack.yml"] = HEADER + yaml.safe_dump(stack(t, o), sort_keys=False)
    files["function/pipeline.yaml"] = HEADER + yaml.safe_dump(topology_document(t), sort_keys=False)
    return files
