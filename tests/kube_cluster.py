"""The real Kubernetes API server for the harness's own tests (nimwarden.lab.kube), and what tests do with it.

One control plane per test session (the ``kube_cluster`` fixture in tests/conftest.py): etcd,
kube-apiserver, kube-controller-manager and kube-scheduler 1.20.2 with the lab node, the lab's CRDs
installed and nothing else. A module applies what it needs (:meth:`KubeCluster.applied`) and the
objects are deleted, namespaces and all, when it is done. Its audit log
(:meth:`KubeCluster.requests`) is the server's own record of what a client asked — how tests
prove that discovery only gets and lists, or that a ServiceAccount was never refused.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from nimwarden.lab import kube
from nimwarden.lab.kube import control_plane
from nimwarden.lab.kube.apply import Applier, Doc, load_documents

AUDIT_SA = ("nimwarden", "nimwarden-audit")  # deploy/k8s/serviceaccount.yaml
DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "k8s"


class KubeCluster:
    def __init__(self, directory: Path, state: dict):
        self.directory = Path(directory)
        self.state = state
        self.kubeconfig = Path(state["kubeconfig"])
        self.server = state["server"]

    # -- clients ------------------------------------------------------------------------------
    def api(self):
        return kube.admin_api(self.directory)

    def call(self, method: str, path: str, body: Any = None, **kw) -> tuple[int, dict]:
        api = self.api()
        try:
            return api.call(method, path, body, **kw)
        finally:
            api.close()

    def configuration(self, token: str | None = None):
        """A ``kubernetes.client.Configuration``: the admin's client certificate, or a bearer token."""
        from kubernetes import client

        from nimwarden.k8s.live import client_configuration

        if token is None:
            return client_configuration(self.kubeconfig)
        cfg = client.Configuration()
        cfg.host = self.server
        cfg.ssl_ca_cert = self.state["pki"]["ca"]
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        cfg.retries = 0
        return cfg

    def token_kubeconfig(self, path: Path, token: str, user: str = "sa") -> Path:
        ca = base64.b64encode(Path(self.state["pki"]["ca"]).read_bytes()).decode()
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "nimwarden-lab",
            "clusters": [{"name": "nimwarden-lab", "cluster": {"server": self.server, "certificate-authority-data": ca}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "nimwarden-lab", "context": {"cluster": "nimwarden-lab", "user": user}}]}))
        path.chmod(0o600)
        return path

    def service_account_token(self, namespace: str, name: str, timeout_s: float = 30.0) -> str:
        """The token the controller manager's tokens controller wrote for the ServiceAccount (1.20: a Secret)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status, sa = self.call("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
            for ref in (sa.get("secrets") or ()) if status == 200 else ():
                s, secret = self.call("GET", f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}")
                if s == 200 and (secret.get("data") or {}).get("token"):
                    return base64.b64decode(secret["data"]["token"]).decode()
            if time.monotonic() > deadline:
                raise AssertionError(f"no token Secret for ServiceAccount {namespace}/{name} within {timeout_s:g} s")
            time.sleep(0.2)

    # -- objects --------------------------------------------------------------------------------
    def apply(self, docs: Iterable[Doc], timeout_s: float = 60.0):
        api = self.api()
        try:
            applier = Applier(api)
            applier.discover()
            return applier.apply(list(docs), timeout_s)
        finally:
            api.close()

    def delete(self, docs: Iterable[Doc], timeout_s: float = 90.0) -> None:
        """Delete the objects (namespaces last) and wait until they are gone, namespaces included."""
        docs = list(docs)
        api = self.api()
        try:
            applier = Applier(api)
            applier.discover()
            paths = []
            for d in sorted(docs, key=lambda d: d.kind == "Namespace"):
                path = applier.path(d, d.name)
                api.call("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
                paths.append(path)
            deadline = time.monotonic() + timeout_s
            for path in paths:
                while api.call("GET", path)[0] != 404:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{path} still there {timeout_s:g} s after its deletion")
                    time.sleep(0.2)
        finally:
            api.close()

    @contextmanager
    def applied(self, *sources: Path | dict | Doc) -> Iterator[list[Doc]]:
        """Apply files/folders/objects; delete them (and wait for it) afterwards."""
        docs: list[Doc] = []
        for s in sources:
            if isinstance(s, Doc):
                docs.append(s)
            elif isinstance(s, dict):
                docs.append(Doc("(test)", s))
            else:
                docs.extend(load_documents([s]))
        try:
            self.apply(docs)
            yield docs
        finally:
            self.delete(docs)

    def place(self, **kw) -> None:
        kube.place(self.directory, **kw)

    # -- what clients asked -----------------------------------------------------------------------
    def mark(self) -> int:
        """A position in the audit log: :meth:`requests` after it."""
        return len(control_plane.audit_events(self.directory))

    def requests(self, user: str | None = None, since: int = 0) -> list[dict]:
        """Audit events since ``mark`` (all users, or ``user``): verb, requestURI, objectRef, responseStatus.code."""
        time.sleep(0.2)  # the log backend writes as it answers; let the last lines land
        events = control_plane.audit_events(self.directory)[since:]
        return [e for e in events if user is None or (e.get("user") or {}).get("username") == user]


def sa_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def refused(events: list[dict]) -> list[str]:
    return [f"{e['verb']} {e['requestURI']}" for e in events if (e.get("responseStatus") or {}).get("code") == 403]


def read_role(drop: tuple[str, ...] = ()) -> list[Doc]:
    """deploy/k8s/rbac-read.yaml (ClusterRole + binding), without the resources named in ``drop``."""
    docs = load_documents([DEPLOY / "rbac-read.yaml"])
    for d in docs:
        if d.kind == "ClusterRole":
            rules = [dict(r, resources=[x for x in r["resources"] if x not in drop]) for r in d.body["rules"]]
            d.body["rules"] = [r for r in rules if r["resources"]]
    return docs
