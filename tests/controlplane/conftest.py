"""Cluster tests: one real control plane per session (etcd, kube-apiserver, kube-controller-manager, KWOK),
built from controlplane/ by `make controlplane` when its binaries are missing, with the vendored Knative
and KEDA CRDs installed.

Without Go the tests skip with one line saying what to install; under CI (CI set) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controlplane.processes import REPO, ControlPlane, await_condition, build, built, go_available

CRDS = REPO / "tests" / "crds"  # vendored byte-for-byte; provenance in each folder's SOURCES.md
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def vendored_crds() -> list[dict[str, Any]]:
    """Every vendored CRD, with its conversion webhook removed (as code: the files stay byte-for-byte).

    The Kafka CRDs name a conversion webhook (kafka-webhook-eventing) that this control plane does not
    run; the apiserver would then refuse every object of those kinds. Strategy None serves each version
    as stored, which is all schema validation and server-side apply need.
    """
    out = []
    for path in sorted(CRDS.glob("*/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                doc["spec"]["conversion"] = {"strategy": "None"}
                out.append(doc)
    return out


@pytest.fixture(scope="session")
def controlplane() -> Iterator[ControlPlane]:
    if not built() and not go_available():
        message = "cluster tests need Go >= 1.25 to build the control plane (make controlplane): install Go"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    run = Path(tempfile.mkdtemp(prefix="lagduel-controlplane-"))
    cp = ControlPlane(build(), run)
    cp.start()
    try:
        install_crds(cp, vendored_crds())
        yield cp
    finally:
        cp.stop()
        shutil.rmtree(run, ignore_errors=True)


def install_crds(cp: ControlPlane, crds: list[dict[str, Any]]) -> None:
    http = cp.http()
    for crd in crds:
        r = http.post(CRD_PATH, json=crd)
        assert r.status_code in (201, 409), f"installing {crd['metadata']['name']}: {r.status_code} {r.text[:300]}"
    for crd in crds:
        await_crd(cp, crd["metadata"]["name"])


def await_crd(cp: ControlPlane, name: str) -> None:
    def established() -> bool:
        conds = cp.http().get(f"{CRD_PATH}/{name}").json().get("status", {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conds)
    await_condition(f"CRD {name} Established", established, 30)
