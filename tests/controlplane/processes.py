"""A real Kubernetes control plane on 127.0.0.1 for the cluster tests: etcd, kube-apiserver,
kube-controller-manager and KWOK (a fake node whose pods turn Ready), built from the pinned Go modules
in controlplane/ by `make controlplane`.

Each process runs in its own process group with its log in the run folder; `stop()` kills the groups.
Readiness is awaited by polling health endpoints, never by sleeping a guessed time.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from pipeline.broker.process import free_port, free_ports

REPO = Path(__file__).resolve().parents[2]
TOKEN = "lagduel-test-admin-token"
CONTEXT = "lagduel-controlplane"
NODE = "kwok-node-0"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kwok", "kwok-stages.yaml")


class ControlPlaneError(RuntimeError):
    pass


def kubernetes_version() -> str:
    for line in (REPO / "controlplane" / "kube" / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "k8s.io/kubernetes":
            return parts[1]
    raise ControlPlaneError("controlplane/kube/go.mod requires no k8s.io/kubernetes")


def binary_dir() -> Path:
    """Where controlplane/build.sh puts the binaries (the user cache, once per machine)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "lagduel" / "controlplane" / kubernetes_version()


def built() -> bool:
    return all((binary_dir() / b).is_file() for b in BINARIES)


def build() -> Path:
    """`make controlplane` unless every binary is there already; returns their folder."""
    where = binary_dir()
    if built():
        return where
    done = subprocess.run(["make", "-s", "controlplane"], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise ControlPlaneError(f"make controlplane failed:\n{done.stderr[-3000:]}")
    return where


def await_condition(what: str, check: Callable[[], bool], timeout_s: float,
                    alive: Callable[[], str | None] = lambda: None) -> None:
    """Poll `check` until true; fail early when `alive` names a process that exited."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        dead = alive()
        if dead:
            raise ControlPlaneError(f"{dead} exited while waiting for {what}")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    raise ControlPlaneError(f"timed out after {timeout_s:g}s waiting for {what}")


def _die_with_parent() -> None:
    """Linux: SIGKILL the child when the test process dies without its teardown (killed, crashed)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class ControlPlane:
    bin: Path
    run: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    server: str = ""
    kubeconfig: Path = field(init=False)
    _http: httpx.Client | None = None

    def __post_init__(self) -> None:
        self.kubeconfig = self.run / "kubeconfig"

    # -- processes ------------------------------------------------------------------------------
    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.run / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen([str(self.bin / name), *args], stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=_die_with_parent)
        log.close()

    def _dead(self) -> str | None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                tail = (self.run / f"{name}.log").read_text(errors="replace")[-1500:]
                return f"{name} (exit {p.returncode}; log {self.run / name}.log):\n{tail}"
        return None

    def stop(self) -> None:
        """Kill every process group: their state is the run folder's, thrown away, so no graceful shutdown."""
        if self._http is not None:
            self._http.close()
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)

    # -- start ------------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        etcd_port, peer_port, api_port = free_ports(3)  # distinct: bound together
        etcd = f"http://127.0.0.1:{etcd_port}"
        self._spawn("etcd", "--data-dir", str(self.run / "etcd"), "--listen-client-urls", etcd,
                    "--advertise-client-urls", etcd, "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                    "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
                    "--unsafe-no-fsync", "--log-level", "warn")
        await_condition("etcd /health", lambda: httpx.get(f"{etcd}/health", timeout=1).status_code == 200, 30,
                        self._dead)

        key, pub = self.run / "sa.key", self.run / "sa.pub"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                       capture_output=True)
        (self.run / "tokens.csv").write_text(f'{TOKEN},lagduel-admin,lagduel-admin,"system:masters"\n')
        self.server = f"https://127.0.0.1:{api_port}"
        # Pod Security admission is on by default, at its defaults (privileged unless a namespace says otherwise).
        self._spawn("kube-apiserver", "--etcd-servers", etcd, "--bind-address", "127.0.0.1",
                    "--advertise-address", "127.0.0.1", "--secure-port", str(api_port),
                    "--cert-dir", str(self.run / "certs"), "--token-auth-file", str(self.run / "tokens.csv"),
                    "--authorization-mode", "Node,RBAC", "--service-cluster-ip-range", "10.96.0.0/16",
                    "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                    "--service-account-key-file", str(pub), "--service-account-signing-key-file", str(key),
                    "--enable-priority-and-fairness=false", "--profiling=false", "--v=0")
        self._write_kubeconfig()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        await_condition("kube-apiserver /readyz",
                        lambda: httpx.get(f"{self.server}/readyz", headers=headers, verify=False,
                                          timeout=2).status_code == 200, 120, self._dead)

        # Only the controllers the tests lean on: Deployments → ReplicaSets → Pods, service accounts, namespaces.
        self._spawn("kube-controller-manager", "--kubeconfig", str(self.kubeconfig), "--leader-elect=false",
                    "--bind-address", "127.0.0.1", "--secure-port", str(free_port()),
                    "--cert-dir", str(self.run / "controller-manager-certs"),
                    "--controllers", "deployment-controller,replicaset-controller,serviceaccount-controller,"
                                     "serviceaccount-token-controller,namespace-controller,garbage-collector-controller",
                    "--service-account-private-key-file", str(key), "--root-ca-file",
                    str(self.run / "certs" / "apiserver.crt"), "--use-service-account-credentials=false",
                    "--profiling=false", "--v=0")
        self._spawn("kwok", "--kubeconfig", str(self.kubeconfig), "--config", str(self.bin / "kwok-stages.yaml"),
                    "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
                    "--server-address", f"127.0.0.1:{free_port()}")
        await_condition("kube-controller-manager /healthz", self._controller_manager_healthy, 60, self._dead)
        self._add_node()

    def _controller_manager_healthy(self) -> bool:
        # Its serving port is HTTPS with a self-signed cert; /healthz is open to anyone by default.
        args = self.procs["kube-controller-manager"].args
        port = args[args.index("--secure-port") + 1]  # type: ignore[union-attr]
        return httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=1).status_code == 200

    def _write_kubeconfig(self) -> None:
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
            "clusters": [{"name": CONTEXT, "cluster": {"server": self.server, "insecure-skip-tls-verify": True}}],
            "users": [{"name": CONTEXT, "user": {"token": TOKEN}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}],
        }))

    def _add_node(self) -> None:
        """A fake node KWOK manages: pods bound to it (spec.nodeName) become Running and Ready."""
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": NODE, "annotations": {"kwok.x-k8s.io/node": "fake"},
                             "labels": {"kubernetes.io/hostname": NODE, "type": "kwok"}},
                "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
                           "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"}}}
        r = self.http().post("/api/v1/nodes", json=node)
        if r.status_code not in (201, 409):
            raise ControlPlaneError(f"creating the fake node failed: {r.status_code} {r.text[:300]}")

        def ready() -> bool:
            conds = self.http().get(f"/api/v1/nodes/{NODE}").json().get("status", {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
        await_condition(f"KWOK to make node {NODE} Ready", ready, 60, self._dead)

    def http(self) -> httpx.Client:
        """A client of the API server, authenticated as the admin (system:masters)."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.server, headers={"Authorization": f"Bearer {TOKEN}"},
                                      verify=False, timeout=10)
        return self._http

    def version(self) -> str:
        return self.http().get("/version").json()["gitVersion"]


def go_available() -> bool:
    return shutil.which("go") is not None
