"""Rendered OpenFaaS manifests: equal to the committed set, valid against KEDA's CRD, stack schema and Kubernetes."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import uvicorn
import yaml
from click.testing import CliRunner

from lagduel.openfaas_deploy import openfaas
from pipeline.broker.process import free_port
from pipeline.openfaas.apply import function_deployment
from pipeline.openfaas.gateway import Gateway, GatewayConfig
from pipeline.openfaas.render import RenderOptions, render, render_files, stack
from pipeline.openfaas.stack_schema import STACK_SCHEMA
from pipeline.topology import load_topology

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "openfaas"
KEDA_CRD = REPO / "tests" / "crds" / "keda" / "keda.sh_scaledobjects.yaml"  # vendored; provenance in SOURCES.md


def scaled_object_schema() -> dict[str, Any]:
    doc = yaml.safe_load(KEDA_CRD.read_text())
    return next(v["schema"]["openAPIV3Schema"] for v in doc["spec"]["versions"] if v["name"] == "v1alpha1")


def test_committed_set_equals_a_fresh_render(tmp_path: Path) -> None:
    result = CliRunner().invoke(openfaas, ["--render", str(tmp_path)])
    assert result.exit_code == 0, result.output
    fresh = {str(p.relative_to(tmp_path)): p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    committed = {name: (DEPLOY / name).read_text() if (DEPLOY / name).exists() else None for name in fresh}
    assert committed == fresh, "deploy/openfaas is stale: run `lagduel deploy openfaas --render deploy/openfaas`"


def test_scaled_objects_match_the_keda_crd() -> None:
    schema = scaled_object_schema()
    objs = [m for m in render(load_topology()) if m["kind"] == "ScaledObject"]
    assert [o["metadata"]["name"] for o in objs] == ["validate", "enrich", "score"]
    for o in objs:
        jsonschema.validate(o, schema)
    bad = {**objs[0], "spec": {**objs[0]["spec"], "pollingInterval": "often"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_stack_matches_its_schema_and_the_schema_catches_mistakes() -> None:
    doc = stack(load_topology())
    jsonschema.Draft202012Validator.check_schema(STACK_SCHEMA)
    jsonschema.validate(doc, STACK_SCHEMA)
    bad = {**doc, "functions": {"score": {**doc["functions"]["score"], "envirnoment": {}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, STACK_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "functions": {"Not_DNS": doc["functions"]["score"]}}, STACK_SCHEMA)


def test_core_kinds_are_valid_kubernetes() -> None:
    core = [m for m in render(load_topology()) if m["kind"] != "ScaledObject"]
    assert {m["kind"] for m in core} == {"ConfigMap", "Deployment", "NetworkPolicy"}
    for m in core:
        kubernetes_validate.validate(m, "1.30.0", strict=True)


def test_wiring_follows_the_topology() -> None:
    t = load_topology().with_stage_overrides(
        concurrency=3, timeout_s=12, max_replicas=8, min_replicas=2,
        keda={"lag_threshold": 50, "polling_interval_s": 2, "cooldown_period_s": 9, "allow_idle_consumers": True,
              "scale_down_stabilization_s": 30})
    score = {(m["kind"], m["metadata"]["name"]): m for m in render(t)}[("ScaledObject", "score")]["spec"]
    assert (score["pollingInterval"], score["cooldownPeriod"], score["minReplicaCount"]) == (2, 9, 2)
    assert score["maxReplicaCount"] == 5  # CE cap
    assert render(t, RenderOptions(ce=False))[-3]["spec"]["maxReplicaCount"] == 8
    meta = score["triggers"][0]["metadata"]
    assert meta["consumerGroup"] == "lagduel-connector-orders-score" and meta["topic"] == "orders.enriched"
    assert (meta["lagThreshold"], meta["allowIdleConsumers"]) == ("50", "true")
    assert score["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"] == {"stabilizationWindowSeconds": 30}
    fn = stack(t)["functions"]["score"]
    assert fn["environment"]["max_inflight"] == "3" and fn["environment"]["exec_timeout"] == "12s"
    assert fn["labels"]["com.openfaas.scale.min"] == "2"
    body = function_deployment("score", fn)
    assert body["service"] == "score" and body["envVars"]["LAGDUEL_STAGE"] == "score"
    assert "function/pipeline.yaml" in render_files(t)


def test_apply_without_a_gateway_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENFAAS_PASSWORD", "secret")
    port = free_port()
    result = CliRunner().invoke(openfaas, ["--apply", "--gateway", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert f"cannot reach the OpenFaaS gateway at http://127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


def test_apply_without_a_password_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENFAAS_PASSWORD", raising=False)
    result = CliRunner().invoke(openfaas, ["--apply"])
    assert result.exit_code == 1 and "no gateway password" in result.output


@pytest.fixture
def gateway_url() -> Any:
    """The emulated gateway (no functions) over real HTTP, with basic auth admin/secret."""
    port = free_port()
    gw = Gateway({}, GatewayConfig(password="secret"))
    server = uvicorn.Server(uvicorn.Config(gw.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def test_apply_without_a_kube_context_is_one_clear_error(gateway_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENFAAS_PASSWORD", "secret")
    result = CliRunner().invoke(openfaas, ["--apply", "--gateway", gateway_url,
                                           "--kubeconfig", str(tmp_path / "missing-kubeconfig")])
    assert result.exit_code == 1 and "no usable Kubernetes cluster config" in result.output, result.output


def test_apply_with_wrong_credentials_is_one_clear_error(gateway_url: str, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("wrong\n")
    result = CliRunner().invoke(openfaas, ["--apply", "--gateway", gateway_url, "--password-file", str(secret)])
    assert result.exit_code == 1 and "rejected the credentials" in result.output, result.output
