"""Rendered OpenFaaS manifests: equal to the committed set, valid against KEDA's CRD, stack schema and Kubernetes."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import uvicorn
import yaml
from click.testing import CliRunner

from lagduel import render_files as wheel_step
from lagduel.openfaas_deploy import openfaas
from pipeline.broker.process import free_port
from pipeline.kafka import read_client_config
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


def tree(root: Path) -> dict[str, str]:
    """Every file under root by relative path, but the wheels and faas-cli's build/ folder (not committed)."""
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*")
            if p.is_file() and not {"wheels", "build", "__pycache__"} & set(p.relative_to(root).parts)}


def test_committed_set_equals_a_fresh_render(tmp_path: Path) -> None:
    result = CliRunner().invoke(openfaas, ["--render", str(tmp_path), "--no-wheel"])
    assert result.exit_code == 0, result.output
    fresh = tree(tmp_path)
    assert {"README.md", "function.Dockerfile", "template/lagduel-python3-http/Dockerfile", "function/handler.py",
            "function/requirements.txt", "function/pipeline.yaml", "stack.yml"} <= set(fresh)
    assert tree(DEPLOY) == fresh, "deploy/openfaas is stale: run `lagduel deploy openfaas --render deploy/openfaas`"
    assert "kind: Secret" not in "".join(fresh.values())  # the reference render carries no credentials


def test_images_and_gateways_are_options(tmp_path: Path) -> None:
    result = CliRunner().invoke(openfaas, [
        "--render", str(tmp_path), "--no-wheel", "--image", "registry.example:5000/team/lagduel-{stage}:1.2",
        "--connector-image", "registry.example:5000/team/connector@sha256:" + "ab" * 32,
        "--gateway", "https://gw.example.com", "--connector-gateway", "http://gateway.faas:8080"])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load((tmp_path / "stack.yml").read_text())
    jsonschema.validate(doc, STACK_SCHEMA)
    assert doc["provider"]["gateway"] == "https://gw.example.com"  # where faas-cli deploys from
    assert {n: f["image"] for n, f in doc["functions"].items()} == {
        st: f"registry.example:5000/team/lagduel-{st}:1.2" for st in ("validate", "enrich", "score")}
    for dep in yaml.safe_load_all((tmp_path / "connectors.yaml").read_text()):
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "registry.example:5000/team/connector@sha256:" + "ab" * 32
        assert container["args"][container["args"].index("--gateway") + 1] == "http://gateway.faas:8080"


@pytest.mark.parametrize("option, value", [("--image", "Dev.local/Lagduel:{stage}"), ("--image", "lagduel-{stag}"),
                                           ("--connector-image", "dev.local/connector:"), ("--connector-image", "")])
def test_an_invalid_image_is_a_one_line_error(tmp_path: Path, option: str, value: str) -> None:
    result = CliRunner().invoke(openfaas, ["--render", str(tmp_path), "--no-wheel", option, value])
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output
    assert "is not an image reference" in result.output and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())  # nothing written


def test_kafka_config_renders_a_secret_each_connector_mounts(tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text("# SASL\nbootstrap.servers=127.0.0.1:9092\nsecurity.protocol=SASL_SSL\n"
                      "sasl.mechanism=SCRAM-SHA-512\nsasl.username=orders\nsasl.password=s3cret=x\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(openfaas, ["--render", str(out), "--no-wheel", "--kafka-config", str(config)])
    assert result.exit_code == 0, result.output
    secret_file = out / "kafka-client-secret.yaml"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    (secret,) = list(yaml.safe_load_all(secret_file.read_text()))
    kubernetes_validate.validate(secret, "1.30.0", strict=True)
    assert secret["metadata"] == {"name": "orders-kafka-client", "namespace": "lagduel",
                                  "labels": {"lagduel.dev/pipeline": "orders"}}
    # What the connector reads back is the file's settings but the bootstrap (the connectors get --bootstrap).
    (tmp_path / "mounted").write_text(secret["stringData"]["client.properties"])
    assert read_client_config(tmp_path / "mounted") == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "orders",
        "sasl.password": "s3cret=x"}
    deployments = list(yaml.safe_load_all((out / "connectors.yaml").read_text()))
    assert len(deployments) == 3
    for dep in deployments:
        kubernetes_validate.validate(dep, "1.30.0", strict=True)
        pod = dep["spec"]["template"]["spec"]
        args = pod["containers"][0]["args"]
        assert args[args.index("--kafka-config") + 1] == "/etc/lagduel-kafka/client.properties"
        assert {"name": "kafka-client", "mountPath": "/etc/lagduel-kafka", "readOnly": True} in \
            pod["containers"][0]["volumeMounts"]
        assert {"name": "kafka-client", "secret": {"secretName": "orders-kafka-client"}} in pod["volumes"]
    assert "s3cret" not in "".join(p.read_text() for p in out.rglob("*") if p.is_file() and p != secret_file)
    # Without the option: no Secret, no mount (and the environment's config is never rendered).
    plain = render(load_topology())
    assert not [m for m in plain if m["kind"] == "Secret"]
    assert all("--kafka-config" not in m["spec"]["template"]["spec"]["containers"][0]["args"]
               for m in plain if m["kind"] == "Deployment")


def test_an_invalid_kafka_config_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text("security.protocol SASL_SSL\n")
    result = CliRunner().invoke(openfaas, ["--render", str(tmp_path / "out"), "--no-wheel", "--kafka-config", str(config)])
    assert result.exit_code == 2 and "expected key=value" in result.output and "Traceback" not in result.output


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


def copy_sources(dockerfile: str) -> list[str]:
    """The build-context sources of a Dockerfile's COPY instructions (not those from another stage)."""
    out = []
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            out += [w for w in words[1:-1] if not w.startswith("--")]
    return out


def assert_context_has(context: Path, dockerfile: str) -> None:
    sources = copy_sources(dockerfile)
    assert sources
    for source in sources:
        matches = list(context.glob(source.rstrip("/")))
        if source.endswith("/"):
            matches = [m for m in matches if m.is_dir() and any(p.is_file() for p in m.rglob("*"))]
        assert matches, f"the build context {context} has nothing for COPY {source}"


@pytest.mark.wheel
def test_render_writes_a_complete_build_context(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(openfaas, ["--render", str(out)])
    assert result.exit_code == 0, result.output
    (wheel,) = (out / "function" / "wheels").glob("lagduel-*.whl")
    assert f"built {wheel}" in result.output
    # docker build -f X.Dockerfile out: every COPY source is in the directory, the wheel included.
    for name in ("function.Dockerfile", "connector.Dockerfile"):
        assert_context_has(out, (out / name).read_text())
    assert "COPY function/wheels/" in (out / "connector.Dockerfile").read_text()
    # faas-cli build (from out/): ./build/<fn>/ is ./template/<lang> with the handler folder over its function/.
    (lang,) = {fn["lang"] for fn in yaml.safe_load((out / "stack.yml").read_text())["functions"].values()}
    (handler,) = {fn["handler"] for fn in yaml.safe_load((out / "stack.yml").read_text())["functions"].values()}
    assert (out / "template" / lang / "template.yml").is_file()
    context = tmp_path / "faas-build"
    shutil.copytree(out / "template" / lang, context)
    shutil.copytree(out / handler, context / "function", dirs_exist_ok=True)
    assert_context_has(context, (context / "Dockerfile").read_text())
    assert (context / "function" / "wheels" / wheel.name).is_file()
    requirements = (context / "function" / "requirements.txt").read_text()
    assert "--find-links ./wheels" in requirements and re.search(r"^lagduel$", requirements, re.M)
    # The wheel carries the build-context files, so an installed lagduel renders the same set...
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert {"pipeline/openfaas/image/template/lagduel-python3-http/Dockerfile", "pipeline/openfaas/image/README.md",
                "pipeline/openfaas/image/template/lagduel-python3-http/function/handler.py",
                "pipeline/knative/image/Dockerfile", "pipeline/knative/image/Dockerfile.dockerignore"} <= names
        zf.extractall(tmp_path / "installed")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "installed")}
    installed = subprocess.run([sys.executable, "-m", "lagduel", "deploy", "openfaas", "--render", str(tmp_path / "again")],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert tree(tmp_path / "again") == tree(DEPLOY)
    # ...but builds no wheel: it says how to get one, in one line, and fails.
    assert installed.returncode == 1, installed.stderr
    (line,) = installed.stderr.strip().splitlines()
    assert "lagduel runs from an installed package, not a source tree" in line
    assert "pip wheel --no-deps -w" in line and "--no-wheel" in line
    assert not (tmp_path / "again" / "function" / "wheels").exists()


def test_a_failed_wheel_build_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "src"
    for name in wheel_step.SOURCES:
        (broken / name).mkdir(parents=True) if "." not in name else None
    (broken / "README.md").write_text("")
    (broken / "pyproject.toml").write_text('[project]\nname = "lagduel"\nversion = "not a version"\n')
    monkeypatch.setattr(wheel_step, "source_tree", lambda: broken)
    result = CliRunner().invoke(openfaas, ["--render", str(tmp_path / "out")])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()[1:]  # after "wrote N files"
    assert line.startswith("Error: `pip wheel` could not build the lagduel wheel from") and "--no-wheel" in line
