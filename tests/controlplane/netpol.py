"""NetworkPolicy semantics, enough to ask "is this pod selected" and "may this pod reach that one".

Pure: policies and labels in, answers out. Used on the rendered policies and on the ones read back
from the API server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Labels = Mapping[str, str]


@dataclass(frozen=True)
class Pod:
    backend: str
    role: str
    namespace: str
    labels: Labels = field(default_factory=dict)


@dataclass(frozen=True)
class Peer:
    """A destination: its namespace, its pods' labels, the port and protocol called."""
    namespace: str
    port: int
    protocol: str = "TCP"
    labels: Labels = field(default_factory=dict)


def selects(selector: Mapping[str, Any] | None, labels: Labels) -> bool:
    """A label selector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist); {} selects all."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        ok = {"In": key in labels and labels[key] in values, "NotIn": key not in labels or labels[key] not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def applies_to(policy: Mapping[str, Any], pod: Pod) -> bool:
    return policy["metadata"]["namespace"] == pod.namespace and selects(policy["spec"]["podSelector"], pod.labels)


def _peer_matches(policy_ns: str, peer_rule: Mapping[str, Any], peer: Peer) -> bool:
    if "ipBlock" in peer_rule:
        return False  # the peers asked about are pods, reached by Service name
    ns_sel, pod_sel = peer_rule.get("namespaceSelector"), peer_rule.get("podSelector")
    in_ns = (selects(ns_sel, {"kubernetes.io/metadata.name": peer.namespace}) if ns_sel is not None
             else peer.namespace == policy_ns)
    return in_ns and (pod_sel is None or selects(pod_sel, peer.labels))


def _port_matches(ports: Sequence[Mapping[str, Any]] | None, peer: Peer) -> bool:
    return not ports or any(p.get("protocol", "TCP") == peer.protocol and p.get("port") in (None, peer.port)
                            for p in ports)


def egress_allowed(policies: Sequence[Mapping[str, Any]], pod: Pod, peer: Peer) -> bool:
    """Allowed unless a policy selecting the pod isolates its egress and no such policy's rule lets it out."""
    isolating = [p for p in policies if applies_to(p, pod) and "Egress" in p["spec"].get("policyTypes", [])]
    if not isolating:
        return True
    return any(_port_matches(rule.get("ports"), peer)
               and (not rule.get("to") or any(_peer_matches(p["metadata"]["namespace"], r, peer) for r in rule["to"]))
               for p in isolating for rule in p["spec"].get("egress") or [])


def pipeline_pods(knative: Sequence[Mapping[str, Any]], openfaas: Sequence[Mapping[str, Any]],
                  stack: Mapping[str, Any]) -> list[Pod]:
    """The pods both backends run, labelled as their controllers label them: a Knative revision's pods
    carry the Service's template labels plus serving.knative.dev/*, a connector's its Deployment's
    template labels, a function's its stack labels plus faas-netes' faas_function."""
    pods = []
    for m in knative:
        if m["kind"] == "Service":
            name = m["metadata"]["name"]
            labels = {**m["spec"]["template"]["metadata"]["labels"], "serving.knative.dev/service": name,
                      "serving.knative.dev/revision": f"{name}-00001"}
            pods.append(Pod("knative", "stage", m["metadata"]["namespace"], labels))
    for m in openfaas:
        if m["kind"] == "Deployment":
            pods.append(Pod("openfaas", "connector", m["metadata"]["namespace"],
                            dict(m["spec"]["template"]["metadata"]["labels"])))
    for name, fn in stack["functions"].items():
        pods.append(Pod("openfaas", "function", fn["namespace"], {**fn["labels"], "faas_function": name}))
    return pods


KAFKA = Peer("kafka", 9092, labels={"strimzi.io/cluster": "my-cluster"})
DNS = Peer("kube-system", 53, "UDP", {"k8s-app": "kube-dns"})
GATEWAY = Peer("openfaas", 8080, labels={"app": "gateway"})
BROKER_INGRESS = Peer("knative-eventing", 8080, labels={"app": "kafka-broker-receiver"})
ELSEWHERE = Peer("default", 443, labels={"app": "anything"})

NEEDS = {"stage": (KAFKA, DNS, BROKER_INGRESS), "connector": (KAFKA, DNS, GATEWAY), "function": ()}
"""What each kind of pod must reach (a function only answers the gateway)."""

OWNER = {"stages": ("knative", "stage"), "connectors": ("openfaas", "connector"), "functions": ("openfaas", "function")}
"""Policy name suffix → the pods it is for."""


def check_policies(policies: Sequence[Mapping[str, Any]], pods: Sequence[Pod]) -> list[str]:
    """Every way the policies fail the pipeline: a policy selecting another's pods, a pod cut off from
    what it needs, a stage or connector let out anywhere. Empty when all is well."""
    problems = []
    for p in policies:
        owner = OWNER[p["metadata"]["name"].rsplit("-", 1)[1]]
        for pod in pods:
            if applies_to(p, pod) != ((pod.backend, pod.role) == owner):
                problems.append(f"{p['metadata']['name']} {'selects' if applies_to(p, pod) else 'misses'} "
                                f"a {pod.backend} {pod.role} pod {dict(pod.labels)}")
    for pod in pods:
        for peer in NEEDS[pod.role]:
            if not egress_allowed(policies, pod, peer):
                problems.append(f"a {pod.backend} {pod.role} pod cannot reach {peer}")
        if pod.role != "function" and egress_allowed(policies, pod, ELSEWHERE):
            problems.append(f"a {pod.backend} {pod.role} pod may reach anywhere")
    return problems
