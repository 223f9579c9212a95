"""The Knative resources of a topology, rendered as plain dicts (pure: topology in, manifests out).

KafkaSource (input topic → Broker) ─► Kafka Broker ─► one Trigger per stage (type filter) ─► Knative
Service per stage, replies back into the broker ─► a last Trigger into the output KafkaSink; every
Trigger dead-letters into the dead-letter KafkaSink. The local emulation uses the same names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from pipeline.images import context_files
from pipeline.topology import Stage, Topology

PIPELINE_LABEL = "lagduel.dev/pipeline"
STAGE_LABEL = "lagduel.dev/stage"
BACKEND_LABEL = "lagduel.dev/backend"
"""On the stage pods, so this backend's NetworkPolicy selects them and not the OpenFaaS connectors that
may share the namespace."""
TOPOLOGY_PATH = "/etc/lagduel/pipeline.yaml"
Manifest = dict[str, Any]


@dataclass(frozen=True)
class RenderOptions:
    image: str = "dev.local/lagduel-stage:0.1.0"
    bootstrap: str = "my-cluster-kafka-bootstrap.kafka:9092"
    """The cluster's Kafka (the Strimzi default name used by the Knative docs)."""
    namespace: str | None = None
    """Overrides the topology's namespace."""


# Names, shared with the local emulation -----------------------------------------------------------

def trigger_name(t: Topology, stage: Stage | None) -> str:
    return f"{t.broker}-{stage.name if stage else 'output'}"


def trigger_group(namespace: str, trigger: str) -> str:
    """knative.md §2.3: triggers-consumergroup-template knative-trigger-{{.Namespace}}-{{.Name}}."""
    return f"knative-trigger-{namespace}-{trigger}"


def source_name(t: Topology) -> str:
    return f"{t.broker}-input"


def source_group(namespace: str, t: Topology) -> str:
    return f"knative-kafka-source-{namespace}-{source_name(t)}"


def output_sink_name(t: Topology) -> str:
    return f"{t.broker}-output"


def dead_letter_sink_name(t: Topology) -> str:
    return f"{t.broker}-dead-letter"


def _duration(seconds: float) -> str:
    return f"PT{seconds:g}S"


def _num(x: float) -> str:
    return f"{x:g}"


def topology_document(t: Topology) -> dict[str, Any]:
    """The topology as a pipeline.yaml document (stage inputs are implied by the order)."""
    doc = t.model_dump(mode="json")
    for st in doc["stages"]:
        st.pop("input", None)
    return doc


# Resources -------------------------------------------------------------------------------------

def _meta(name: str, ns: str, t: Topology, **labels: str) -> dict[str, Any]:
    return {"name": name, "namespace": ns, "labels": {PIPELINE_LABEL: t.pipeline, **labels}}


def _ref(api_version: str, kind: str, name: str, ns: str) -> dict[str, Any]:
    return {"ref": {"apiVersion": api_version, "kind": kind, "name": name, "namespace": ns}}


def _kafka_sink(t: Topology, ns: str, name: str, topic: str, o: RenderOptions) -> Manifest:
    return {"apiVersion": "eventing.knative.dev/v1alpha1", "kind": "KafkaSink", "metadata": _meta(name, ns, t),
            "spec": {"topic": topic, "bootstrapServers": [o.bootstrap], "contentMode": "binary",
                     "numPartitions": t.partitions, "replicationFactor": t.replication_factor}}


def _dead_letter(t: Topology, ns: str) -> dict[str, Any]:
    return _ref("eventing.knative.dev/v1alpha1", "KafkaSink", dead_letter_sink_name(t), ns)


def _delivery(t: Topology, ns: str, stage: Stage) -> dict[str, Any]:
    d = stage.delivery
    # knative.md §1.6: retry n times, backoffDelay × 2^n (exponential), timeout per attempt, then the DLS.
    return {"retry": d.retry, "backoffPolicy": d.backoff_policy, "backoffDelay": _duration(d.backoff_delay_s),
            "timeout": _duration(stage.timeout_s), "deadLetterSink": _dead_letter(t, ns)}


SOURCE_RETRY, SOURCE_BACKOFF_DELAY_S, SOURCE_TIMEOUT_S = 10, 0.3, 600
"""knative.md §1.6: the KafkaSource's delivery when it has none (control-plane/pkg/reconciler/source/source.go)."""


def source_delivery(t: Topology, ns: str) -> dict[str, Any]:
    """The KafkaSource's upstream default retries, plus the dead-letter sink: without one, an event the broker
    ingress refuses (e.g. oversize) is dropped after the retries (knative.md §1.6). A written `delivery` is
    used as is, with no merge, so the defaults are spelled out."""
    return {"retry": SOURCE_RETRY, "backoffPolicy": "exponential", "backoffDelay": _duration(SOURCE_BACKOFF_DELAY_S),
            "timeout": _duration(SOURCE_TIMEOUT_S), "deadLetterSink": _dead_letter(t, ns)}


def _trigger(t: Topology, ns: str, stage: Stage | None, subscriber: dict[str, Any], delivery: dict[str, Any],
             event_type: str, ordering: str) -> Manifest:
    meta = _meta(trigger_name(t, stage), ns, t)
    # knative.md §2.4: delivery order is an annotation on the Trigger, default unordered.
    meta["annotations"] = {"kafka.eventing.knative.dev/delivery.order": ordering}
    return {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": meta,
            "spec": {"broker": t.broker, "filter": {"attributes": {"type": event_type}},
                     "subscriber": subscriber, "delivery": delivery}}


def kpa_annotations(stage: Stage) -> dict[str, str]:
    """knative.md §3.1: the revision template's KPA annotations."""
    k, a = stage.knative, "autoscaling.knative.dev/"
    return {
        a + "class": "kpa.autoscaling.knative.dev",
        a + "metric": "concurrency",
        a + "target": _num(k.target),
        a + "target-utilization-percentage": _num(k.target_utilization * 100),
        a + "window": f"{k.window_s}s",
        a + "panic-window-percentage": _num(k.panic_window_percentage),
        a + "panic-threshold-percentage": _num(k.panic_threshold_percentage),
        a + "scale-down-delay": f"{k.scale_down_delay_s}s",
        a + "initial-scale": str(k.initial_scale),
        a + "min-scale": str(stage.min_replicas),
        a + "max-scale": str(stage.max_replicas),
        a + "target-burst-capacity": _num(k.target_burst_capacity),
    }


def _service(t: Topology, ns: str, stage: Stage, o: RenderOptions) -> Manifest:
    labels = {PIPELINE_LABEL: t.pipeline, STAGE_LABEL: stage.name, BACKEND_LABEL: "knative"}
    resources = {"cpu": stage.limits.cpu, "memory": stage.limits.memory}
    container = {
        "name": "stage",
        "image": o.image,
        "args": ["--stage", stage.name, "--topology", TOPOLOGY_PATH],
        "ports": [{"name": "http1", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/readyz"}, "periodSeconds": 1},
        "livenessProbe": {"httpGet": {"path": "/healthz"}, "periodSeconds": 10},
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        # The restricted Pod Security Standard, at container level (pod-level needs a Knative feature flag).
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "topology", "mountPath": "/etc/lagduel", "readOnly": True}],
    }
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": _meta(stage.name, ns, t, **{STAGE_LABEL: stage.name}),
            "spec": {"template": {
                "metadata": {"labels": labels, "annotations": kpa_annotations(stage)},
                "spec": {"containerConcurrency": stage.concurrency, "timeoutSeconds": int(-(-stage.timeout_s // 1)),
                         "enableServiceLinks": False, "containers": [container],
                         "volumes": [{"name": "topology", "configMap": {"name": f"{t.pipeline}-topology"}}]},
            }}}


def render(t: Topology, o: RenderOptions = RenderOptions()) -> list[Manifest]:
    ns = o.namespace or t.namespace
    broker_config = f"{t.broker}-broker-config"
    out: list[Manifest] = [
        namespace(t.pipeline, ns),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(f"{t.pipeline}-topology", ns, t),
         "data": {"pipeline.yaml": yaml.safe_dump(topology_document(t), sort_keys=False)}},
        # knative.md §2.1: the Kafka broker's topic settings and bootstrap live in its config ConfigMap.
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(broker_config, ns, t),
         "data": {"bootstrap.servers": o.bootstrap, "default.topic.partitions": str(t.partitions),
                  "default.topic.replication.factor": str(t.replication_factor)}},
        {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
         "metadata": {**_meta(t.broker, ns, t), "annotations": {"eventing.knative.dev/broker.class": "Kafka"}},
         "spec": {"config": {"apiVersion": "v1", "kind": "ConfigMap", "name": broker_config, "namespace": ns},
                  "delivery": {"deadLetterSink": _dead_letter(t, ns)}}},
        _kafka_sink(t, ns, output_sink_name(t), t.output.topic, o),
        _kafka_sink(t, ns, dead_letter_sink_name(t), t.dead_letter_topic, o),
    ]
    out += [_service(t, ns, st, o) for st in t.stages]
    for st in t.stages:
        out.append(_trigger(t, ns, st, _ref("serving.knative.dev/v1", "Service", st.name, ns),
                            _delivery(t, ns, st), st.input.type, st.delivery.ordering))
    last = t.stages[-1]
    out.append(_trigger(t, ns, None, _ref("eventing.knative.dev/v1alpha1", "KafkaSink", output_sink_name(t), ns),
                        _delivery(t, ns, last), t.output.type, last.delivery.ordering))
    # knative.md §1.2/§1.4: KafkaSource ordering defaults to ordered.
    out.append({"apiVersion": "sources.knative.dev/v1", "kind": "KafkaSource", "metadata": _meta(source_name(t), ns, t),
                "spec": {"bootstrapServers": [o.bootstrap], "topics": [t.input.topic],
                         "consumerGroup": source_group(ns, t), "initialOffset": "earliest", "ordering": "ordered",
                         "sink": _ref("eventing.knative.dev/v1", "Broker", t.broker, ns),
                         "delivery": source_delivery(t, ns)}})
    out.append(_network_policy(t, ns, o))
    return out


def namespace(pipeline: str, ns: str) -> Manifest:
    """The pipeline's namespace, the same document from both backends (one field manager applies it).

    Pod Security enforces `baseline`, and warns and audits at `restricted`: the stage containers meet
    `restricted`, but Knative's queue-proxy sidecar only does from Knative 1.8 on (knative/serving#13376
    added its seccompProfile and dropped capabilities); before that its pods are refused under
    `restricted` (knative/serving#13298). `baseline` admits every release's queue-proxy, and the
    warnings still show any container short of `restricted`.
    """
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {PIPELINE_LABEL: pipeline,
                                                "pod-security.kubernetes.io/enforce": "baseline",
                                                "pod-security.kubernetes.io/warn": "restricted",
                                                "pod-security.kubernetes.io/audit": "restricted"}}}


def _in_namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def egress_to(address: str, default_port: int) -> dict[str, Any]:
    """An egress rule to `host[:port]` or a URL: the port, and the namespace when the host is a
    Service name (`svc.ns`, `svc.ns.svc[...]`); any destination on that port otherwise."""
    parts = urlsplit(address if "//" in address else f"//{address}")
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": parts.port or default_port}]}
    labels = (parts.hostname or "").split(".")
    if len(labels) == 2 or len(labels) > 2 and labels[2] == "svc":
        rule["to"] = [_in_namespace(labels[1])]
    return rule


def dns_egress() -> dict[str, Any]:
    return {"to": [_in_namespace("kube-system")], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


def _network_policy(t: Topology, ns: str, o: RenderOptions) -> Manifest:
    """This backend's stage pods only: traffic in from Knative's data planes and the ingress; out to DNS,
    Kafka and the Kafka broker's ingress (kafka-broker-receiver pods)."""
    sources = ["knative-serving", "knative-eventing", "kourier-system", "istio-system"]
    broker_ingress = {**_in_namespace("knative-eventing"),
                      "podSelector": {"matchLabels": {"app": "kafka-broker-receiver"}}}
    kafka = [egress_to(b, 9092) for b in o.bootstrap.split(",")]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(f"{t.pipeline}-stages", ns, t),
            "spec": {"podSelector": {"matchLabels": {PIPELINE_LABEL: t.pipeline, BACKEND_LABEL: "knative"}},
                     "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
                         {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sources}]}}]}],
                     "egress": [dns_egress(), *kafka, {"to": [broker_ingress]}]}}


# Files -----------------------------------------------------------------------------------------

_FILES = {"Namespace": "namespace.yaml", "ConfigMap": "config.yaml", "Broker": "broker.yaml", "KafkaSink": "sinks.yaml",
          "Service": "services.yaml", "Trigger": "triggers.yaml", "KafkaSource": "source.yaml",
          "NetworkPolicy": "network-policy.yaml"}
HEADER = "# Rendered from the topology by `lagduel deploy knative --render`; edit pipeline.yaml, not this file.\n"


def render_files(manifests: list[Manifest]) -> dict[str, str]:
    """File name → text: one YAML file per kind, kustomization.yaml listing them in apply order, and the
    stage image's Dockerfile (package data in `image/`), so the directory is its build context once the
    command has built the lagduel wheel into `wheels/`."""
    grouped: dict[str, list[Manifest]] = {}
    for m in manifests:
        grouped.setdefault(_FILES.get(m["kind"], "other.yaml"), []).append(m)
    files = context_files("pipeline.knative")
    files.update({name: HEADER + yaml.safe_dump_all(docs, sort_keys=False) for name, docs in grouped.items()})
    kustomization: Mapping[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                                        "resources": list(grouped)}
    files["kustomization.yaml"] = HEADER + yaml.safe_dump(dict(kustomization), sort_keys=False)
    return files
