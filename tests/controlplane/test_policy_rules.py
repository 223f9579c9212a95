"""The rendered NetworkPolicies against the rendered pods' labels (pure; the cluster test reads them back)."""

from __future__ import annotations

import copy

from pipeline.knative.manifests import render as render_knative
from pipeline.openfaas.render import render as render_openfaas
from pipeline.openfaas.render import stack
from pipeline.topology import load_topology
from tests.controlplane.netpol import DNS, KAFKA, Peer, check_policies, egress_allowed, pipeline_pods


def rendered() -> tuple[list[dict], list]:
    t = load_topology()
    knative, openfaas = render_knative(t), render_openfaas(t)
    policies = [m for m in knative + openfaas if m["kind"] == "NetworkPolicy"]
    return policies, pipeline_pods(knative, openfaas, stack(t))


def test_each_policy_selects_its_own_backends_pods_and_lets_them_reach_what_they_need() -> None:
    policies, pods = rendered()
    assert {p.role for p in pods} == {"stage", "connector", "function"}
    assert len({p.namespace for p in pods if p.role != "function"}) == 1  # stages and connectors share one
    assert check_policies(policies, pods) == []


def test_the_check_catches_the_old_policies() -> None:
    """The policies as they were: the stages' selected every pod of the pipeline and let out only DNS;
    the connectors' restricted ingress only, so the stages' policy cut them off from Kafka and the gateway."""
    policies, pods = rendered()
    old = copy.deepcopy(policies)
    stages = next(p for p in old if p["metadata"]["name"].endswith("-stages"))
    stages["spec"]["podSelector"] = {"matchLabels": {"lagduel.dev/pipeline": "orders"}}
    stages["spec"]["egress"] = [r for r in stages["spec"]["egress"] if r.get("ports", [{}])[0].get("port") == 53]
    connectors = next(p for p in old if p["metadata"]["name"].endswith("-connectors"))
    connectors["spec"]["policyTypes"] = ["Ingress"]
    del connectors["spec"]["egress"]
    problems = check_policies(old, pods)
    assert any("orders-stages selects a openfaas connector pod" in p for p in problems)
    assert any("connector pod cannot reach Peer(namespace='kafka'" in p for p in problems)


def test_egress_rules_follow_the_configured_bootstrap_and_gateway() -> None:
    t = load_topology()
    from pipeline.knative.manifests import RenderOptions as KnativeOptions
    from pipeline.openfaas.render import RenderOptions as OpenFaaSOptions

    knative = render_knative(t, KnativeOptions(bootstrap="kafka.streaming.svc.cluster.local:19092"))
    openfaas = render_openfaas(t, OpenFaaSOptions(bootstrap="kafka.streaming:19092", gateway="http://gw.faas:8088"))
    policies = [m for m in knative + openfaas if m["kind"] == "NetworkPolicy"]
    pods = pipeline_pods(knative, openfaas, stack(t))
    kafka = Peer("streaming", 19092)
    for pod in pods:
        if pod.role != "function":
            assert egress_allowed(policies, pod, kafka) and egress_allowed(policies, pod, DNS)
            assert not egress_allowed(policies, pod, KAFKA)  # the default namespace and port no longer
    connector = next(p for p in pods if p.role == "connector")
    assert egress_allowed(policies, connector, Peer("faas", 8088))
    assert not egress_allowed(policies, connector, Peer("openfaas", 8080))
