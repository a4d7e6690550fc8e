"""Short-lived probe pods: run the reach agent from a source's position inside a cluster.

This is the only part of nimwarden that writes to a cluster, and it does so
only when the profile asks for it (``kubernetes.options.network_policy.probe``)
and the opt-in RBAC (``deploy/k8s/opt-in/rbac-netpol-probes.yaml``) is applied
in each source namespace. For one position it:

1. creates an *anchor* ConfigMap ``nimwarden-reach-<run>-<n>`` in the source's
   namespace;
2. creates a pod there carrying the source's labels (so every NetworkPolicy
   selects it exactly as it selects the source) plus nimwarden's own labels, whose
   single container runs the standard-library agent (``reach_agent.py``, passed
   inline to ``python3 -I -S -c``, so any image with a Python 3 works) with the
   job as an argument;
3. waits for it to finish, reads its log (the agent's JSON answer), and
4. deletes the pod and the anchor, whatever happened.

Why the pod is shaped the way it is:

- **Not adoptable.** A pod with a StatefulSet's, DaemonSet's or ReplicaSet's
  labels and no controller is *adopted* by that controller, which may then
  delete a real replica to restore its count. The probe pod's controller
  ownerReference points at the anchor ConfigMap, so no workload controller
  claims it — and if the harness dies, deleting the anchor (``nimwarden
  cleanup``) garbage-collects the pod.
- **Never serves traffic.** Carrying a Service's selector labels would put the
  pod into that Service's endpoints once Ready. A readiness gate nobody sets
  (``nimwarden.dev/never-ready``) keeps it NotReady for its whole life.
- **Bounded.** ``activeDeadlineSeconds`` makes the kubelet kill it even if the
  harness is gone; ``restartPolicy: Never``; no service-account token, no
  service links; Pod Security *restricted* (non-root, read-only root, no
  capabilities, RuntimeDefault seccomp), so namespaces that enforce restricted
  admit it; small CPU/memory limits.
- **Labelled for cleanup.** ``nimwarden.dev/role: reach-probe`` and
  ``nimwarden.dev/run: <run id>`` on everything created, and
  ``app.kubernetes.io/managed-by: nimwarden`` unless the source has a
  ``managed-by`` of its own (the pod keeps the source's: a policy may select on it).

Every API call has a timeout; a 403 names the missing permission; a pod that
cannot start (image pull, admission, scheduling) or does not finish is an error
for its flows, never a result.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from nimwarden.schema import Labels, Section, Text
from nimwarden.schema.messages import first_problem

MANAGED_BY = ("app.kubernetes.io/managed-by", "nimwarden")
ROLE = ("nimwarden.dev/role", "reach-probe")
RUN_LABEL = "nimwarden.dev/run"
READINESS_GATE = "nimwarden.dev/never-ready"
CLEANUP_SELECTOR = f"{ROLE[0]}={ROLE[1]}"
AGENT_SOURCE = Path(__file__).resolve().parent.parent / "net" / "reach_agent.py"
RBAC_FILE = "deploy/k8s/opt-in/rbac-netpol-probes.yaml"
# Labels that must not be copied: they tie a pod to one controller revision or one pod identity.
NOT_COPIED = ("pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name",
              "apps.kubernetes.io/pod-index", "batch.kubernetes.io/controller-uid", "controller-uid",
              "batch.kubernetes.io/job-name", "job-name", "pod-template-generation")


class ProbePodError(Exception):
    """The probe pod could not run or answer; the message says why (flows become ``error``)."""


@dataclass(frozen=True)
class ProbePodOptions:
    """``kubernetes.options.network_policy.probe`` of a target profile."""

    image: str
    positions: tuple[tuple[str, Mapping[str, str]], ...] = ()  # declared (namespace, labels); () = derive from the model
    max_positions: int = 6
    max_parallel: int = 3
    start_timeout_s: float = 90.0  # scheduling and image pull
    connect_timeout_s: float = 1.0
    settle_s: float = 2.0  # time for the CNI to program policy for the new pod before the first connect
    image_pull_policy: str = "IfNotPresent"
    cpu: str = "100m"
    memory: str = "64Mi"


class ProbePosition(Section):
    namespace: Text
    labels: Labels = {}


def _between(lo: float, hi: float, integer: bool = False) -> Any:
    return Annotated[int if integer else float, Field(ge=lo, le=hi)]


class ProbePodSection(Section):
    """The profile's schema of ``kubernetes.options.network_policy.probe`` (what ProbePodOptions is read from)."""

    image: Annotated[str, Field(pattern=r"\S", description="any image with python3; pin it by digest")]
    positions: list[ProbePosition] = Field([], description="source positions; default: derived from the policy model")
    max_positions: _between(1, 50, True) = 6
    max_parallel: _between(1, 20, True) = 3
    start_timeout_s: _between(1, 900) = 90.0
    connect_timeout_s: _between(0.05, 30) = 1.0
    settle_s: _between(0, 60) = 2.0
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    cpu: Text = "100m"
    memory: Text = "64Mi"


def probe_options_from_mapping(raw: Any) -> ProbePodOptions:
    """Parse the profile section; ValueError names the field (``network_policy.probe.<field>``)."""
    try:
        s = ProbePodSection.model_validate(raw)
    except ValidationError as exc:
        field, why = first_problem(exc, ("network_policy", "probe"))
        raise ValueError(f"{field}: {why}") from None
    return ProbePodOptions(
        image=s.image.strip(),
        positions=tuple((p.namespace, dict(p.labels)) for p in s.positions),
        max_positions=s.max_positions, max_parallel=s.max_parallel, start_timeout_s=float(s.start_timeout_s),
        connect_timeout_s=float(s.connect_timeout_s), settle_s=float(s.settle_s), image_pull_policy=s.image_pull_policy,
        cpu=s.cpu, memory=s.memory,
    )


def new_run_id() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def copied_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The source's labels a probe pod carries: all but controller-identity ones, and never nimwarden's own."""
    return {k: v for k, v in labels.items() if k not in NOT_COPIED and not k.startswith("nimwarden.dev/")}


def probe_labels(source_labels: Mapping[str, str], run_id: str) -> dict[str, str]:
    """Every label of a probe pod: the source's (copied) plus nimwarden's own, which never overwrite the source's.

    ``app.kubernetes.io/managed-by: nimwarden`` is added only when the source has no
    ``managed-by`` of its own: a policy may select on ``managed-by: Helm``. Cleanup
    selects on ``nimwarden.dev/role``, which is always there.
    """
    out = copied_labels(source_labels)
    out.setdefault(*MANAGED_BY)
    out[ROLE[0]] = ROLE[1]
    out[RUN_LABEL] = run_id
    return out


def pod_manifest(name: str, namespace: str, labels: Mapping[str, str], job: Mapping[str, Any], settings: ProbePodOptions,
                 run_id: str, anchor_uid: str, deadline_s: float) -> dict:
    """The probe pod (see the module docstring for why each field is there)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": probe_labels(labels, run_id),
            "annotations": {"nimwarden.dev/purpose": "network-policy reachability probe; deleted by the harness when done"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": anchor_uid, "controller": True}],
        },
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": max(30, int(deadline_s) + 30),
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "readinessGates": [{"conditionType": READINESS_GATE}],
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "agent",
                "image": settings.image,
                "imagePullPolicy": settings.image_pull_policy,
                "terminationMessagePolicy": "FallbackToLogsOnError",  # a crash's last lines reach the finding
                "command": ["python3", "-I", "-S", "-c", AGENT_SOURCE.read_text(encoding="utf-8"), "probe", "--job", json.dumps(job, sort_keys=True)],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True},
                "resources": {"limits": {"cpu": settings.cpu, "memory": settings.memory},
                              "requests": {"cpu": settings.cpu, "memory": settings.memory}},
            }],
        },
    }


def anchor_manifest(name: str, namespace: str, run_id: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {MANAGED_BY[0]: MANAGED_BY[1], ROLE[0]: ROLE[1], RUN_LABEL: run_id}},
        "data": {"purpose": "owner of nimwarden's reachability probe pod of the same name; delete it to delete the pod"},
    }


class PodRunner:
    """Creates, watches (by polling) and deletes probe pods through the Kubernetes REST API."""

    def __init__(self, configuration: Any, settings: ProbePodOptions, run_id: str | None = None, api_timeout_s: float = 10.0,
                 poll_s: float = 0.5):
        from nimwarden.net.kube_api import ApiTransport

        self.settings = settings
        self.run_id = run_id or new_run_id()
        self.timeout = (min(api_timeout_s, 5.0), api_timeout_s)
        self.transport = ApiTransport(configuration, self.timeout)  # each request bounded as a whole
        self.poll_s = poll_s
        self._n = 0
        self._lock = threading.Lock()
        self.created: list[str] = []  # "ns/kind/name" of everything created, for evidence
        self.leftovers: list[str] = []  # what could not be deleted (nimwarden cleanup removes it)

    def close(self) -> None:
        self.transport.close()

    # -- REST ----------------------------------------------------------------------
    def _call(self, method: str, path: str, query: list[tuple[str, Any]] | None = None, body: Any = None) -> tuple[int, bytes]:
        headers = {"Accept": "application/json, */*"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        from nimwarden.net.kube_api import ApiCallError

        try:
            return self.transport.call(method, path, query, headers, body)
        except ApiCallError as exc:  # no whole answer in time, refused, TLS: the API server did not answer
            raise ProbePodError(f"{method} {path}: {exc}") from None

    @staticmethod
    def _json(raw: bytes) -> dict:
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _check(self, status: int, raw: bytes, verb: str, what: str, namespace: str) -> dict:
        body = self._json(raw)
        if 200 <= status < 300:
            return body
        msg = str(body.get("message", "")) or raw[:200].decode("utf-8", "replace")
        if status == 403:
            raise ProbePodError(f"missing permission: {verb} {what} in namespace {namespace} (apply {RBAC_FILE} there): {msg}")
        raise ProbePodError(f"{verb} {what} in namespace {namespace}: HTTP {status}: {msg}")

    # -- one position ---------------------------------------------------------------
    def run(self, namespace: str, labels: Mapping[str, str], job: Mapping[str, Any], agent_deadline_s: float) -> str:
        """Run the agent in a fresh probe pod; return its stdout (the agent's JSON). Always deletes what it made."""
        with self._lock:
            self._n += 1
            name = f"nimwarden-reach-{self.run_id}-{self._n}"[:63].rstrip("-")
        job = dict(job, settle_s=self.settings.settle_s)
        deadline_s = self.settings.settle_s + agent_deadline_s
        anchor_uid = None
        pod_created = False
        try:
            st, raw = self._call("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=anchor_manifest(name, namespace, self.run_id))
            anchor_uid = str(self._check(st, raw, "create", "configmaps", namespace).get("metadata", {}).get("uid") or "")
            self.created.append(f"{namespace}/configmaps/{name}")
            if not anchor_uid:
                raise ProbePodError(f"create configmaps in namespace {namespace}: the answer carries no metadata.uid")
            manifest = pod_manifest(name, namespace, labels, job, self.settings, self.run_id, anchor_uid, deadline_s)
            st, raw = self._call("POST", f"/api/v1/namespaces/{namespace}/pods", body=manifest)
            self._check(st, raw, "create", "pods", namespace)
            pod_created = True
            self.created.append(f"{namespace}/pods/{name}")
            self._wait(namespace, name, deadline_s)
            st, raw = self._call("GET", f"/api/v1/namespaces/{namespace}/pods/{name}/log", [("container", "agent")])
            if st == 403:
                self._check(st, raw, "get", "pods/log", namespace)
            if st != 200:
                raise ProbePodError(f"get pods/log {namespace}/{name}: HTTP {st}")
            return raw.decode("utf-8", "replace")
        finally:
            if pod_created:
                self._delete(namespace, "pods", name)
            if anchor_uid is not None:
                self._delete(namespace, "configmaps", name)

    def _wait(self, namespace: str, name: str, run_deadline_s: float) -> None:
        """Until the pod has finished; ProbePodError when it cannot start, fails, or overruns."""
        started = time.monotonic()
        running_since = None
        while True:
            st, raw = self._call("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
            pod = self._check(st, raw, "get", "pods", namespace)
            status = pod.get("status") or {}
            phase = status.get("phase", "Pending")
            cstatus = next(iter(status.get("containerStatuses") or ()), {})
            state = cstatus.get("state") or {}
            if phase == "Succeeded":
                return
            if phase == "Failed":
                term = state.get("terminated") or {}
                why = term.get("reason") or status.get("reason") or "Failed"
                said = " ".join(str(term.get("message") or status.get("message") or "").split())[-300:]
                raise ProbePodError(f"probe pod {namespace}/{name} failed: {why} (exit code {term.get('exitCode', '?')}) {said}".rstrip())
            waiting = state.get("waiting") or {}
            if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"):
                raise ProbePodError(f"probe pod {namespace}/{name} cannot start: {waiting['reason']}: {waiting.get('message', '')}".rstrip(": "))
            now = time.monotonic()
            if phase == "Running" and running_since is None:
                running_since = now
            if running_since is None and now - started > self.settings.start_timeout_s:
                sched = next((c for c in status.get("conditions") or () if c.get("type") == "PodScheduled" and c.get("status") == "False"), None)
                detail = f": {sched.get('reason')}: {sched.get('message', '')}" if sched else (f": {waiting.get('reason')}" if waiting else "")
                raise ProbePodError(f"probe pod {namespace}/{name} did not start within {self.settings.start_timeout_s:g} s{detail}")
            if running_since is not None and now - running_since > run_deadline_s + 10:
                raise ProbePodError(f"probe pod {namespace}/{name} did not finish within {run_deadline_s + 10:.0f} s of starting")
            time.sleep(self.poll_s)

    def _delete(self, namespace: str, plural: str, name: str) -> bool:
        try:
            st, raw = self._call("DELETE", f"/api/v1/namespaces/{namespace}/{plural}/{name}", [("gracePeriodSeconds", 0)],
                                 body={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "propagationPolicy": "Background"})
        except ProbePodError:
            st = 0
        if st not in (200, 202, 404):
            self.leftovers.append(f"{namespace}/{plural}/{name}")
            return False
        return True

    # -- cleanup --------------------------------------------------------------------
    def cleanup(self, namespaces: list[str] | None = None) -> list[str]:
        """Delete every probe pod and anchor nimwarden left (any run), in ``namespaces`` or cluster-wide."""
        removed = []
        for plural in ("pods", "configmaps"):
            paths = [f"/api/v1/namespaces/{ns}/{plural}" for ns in namespaces] if namespaces else [f"/api/v1/{plural}"]
            for path in paths:
                st, raw = self._call("GET", path, [("labelSelector", CLEANUP_SELECTOR)])
                body = self._check(st, raw, "list", plural, path.split("/")[4] if namespaces else "(all)")
                for item in body.get("items") or ():
                    meta = item.get("metadata") or {}
                    ns, name = meta.get("namespace"), meta.get("name")
                    if ns and name and self._delete(ns, plural, name):
                        removed.append(f"{ns}/{plural}/{name}")
        return removed
