"""TEST DOUBLE: a replay Kubernetes API server, kept only for what a real API server cannot show here.

The live path is tested against a real Kubernetes API server (tests/kube_cluster.py: 1.20.2, the
newest Debian's registry can build, with the lab node). This double stays for three things 1.20
and a well-behaved server cannot give:

- **faults on demand**: a 5xx on every delete, an agent that never finishes
  (tests/reliability/test_fault_matrix_probes.py);
- **fields and behaviour newer than 1.20**: Pod Security admission (``pod-security.kubernetes.io/*``
  namespace labels, enforced from 1.23; 1.20 has only PodSecurityPolicy) and fields added after
  1.20, which a 1.20 server would prune;
- **recorded objects as they are**: ``load_objects`` reads a manifest fixture without a server.

It serves a fixed set of objects over the real REST paths — ``/api/v1/…`` and
``/apis/<group>/<version>/…``, list and get, namespaced and cluster-wide — with
``limit``/``continue`` pagination, a bearer token check, and a 403 ``Status`` for the
(resource, namespace) pairs a test denies. It only answers GET, with equality ``labelSelector``
on lists. It is a test double, not a Kubernetes implementation: no watch, no field selectors,
no resourceVersion semantics.

:class:`ClusterDouble` adds the writes nimwarden's probe pods make (create and
delete pods and ConfigMaps, pod logs) and a :class:`FakeKubelet` that "runs" a
created pod by starting its container command as a local process in a network
namespace the test chooses. Same caveat: TEST DOUBLE, no scheduler, no
admission, no garbage collector.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

# plural -> (group/version path prefix, kind, namespaced); the subset nimwarden reads plus one extra.
API = {}


def _register():
    from nimwarden.k8s.discovery import discovery_resources
    from nimwarden.k8s.resources import RESOURCES

    for r in (*RESOURCES, *discovery_resources()):  # discovery also reads KServe's kinds
        prefix = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
        API[(prefix, r.plural)] = (r.kind, r.namespaced, r.api_version)


_register()
TOKEN = "replay-test-token"


def load_objects(*paths: Path) -> list[dict]:
    """Raw objects from manifest files/directories (values untouched, as a real API server would hold them)."""
    out = []
    for p in paths:
        files = sorted(p.rglob("*.yaml")) if p.is_dir() else [p]
        for f in files:
            for doc in yaml.safe_load_all(f.read_text()):
                if doc:
                    out.append(doc)
    return out


class ReplayServer:
    def __init__(self, objects: list[dict], deny: set[tuple[str, str | None]] = frozenset(),
                 missing: set[str] = frozenset(), max_page: int | None = None):
        self.objects = objects
        self.deny = set(deny)  # {(plural, namespace or None for cluster scope)}
        self.missing = set(missing)  # plurals answered 404 (CRD not installed)
        self.max_page = max_page
        self.requests: list[tuple[str, str]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()

    def kubeconfig(self, path: Path, token: str = TOKEN) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "replay",
            "clusters": [{"name": "replay", "cluster": {"server": self.url}}],
            "users": [{"name": "auditor", "user": {"token": token}}],
            "contexts": [{"name": "replay", "context": {"cluster": "replay", "user": "auditor"}}],
        }))
        return path

    def configuration(self, token: str = TOKEN):
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        cfg.retries = 0
        return cfg

    def _select(self, kind: str, namespace: str | None, name: str | None, labels: Mapping[str, str] | None = None) -> list[dict]:
        out = []
        for o in list(self.objects):
            if o.get("kind") != kind:
                continue
            meta = o.get("metadata") or {}
            if namespace is not None and meta.get("namespace", "default") != namespace:
                continue
            if name is not None and meta.get("name") != name:
                continue
            if labels and any((meta.get("labels") or {}).get(k) != v for k, v in labels.items()):
                continue
            out.append(o)
        return out

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str, message: str) -> None:
                self._send(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": message, "reason": reason, "code": code})

            def do_POST(self):  # noqa: N802 - read-only double
                server.requests.append(("POST", self.path))
                self._status(405, "MethodNotAllowed", "the replay server is read-only")

            do_PUT = do_PATCH = do_DELETE = do_POST

            def do_GET(self):  # noqa: N802
                server.requests.append(("GET", self.path))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._status(401, "Unauthorized", "Unauthorized")
                url = urlparse(self.path)
                query = parse_qs(url.query)
                parts = [p for p in url.path.split("/") if p]
                if parts[:1] == ["api"]:
                    prefix, rest = "/" + "/".join(parts[:2]), parts[2:]
                elif parts[:1] == ["apis"]:
                    prefix, rest = "/" + "/".join(parts[:3]), parts[3:]
                else:
                    return self._status(404, "NotFound", "not found")
                namespace = None
                if len(rest) >= 3 and rest[0] == "namespaces":
                    namespace, rest = rest[1], rest[2:]
                if not rest or (prefix, rest[0]) not in API or rest[0] in server.missing:
                    return self._status(404, "NotFound", "the server could not find the requested resource")
                plural, name = rest[0], (rest[1] if len(rest) > 1 else None)
                kind, namespaced, api_version = API[(prefix, plural)]
                if (plural, namespace) in server.deny or (plural, None) in server.deny and namespace is None:
                    verb = "get" if name else "list"
                    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
                    return self._status(403, "Forbidden", f'{plural} is forbidden: User "system:serviceaccount:audit:nimwarden" '
                                                          f'cannot {verb} resource "{plural}" in API group "{prefix}" {scope}')
                selector = dict(kv.split("=", 1) for kv in query.get("labelSelector", [""])[0].split(",") if "=" in kv)
                if name is not None and len(rest) == 3 and rest[2] == "log" and hasattr(server, "pod_log"):
                    return server.pod_log(self, namespace, name)
                items = server._select(kind, namespace if namespaced else None, name, selector)
                if name is not None:
                    if not items:
                        return self._status(404, "NotFound", f'{plural} "{name}" not found')
                    return self._send(200, items[0])
                offset = 0
                if "continue" in query:
                    offset = json.loads(base64.b64decode(query["continue"][0]))["offset"]
                limit = int(query.get("limit", ["0"])[0]) or len(items) or 1
                if server.max_page:
                    limit = min(limit, server.max_page)
                page = items[offset: offset + limit]
                meta: dict = {"resourceVersion": "1"}
                if offset + limit < len(items):
                    meta["continue"] = base64.b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
                # Items in a list response carry no kind/apiVersion, as from a real server.
                bare = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in page]
                return self._send(200, {"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta, "items": bare})

        return Handler


class FakeKubelet:
    """TEST DOUBLE for a node: "runs" a created pod's one container as a local process.

    ``placement(pod) -> argv prefix`` says where the pod's network position is
    (``("ip", "netns", "exec", ns)`` for a lab network namespace, ``()`` for this
    host), or None for "cannot be scheduled". Images listed in ``image_errors``
    stay Waiting with that reason (e.g. ``ErrImagePull``). The command runs as
    the pod's ``runAsUser`` (through ``setpriv``, when root), is killed at
    ``activeDeadlineSeconds``, and its stdout becomes the pod's log.
    """

    def __init__(self, placement: Callable[[dict], tuple[str, ...] | None], image_errors: Mapping[str, str] | None = None):
        self.placement = placement
        self.image_errors = dict(image_errors or {})
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, str] = {}
        self.started: list[dict] = []  # every pod body the kubelet was handed

    def start(self, pod: dict) -> None:
        self.started.append(json.loads(json.dumps(pod)))
        (container,) = pod["spec"]["containers"]
        status = pod.setdefault("status", {})
        status.update(phase="Pending", conditions=[{"type": "PodScheduled", "status": "True"}])
        if container["image"] in self.image_errors:
            status["containerStatuses"] = [{"name": container["name"], "ready": False,
                                            "state": {"waiting": {"reason": self.image_errors[container["image"]],
                                                                  "message": f"failed to pull {container['image']}"}}}]
            return
        prefix = self.placement(pod)
        if prefix is None:
            status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                     "message": "0/3 nodes are available"}]
            return
        threading.Thread(target=self._run, args=(pod, tuple(prefix), container), daemon=True).start()

    def _run(self, pod: dict, prefix: tuple[str, ...], container: dict) -> None:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        argv = [*prefix]
        uid = (pod["spec"].get("securityContext") or {}).get("runAsUser")
        if uid is not None and shutil.which("setpriv") and os.geteuid() == 0:
            argv += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        command = [*container.get("command", []), *container.get("args", [])]
        if command and command[0] == "python3" and Path("/usr/bin/python3").exists():
            command[0] = "/usr/bin/python3"  # the "image's" interpreter: one any user can run (pyenv's lives under /root)
        argv += command
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs[key] = proc
        pod["status"].update(phase="Running", containerStatuses=[{"name": container["name"], "ready": False,
                                                                   "state": {"running": {}}}])
        try:
            out, err = proc.communicate(timeout=pod["spec"].get("activeDeadlineSeconds", 600))
            reason = "Completed" if proc.returncode == 0 else "Error"
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            reason = "DeadlineExceeded"
        self.logs[key] = out
        pod["status"].update(phase="Succeeded" if proc.returncode == 0 else "Failed",
                             containerStatuses=[{"name": container["name"], "ready": False,
                                                 "state": {"terminated": {"exitCode": proc.returncode, "reason": reason,
                                                                          "message": err[-300:]}}}])

    def stop(self, namespace: str, name: str) -> None:
        proc = self.procs.pop(f"{namespace}/{name}", None)
        if proc is not None and proc.poll() is None:
            proc.kill()

    def running(self) -> list[str]:
        return [k for k, p in self.procs.items() if p.poll() is None]


class ClusterDouble(ReplayServer):
    """TEST DOUBLE: the replay server plus creates/deletes of pods and ConfigMaps, pod logs, and a fake kubelet.

    ``deny_writes`` holds (verb, plural, namespace) triples answered 403, e.g.
    ``("create", "pods", "tenant-a")``; ``fail_deletes`` makes every DELETE answer 500.
    """

    WRITABLE = ("pods", "configmaps")

    def __init__(self, objects: list[dict], kubelet: FakeKubelet, deny_writes: set[tuple[str, str, str]] = frozenset(),
                 fail_deletes: bool = False, **kw):
        super().__init__(objects, **kw)
        self.kubelet = kubelet
        self.deny_writes = set(deny_writes)
        self.fail_deletes = fail_deletes
        self.history: list[dict] = []  # every object created, as created
        self._lock = threading.Lock()
        handler = self._httpd.RequestHandlerClass
        server = self

        class WritableHandler(handler):
            def _write_target(self):
                parts = [p for p in urlparse(self.path).path.split("/") if p]
                # /api/v1/namespaces/<ns>/<plural>[/<name>]
                if parts[:3] != ["api", "v1", "namespaces"] or len(parts) < 5 or parts[4] not in server.WRITABLE:
                    return None
                return parts[3], parts[4], (parts[5] if len(parts) > 5 else None)

            def _authorized(self, verb, plural, namespace) -> bool:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._status(401, "Unauthorized", "Unauthorized")
                    return False
                if (verb, plural, namespace) in server.deny_writes:
                    self._status(403, "Forbidden", f'{plural} is forbidden: User "system:serviceaccount:nimwarden:nimwarden-audit" '
                                                   f'cannot {verb} resource "{plural}" in API group "" in the namespace "{namespace}"')
                    return False
                return True

            def do_POST(self):  # noqa: N802
                server.requests.append(("POST", self.path))
                target = self._write_target()
                if target is None or target[2] is not None:
                    return self._status(405, "MethodNotAllowed", "the double only creates pods and configmaps")
                namespace, plural, _ = target
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if not self._authorized("create", plural, namespace):
                    return None
                kind = {"pods": "Pod", "configmaps": "ConfigMap"}[plural]
                meta = body.setdefault("metadata", {})
                with server._lock:
                    if meta.get("namespace", namespace) != namespace:
                        return self._status(400, "BadRequest", "the namespace of the object does not match the request")
                    if server._select(kind, namespace, meta.get("name")):
                        return self._status(409, "AlreadyExists", f'{plural} "{meta.get("name")}" already exists')
                    meta.update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                    body.update(kind=kind, apiVersion="v1")
                    server.objects.append(body)
                    server.history.append(json.loads(json.dumps(body)))
                if kind == "Pod":
                    server.kubelet.start(body)
                return self._send(201, body)

            def do_DELETE(self):  # noqa: N802
                server.requests.append(("DELETE", self.path))
                target = self._write_target()
                if target is None or target[2] is None:
                    return self._status(405, "MethodNotAllowed", "the double only deletes pods and configmaps by name")
                namespace, plural, name = target
                length = int(self.headers.get("Content-Length", 0))
                if length:
                    self.rfile.read(length)
                if not self._authorized("delete", plural, namespace):
                    return None
                if server.fail_deletes:
                    return self._status(500, "InternalError", "etcdserver: request timed out")
                kind = {"pods": "Pod", "configmaps": "ConfigMap"}[plural]
                with server._lock:
                    found = server._select(kind, namespace, name)
                    if not found:
                        return self._status(404, "NotFound", f'{plural} "{name}" not found')
                    server.objects.remove(found[0])
                if kind == "Pod":
                    server.kubelet.stop(namespace, name)
                return self._send(200, found[0])

        self._httpd.RequestHandlerClass = WritableHandler

    def pod_log(self, handler, namespace: str, name: str):
        if ("get", "pods/log", namespace) in self.deny_writes:
            return handler._status(403, "Forbidden", f'pods "{name}" is forbidden: cannot get resource "pods/log" in the namespace "{namespace}"')
        if not self._select("Pod", namespace, name):
            return handler._status(404, "NotFound", f'pods "{name}" not found')
        data = self.kubelet.logs.get(f"{namespace}/{name}", "").encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        return None

    def created(self, label: str = "nimwarden.dev/role", value: str = "reach-probe") -> list[str]:
        """``ns/Kind/name`` of every object still present that carries ``label=value``."""
        return [f"{(o.get('metadata') or {}).get('namespace')}/{o['kind']}/{o['metadata']['name']}" for o in list(self.objects)
                if ((o.get("metadata") or {}).get("labels") or {}).get(label) == value]
