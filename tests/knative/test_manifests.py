"""Rendered Knative manifests: equal to the committed set, valid against the upstream CRD schemas."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from lagduel.knative_deploy import knative
from pipeline.knative.manifests import render, render_files, trigger_group, trigger_name
from pipeline.topology import load_topology

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "knative"
CRDS = REPO / "tests" / "crds" / "knative"  # vendored upstream CRDs, provenance in SOURCES.md
CORE = {"Namespace", "ConfigMap", "NetworkPolicy"}


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → openAPIV3Schema, from every vendored Knative CRD file."""
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for v in spec["versions"]:
                schema = v.get("schema", {}).get("openAPIV3Schema")
                if schema:
                    out[(f"{spec['group']}/{v['name']}", spec["names"]["kind"])] = schema
    return out


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render(load_topology())


def tree(root: Path) -> dict[str, str]:
    """Every file under root by relative path, but the wheels (built at render time, not committed)."""
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*")
            if p.is_file() and "wheels" not in p.relative_to(root).parts}


def test_committed_set_equals_a_fresh_render(tmp_path: Path) -> None:
    result = CliRunner().invoke(knative, ["--render", str(tmp_path), "--no-wheel"])
    assert result.exit_code == 0, result.output
    fresh = tree(tmp_path)
    assert {"Dockerfile", "Dockerfile.dockerignore", "kustomization.yaml", "services.yaml"} <= set(fresh)
    assert tree(DEPLOY) == fresh, "deploy/knative is stale: run `lagduel deploy knative --render deploy/knative`"


@pytest.mark.parametrize("image", ["Dev.local/Lagduel:0.1", "dev.local/stage:", "stage:v@sha256:12", "a b", ""])
def test_an_invalid_image_is_a_one_line_error(tmp_path: Path, image: str) -> None:
    result = CliRunner().invoke(knative, ["--render", str(tmp_path), "--no-wheel", "--image", image])
    assert result.exit_code == 2 and "Invalid value for '--image'" in result.output
    assert "is not an image reference" in result.output and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())


def test_the_image_is_an_option(tmp_path: Path) -> None:
    image = "ghcr.io/team/lagduel-stage@sha256:" + "0f" * 32
    assert CliRunner().invoke(knative, ["--render", str(tmp_path), "--no-wheel", "--image", image]).exit_code == 0
    services = list(yaml.safe_load_all((tmp_path / "services.yaml").read_text()))
    assert [s["spec"]["template"]["spec"]["containers"][0]["image"] for s in services] == [image] * 3


@pytest.mark.wheel
def test_render_writes_a_complete_build_context(tmp_path: Path) -> None:
    result = CliRunner().invoke(knative, ["--render", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (wheel,) = (tmp_path / "wheels").glob("lagduel-*.whl")
    assert f"built {wheel}" in result.output
    dockerfile = (tmp_path / "Dockerfile").read_text()
    sources = [w for line in dockerfile.splitlines() if line.startswith("COPY ") and "--from" not in line
               for w in line.split()[1:-1]]
    assert sources == ["wheels/"] and "pip install /tmp/wheels/lagduel-*.whl" in dockerfile
    # BuildKit reads Dockerfile.dockerignore: the context it sends is the wheel alone.
    ignore = [line for line in (tmp_path / "Dockerfile.dockerignore").read_text().splitlines()
              if line and not line.startswith("#")]
    assert ignore == ["**", "!wheels/lagduel-*.whl"]
    # The image runs `python -m pipeline.knative.service`: the wheel has it and its packaged topology.
    with zipfile.ZipFile(wheel) as zf:
        assert {"pipeline/knative/service.py", "pipeline/pipeline.yaml", "functions/__init__.py"} <= set(zf.namelist())


def test_custom_resources_match_the_crd_schemas(manifests: list[dict[str, Any]]) -> None:
    schemas = crd_schemas()
    custom = [m for m in manifests if m["kind"] not in CORE]
    assert {m["kind"] for m in custom} == {"Broker", "KafkaSink", "Service", "Trigger", "KafkaSource"}
    for m in custom:
        schema = schemas.get((m["apiVersion"], m["kind"]))
        assert schema is not None, f"no CRD schema for {m['apiVersion']} {m['kind']} in {CRDS}"
        jsonschema.validate(m, schema)


def test_schema_check_catches_a_wrong_field(manifests: list[dict[str, Any]]) -> None:
    source = next(m for m in manifests if m["kind"] == "KafkaSource")
    bad = {**source, "spec": {**source["spec"], "consumers": "three"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, crd_schemas()[("sources.knative.dev/v1", "KafkaSource")])


def test_core_kinds_are_valid_kubernetes(manifests: list[dict[str, Any]]) -> None:
    core = [m for m in manifests if m["kind"] in CORE]
    assert {m["kind"] for m in core} == CORE
    for m in core:
        kubernetes_validate.validate(m, "1.30.0", strict=True)


def test_wiring_follows_the_topology() -> None:
    t = load_topology().with_stage_overrides(knative={"window_s": 6, "target": 2}, concurrency=3)
    ms = render(t)
    by = {(m["kind"], m["metadata"]["name"]): m for m in ms}
    for st in t.stages:
        svc = by[("Service", st.name)]["spec"]["template"]
        ann = svc["metadata"]["annotations"]
        assert ann["autoscaling.knative.dev/window"] == "6s" and ann["autoscaling.knative.dev/target"] == "2"
        assert ann["autoscaling.knative.dev/max-scale"] == str(st.max_replicas)
        assert svc["spec"]["containerConcurrency"] == 3
        assert svc["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] is True
        trig = by[("Trigger", trigger_name(t, st))]
        assert trig["spec"]["filter"]["attributes"] == {"type": st.input.type}
        assert trig["spec"]["subscriber"]["ref"]["name"] == st.name
        assert trig["spec"]["delivery"]["deadLetterSink"]["ref"]["name"] == "orders-dead-letter"
    out = by[("Trigger", "orders-output")]
    assert out["spec"]["filter"]["attributes"]["type"] == t.output.type
    assert out["spec"]["subscriber"]["ref"]["kind"] == "KafkaSink"
    assert by[("KafkaSink", "orders-output")]["spec"]["topic"] == t.output.topic
    assert by[("KafkaSink", "orders-dead-letter")]["spec"]["topic"] == t.dead_letter_topic
    src = by[("KafkaSource", "orders-input")]["spec"]
    assert src["topics"] == [t.input.topic] and src["ordering"] == "ordered"
    # A written delivery replaces upstream's defaults whole: they are spelled out beside the dead-letter sink.
    assert src["delivery"] == {"retry": 10, "backoffPolicy": "exponential", "backoffDelay": "PT0.3S",
                               "timeout": "PT600S", "deadLetterSink": {"ref": {
                                   "apiVersion": "eventing.knative.dev/v1alpha1", "kind": "KafkaSink",
                                   "name": "orders-dead-letter", "namespace": src["sink"]["ref"]["namespace"]}}}
    assert trigger_group("lagduel", "orders-score") == "knative-trigger-lagduel-orders-score"


def test_topology_configmap_loads_back_as_the_same_topology(tmp_path: Path) -> None:
    t = load_topology().with_stage_overrides(latency_ms=7)
    cm = next(m for m in render(t) if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "orders-topology")
    (tmp_path / "p.yaml").write_text(cm["data"]["pipeline.yaml"])
    assert load_topology(tmp_path / "p.yaml") == t


def test_kustomization_lists_every_file(manifests: list[dict[str, Any]]) -> None:
    files = render_files(manifests)
    listed = yaml.safe_load(files["kustomization.yaml"])["resources"]
    assert sorted(listed) == sorted(n for n in files if n.endswith(".yaml") and n != "kustomization.yaml")
    assert listed[0] == "namespace.yaml"


def test_apply_without_a_kube_context_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(knative, ["--apply"], env={"KUBECONFIG": str(tmp_path / "none")})
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: no usable Kubernetes cluster config")
    assert "Traceback" not in result.output


def test_cli_needs_an_action_and_a_readable_topology(tmp_path: Path) -> None:
    assert CliRunner().invoke(knative, []).exit_code == 2
    bad = tmp_path / "t.yaml"
    bad.write_text("pipeline: orders\nstages: nope\n")
    r = CliRunner().invoke(knative, ["--render", str(tmp_path), "--topology", str(bad)])
    assert r.exit_code == 1 and "stages" in r.output


def test_namespace_option_moves_everything(tmp_path: Path) -> None:
    ms = render(load_topology())
    assert {m["metadata"].get("namespace", m["metadata"]["name"]) for m in ms} == {"lagduel"}
    r = CliRunner().invoke(knative, ["--render", str(tmp_path), "--namespace", "bench"])
    assert r.exit_code == 0
    docs = [d for p in tmp_path.glob("*.yaml") if p.name != "kustomization.yaml" for d in yaml.safe_load_all(p.read_text())]
    assert {d["metadata"].get("namespace", d["metadata"]["name"]) for d in docs} == {"bench"}
