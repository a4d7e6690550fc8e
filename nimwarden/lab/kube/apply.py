"""Apply manifests to the lab's API server: every kind, in an order a cluster accepts.

What ``kubectl apply`` would do for the lab, in a few REST calls: the kinds' REST paths come
from the server's own discovery (``/api/v1``, ``/apis/<group>/<version>``), so any built-in kind
and any kind whose CRD is installed applies, and a kind the server does not serve is one line
naming the file and what to add. CustomResourceDefinitions go first (and are waited for until
Established), then Namespaces, then objects without owners, then the objects they own — whose
``ownerReferences`` get the owners' real UIDs, as an operator's would (a made-up UID would have
the garbage collector delete the dependent). An object that exists is merge-patched; a
``status`` in the manifest is written through the ``status`` subresource where the kind has one
(a controller's job in a real cluster). Transient refusals (a namespace's ``default``
ServiceAccount not created yet) are retried within the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nimwarden.lab.kube.rest import Api

CRD_DIR = Path(__file__).resolve().parent / "crds"
WORKLOADS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
RETRYABLE = ("serviceaccount", "service account", "retry after", "not found", "is being terminated", "the server is currently unable", "try again")


class ApplyError(RuntimeError):
    """An object could not be applied; the message is one line naming the file and the object."""


@dataclass
class Doc:
    file: str
    body: dict

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))

    @property
    def ref(self) -> str:
        ns = (self.body.get("metadata") or {}).get("namespace")
        return f"{self.kind}/{ns}/{self.name}" if ns else f"{self.kind}/{self.name}"


def load_documents(paths: Iterable[str | Path]) -> list[Doc]:
    """Every object in the YAML files (folders: ``*.yaml``/``*.yml``, recursively, sorted); Lists unwrapped."""
    docs: list[Doc] = []
    for raw in paths:
        p = Path(raw)
        files = sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml")) if p.is_dir() else [p]
        for f in files:
            try:
                loaded = list(yaml.safe_load_all(f.read_text(encoding="utf-8")))
            except (OSError, yaml.YAMLError) as exc:
                raise ApplyError(f"{f}: cannot read: {' '.join(str(exc).split())[:200]}") from None
            for d in loaded:
                if not isinstance(d, dict) or not d:
                    continue
                items = d.get("items") if str(d.get("kind", "")).endswith("List") else None
                for item in (items if isinstance(items, list) else [d]):
                    if isinstance(item, dict) and item.get("kind") and item.get("apiVersion"):
                        docs.append(Doc(str(f), item))
    return docs


@dataclass
class Applied:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    seconds: float = 0.0
    docs: list[Doc] = field(default_factory=list)


class Applier:
    def __init__(self, api: Api, default_namespace: str = "default"):
        self.api = api
        self.default_namespace = default_namespace
        self._paths: dict[tuple[str, str], tuple[str, bool, bool]] = {}  # (apiVersion, kind) -> (plural, namespaced, has status)

    # -- discovery -------------------------------------------------------------------------------
    def discover(self, group_versions: Iterable[str] | None = None) -> None:
        if group_versions is None:
            status, groups = self.api.call("GET", "/apis")
            if status != 200:
                raise ApplyError(f"GET /apis: HTTP {status}: {groups.get('message', '')}")
            group_versions = ["v1", *(v["groupVersion"] for g in groups.get("groups") or () for v in g.get("versions") or ())]
        for gv in group_versions:
            status, body = self.api.call("GET", "/api/v1" if gv == "v1" else f"/apis/{gv}")
            if status != 200:
                continue
            names = {r["name"] for r in body.get("resources") or ()}
            for r in body.get("resources") or ():
                if "/" not in r["name"]:
                    self._paths[(gv, r["kind"])] = (r["name"], bool(r.get("namespaced")), f"{r['name']}/status" in names)

    def path(self, doc: Doc, name: str | None = None) -> str:
        key = (doc.api_version, doc.kind)
        if key not in self._paths:
            self.discover([doc.api_version])
        if key not in self._paths:
            raise ApplyError(f"{doc.file}: {doc.ref}: the API server does not serve {doc.api_version} {doc.kind} "
                             "(a custom kind needs its CRD in nimwarden/lab/kube/crds/)")
        plural, namespaced, _ = self._paths[key]
        base = "/api/v1" if doc.api_version == "v1" else f"/apis/{doc.api_version}"
        meta = doc.body.setdefault("metadata", {})
        if namespaced:
            meta.setdefault("namespace", self.default_namespace)
            base += f"/namespaces/{meta['namespace']}"
        else:
            meta.pop("namespace", None)
        return f"{base}/{plural}" + (f"/{name}" if name else "")

    def has_status(self, doc: Doc) -> bool:
        return self._paths.get((doc.api_version, doc.kind), ("", False, False))[2]

    # -- one object --------------------------------------------------------------------------------
    def _owners(self, doc: Doc) -> None:
        refs = (doc.body.get("metadata") or {}).get("ownerReferences") or []
        ns = (doc.body.get("metadata") or {}).get("namespace") or self.default_namespace
        for ref in refs:
            owner = Doc(doc.file, {"apiVersion": ref.get("apiVersion", ""), "kind": ref.get("kind", ""),
                                   "metadata": {"name": ref.get("name", ""), "namespace": ns}})
            status, body = self.api.call("GET", self.path(owner, owner.name))
            if status != 200:
                raise ApplyError(f"{doc.file}: {doc.ref}: its owner {owner.kind}/{owner.name} is not in the cluster "
                                 f"(HTTP {status}); the garbage collector would delete it")
            ref["uid"] = body["metadata"]["uid"]

    def apply_one(self, doc: Doc, result: Applied) -> None:
        body = {k: v for k, v in doc.body.items() if k != "status"}
        self._owners(Doc(doc.file, body))
        status, answer = self.api.call("POST", self.path(Doc(doc.file, body)), body)
        if status == 409:
            status, answer = self.api.call("PATCH", self.path(doc, doc.name), body, content_type="application/merge-patch+json")
            if status == 200:
                result.updated.append(doc.ref)
        elif status == 201:
            result.created.append(doc.ref)
        if status not in (200, 201):
            raise ApplyError(f"{doc.file}: {doc.ref}: HTTP {status}: {' '.join(str(answer.get('message', '')).split())[:300]}")
        if doc.body.get("status") and self.has_status(doc):
            s, a = self.api.call("PATCH", self.path(doc, doc.name) + "/status", {"status": doc.body["status"]},
                                 content_type="application/merge-patch+json")
            if s != 200:
                raise ApplyError(f"{doc.file}: {doc.ref} status: HTTP {s}: {a.get('message', '')}")

    def wait_established(self, names: list[str], deadline: float) -> None:
        for name in names:
            while True:
                status, body = self.api.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                conds = {c.get("type"): c.get("status") for c in (body.get("status") or {}).get("conditions") or ()}
                if status == 200 and conds.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise ApplyError(f"CustomResourceDefinition {name} not Established in time: {conds}")
                time.sleep(0.1)

    # -- many -------------------------------------------------------------------------------------
    def apply(self, docs: list[Doc], timeout_s: float = 60.0) -> Applied:
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        result = Applied()
        crds = [d for d in docs if d.kind == "CustomResourceDefinition"]
        for d in crds:
            self.apply_one(d, result)
        if crds:
            self.wait_established([d.name for d in crds], deadline)
            self.discover(sorted({f"{d.body['spec']['group']}/{v['name']}" for d in crds for v in d.body["spec"].get("versions") or ()}))
        rest = [d for d in docs if d.kind != "CustomResourceDefinition"]
        owned = [d for d in rest if (d.body.get("metadata") or {}).get("ownerReferences")]
        workloads = [d for d in rest if d.kind in WORKLOADS and d not in owned]
        first = [d for d in rest if d.kind == "Namespace"]
        self._apply_all(first + [d for d in rest if d not in first and d not in owned and d not in workloads], deadline, result)
        # Claims bound before the pods that mount them exist: a real scheduler that saw them unbound
        # backs the pod off for up to a minute.
        self.wait_bound([d for d in rest if d.kind == "PersistentVolumeClaim"], deadline)
        self._apply_all(workloads + owned, deadline, result)
        result.seconds = time.monotonic() - t0
        return result

    def wait_bound(self, claims: list[Doc], deadline: float) -> None:
        for d in claims:
            while True:
                status, body = self.api.call("GET", self.path(d, d.name))
                phase = (body.get("status") or {}).get("phase")
                if status == 200 and phase == "Bound":
                    break
                if time.monotonic() > deadline:
                    raise ApplyError(f"{d.file}: {d.ref}: not Bound in time (phase {phase}); a workload mounting it would stay Pending")
                time.sleep(0.1)

    def _apply_all(self, docs: list[Doc], deadline: float, result: Applied) -> None:
        pending = docs
        while pending:
            again = []
            for d in pending:
                try:
                    self.apply_one(d, result)
                except ApplyError as exc:
                    if time.monotonic() > deadline or not any(w in str(exc).lower() for w in RETRYABLE):
                        raise
                    again.append(d)
            pending = again
            if pending:
                time.sleep(0.3)


def wait_rollouts(api: Api, docs: list[Doc], timeout_s: float = 30.0) -> list[str]:
    """Until every Deployment / StatefulSet / DaemonSet in ``docs`` has its replicas ready; returns those that did not
    in time, each with the reason its controller or the scheduler gave (none: all ready)."""
    applier = Applier(api)
    applier.discover(["apps/v1"])
    pending = [d for d in docs if d.kind in ("Deployment", "StatefulSet", "DaemonSet")]
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        still = []
        for d in pending:
            status, body = api.call("GET", applier.path(d, d.name))
            st = body.get("status") or {}
            want = st.get("desiredNumberScheduled") if d.kind == "DaemonSet" else (body.get("spec") or {}).get("replicas", 1)
            ready = st.get("numberReady") if d.kind == "DaemonSet" else st.get("readyReplicas")
            if status != 200 or (ready or 0) < (want if want is not None else 1) or st.get("observedGeneration", 0) < body["metadata"].get("generation", 1):
                still.append(d)
        pending = still
        if pending:
            time.sleep(0.2)
    out = []
    for d in pending:
        ns = (d.body.get("metadata") or {}).get("namespace", "default")
        _, events = api.call("GET", f"/api/v1/namespaces/{ns}/events")
        why = [e.get("message", "") for e in events.get("items") or () if e.get("type") == "Warning"]
        out.append(f"{d.ref}" + (f" ({' '.join(why[-1].split())[:200]})" if why else ""))
    return out


def crd_documents() -> list[Doc]:
    """The lab's own minimal CustomResourceDefinitions (nimwarden/lab/kube/crds/)."""
    return load_documents([CRD_DIR])


def apply_paths(api: Api, paths: Iterable[str | Path], with_crds: bool = True, timeout_s: float = 60.0,
                default_namespace: str = "default") -> Applied:
    docs = (crd_documents() if with_crds else []) + load_documents(paths)
    applier = Applier(api, default_namespace)
    applier.discover()
    result = applier.apply(docs, timeout_s)
    result.docs = docs
    return result


def delete_objects(api: Api, docs: list[Doc]) -> list[str]:
    """Delete what ``docs`` name (namespaces last); what was already gone is not an error. Returns the refs deleted."""
    applier = Applier(api)
    applier.discover()
    gone = []
    for d in sorted(docs, key=lambda d: d.kind == "Namespace"):
        status, _ = api.call("DELETE", applier.path(d, d.name), {"kind": "DeleteOptions", "apiVersion": "v1",
                                                               "propagationPolicy": "Background"})
        if status in (200, 202):
            gone.append(d.ref)
    return gone


def as_doc(body: dict[str, Any], file: str = "(test)") -> Doc:
    return Doc(file, body)
