"""A cluster duel against the real control plane and the session's broker: it drives the deployed pipeline and
starts no emulation.

The "deployed" pipeline is the OpenFaaS emulation started by the test on the pipeline's own (unprefixed) topics
and groups — what the connectors on a cluster would run — while its functions' Deployments live in the real
kube-apiserver, where the test scales them, as an autoscaler would.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes.config import kube_config

import load.backend_run
from load.backend_run import DuelPlan
from load.cluster import ClusterTarget
from load.duel import run_duel
from load.profiles import parse_profile
from load.runfolder import read_summary
from pipeline.backends import make_backend
from pipeline.kafka import KafkaSettings, create_topics
from pipeline.openfaas.connector import connector_group
from pipeline.topology import load_topology
from tests.controlplane.faas import apply_object, function_deployment
from tests.controlplane.processes import CONTEXT, ControlPlane
from tests.controlplane.test_apply import await_default_service_account, ensure_namespace
from tests.controlplane.test_replicas import scale

pytestmark = [pytest.mark.controlplane, pytest.mark.kafka]


def _no_emulation(*_: Any, **__: Any) -> Any:
    raise AssertionError("a cluster duel started an emulated backend")


async def test_a_cluster_duel_reports_the_deployed_groups_backlog_and_the_apis_replicas(
        controlplane: ControlPlane, kafka_settings: KafkaSettings, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(controlplane.kubeconfig))
    ns = f"duel-{uuid.uuid4().hex[:6]}"
    ensure_namespace(controlplane, ns)
    await_default_service_account(controlplane, ns)
    # One replica of a stage carries 1 / 30 ms ≈ 33 orders/s, less than the 40/s offered: a backlog builds for sure.
    deployed = load_topology().with_topic_prefix(f"c{uuid.uuid4().hex[:6]}-").with_stage_overrides(
        latency_ms=30, concurrency=1, min_replicas=1)
    for st in deployed.stages:
        apply_object(controlplane, function_deployment(
            {"service": st.name, "namespace": ns, "image": f"dev.local/lagduel-{st.name}:0.1.0",
             "labels": {"com.openfaas.scale.min": "1"}}), "test")
    create_topics(kafka_settings, deployed.topics, deployed.partitions)

    async def scale_validate_to_three() -> None:
        await asyncio.sleep(3)
        await asyncio.to_thread(scale, controlplane, ns, "validate", 3)

    plan = DuelPlan(parse_profile("constant:rate=40", 8), settle_s=2, drain_timeout_s=60,
                    cluster=ClusterTarget(CONTEXT, ns))
    async with make_backend("openfaas", deployed, kafka_settings) as pipeline:
        await pipeline.wait_started(60)
        monkeypatch.setattr(load.backend_run, "make_backend", _no_emulation)
        scaling = asyncio.create_task(scale_validate_to_three())
        folder = await run_duel(["openfaas"], deployed, kafka_settings, plan, tmp_path / "runs")
        await scaling

    summary = read_summary(folder)
    assert summary["unavailable"] == {}, summary["unavailable"]
    run = summary["backends"]["openfaas"]
    assert run["settings_in_force"]["target"] == "cluster" and run["settings_in_force"]["namespace"] == ns
    assert set(run["stages"]) == {st.name for st in deployed.stages}
    assert run["start_line"]["groups"] == [connector_group(deployed, st) for st in deployed.stages]
    assert run["sink"]["lost"] == 0 and run["drained"], run["sink"]
    assert run["sink"]["accounted"] == run["sink"]["sent"] == 320, run["sink"]

    samples = json.loads((folder / "series" / "openfaas.json").read_text())["samples"]
    validate = [(s["desired"], s["ready"]) for s in samples if s["stage"] == "validate"]
    assert validate[0] == (1, 1) and (3, 3) in validate, validate  # the API's replicas, as the test scaled them
    backlog = [s["backlog"] for s in samples if s["stage"] == "pipeline"]
    assert any(backlog) and backlog[-1] == 0, backlog  # the deployed groups' backlog rose and drained
