"""Deploy the rendered OpenFaaS set: functions through the gateway REST API, the rest with the kubernetes client.

Everything is checked before anything changes: the gateway answers and accepts the credentials,
the kube context works and serves ScaledObjects, the function namespace exists (the OpenFaaS install
makes it), every object passes a server-side dry run where its namespace exists, Kafka answers and no
existing topic has too few partitions. Then the missing topics are created, the functions deployed and
the manifests applied, the connectors' namespace first (created when missing). Each
failure is one ApplyError naming the cause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pipeline.kafka import TopicError, TopicPlan
from pipeline.kube import ApplyError, Applier, dynamic_client
from pipeline.openfaas.render import namespaces
from pipeline.settings import Environment

__all__ = ["ApplyError", "GatewayCredentials", "apply"]


@dataclass(frozen=True)
class GatewayCredentials:
    user: str
    password: str

    @classmethod
    def resolve(cls, env: Environment, password_file: Path | None = None) -> GatewayCredentials:
        """OPENFAAS_USER (default admin) and OPENFAAS_PASSWORD, or the password in a secret file."""
        password = env.gateway_password
        if password_file is not None:
            try:
                password = password_file.read_text().strip()
            except OSError as exc:
                raise ApplyError(f"cannot read the gateway password file {password_file}: {exc.strerror}") from None
        if not password:
            raise ApplyError("no gateway password: set OPENFAAS_PASSWORD or pass --password-file")
        return cls(env.gateway_user or "admin", password)


def function_deployment(name: str, fn: Mapping[str, Any]) -> dict[str, Any]:
    """stack.yml function → the gateway's FunctionDeployment body (openfaas-keda.md §2)."""
    return {
        "service": name, "image": fn["image"], "namespace": fn.get("namespace", ""),
        "envVars": dict(fn.get("environment", {})), "labels": dict(fn.get("labels", {})),
        "annotations": dict(fn.get("annotations", {})), "limits": dict(fn.get("limits", {})),
        "requests": dict(fn.get("requests", {})), "readOnlyRootFilesystem": bool(fn.get("readonly_root_filesystem")),
        "constraints": list(fn.get("constraints", [])), "secrets": list(fn.get("secrets", [])),
    }


class GatewayClient:
    def __init__(self, url: str, credentials: GatewayCredentials, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(auth=(credentials.user, credentials.password), timeout=timeout_s)

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._http.request(method, self.url + path, **kw)
        except httpx.HTTPError as exc:
            raise ApplyError(f"cannot reach the OpenFaaS gateway at {self.url}: {exc}") from None

    def check(self) -> None:
        r = self._request("GET", "/system/functions")
        if r.status_code == 401:
            raise ApplyError(f"the gateway at {self.url} rejected the credentials (401): check OPENFAAS_USER/PASSWORD")
        if r.status_code != 200:
            raise ApplyError(f"the gateway at {self.url} answered {r.status_code} to GET /system/functions")

    def deploy(self, body: Mapping[str, Any]) -> str:
        """POST a new function, PUT an existing one (which resets replicas to scale.min, §3.3)."""
        name = body["service"]
        exists = self._request("GET", f"/system/function/{name}", params={"namespace": body["namespace"]})
        method = "PUT" if exists.status_code == 200 else "POST"
        r = self._request(method, "/system/functions", json=dict(body))
        if r.status_code not in (200, 201, 202):
            raise ApplyError(f"{method} /system/functions for {name} failed: {r.status_code} {r.text[:300]}")
        return f"{'updated' if method == 'PUT' else 'deployed'} function/{name}"

    def close(self) -> None:
        self._http.close()


def apply(stack: Mapping[str, Any], manifests: Sequence[dict[str, Any]], gateway: str, credentials: GatewayCredentials,
          context: str | None = None, kubeconfig: Path | None = None, topics: TopicPlan | None = None) -> list[str]:
    """Check everything, create the missing topics, deploy the functions, then server-side apply the manifests;
    returns what was done."""
    # A function without a namespace goes to the gateway's own, openfaas-fn unless the install says otherwise.
    function_namespaces = {fn.get("namespace") or "openfaas-fn" for fn in stack["functions"].values()}
    client = GatewayClient(gateway, credentials)
    try:
        client.check()
        applier = Applier(dynamic_client(context, kubeconfig),
                          namespaces(list(manifests), function_namespaces) + list(manifests),
                          "install KEDA (ScaledObject) first", "install OpenFaaS first (it makes its function namespace)")
        try:
            made = topics.create() if topics else []
        except TopicError as exc:
            raise ApplyError(str(exc)) from None
        done = made + [client.deploy(function_deployment(name, fn)) for name, fn in stack["functions"].items()]
    finally:
        client.close()
    return done + [f"applied {what}" for what in applier.apply()]
