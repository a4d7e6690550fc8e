"""TEST DOUBLE: a replay Kubernetes API server for exercising the live path.

No Kubernetes API server can be installed on the machines this project runs
on, so the live reader (``nimwarden.k8s.live``, which uses the real
``kubernetes`` client) is tested against this small HTTP server. It serves a
fixed set of objects over the real REST paths — ``/api/v1/…`` and
``/apis/<group>/<version>/…``, list and get, namespaced and cluster-wide —
with ``limit``/``continue`` pagination, a bearer token check, and a 403
``Status`` for the (resource, namespace) pairs a test denies. It only answers
GET. It is a test double, not a Kubernetes implementation: no watch, no
field/label selectors, no resourceVersion semantics.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

# plural -> (group/version path prefix, kind, namespaced); the subset nimwarden reads plus one extra.
API = {}


def _register():
    from nimwarden.k8s.resources import RESOURCES

    for r in RESOURCES:
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

    def configuration(self, token: str = TOKEN):
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        cfg.retries = 0
        return cfg

    def _select(self, kind: str, namespace: str | None, name: str | None) -> list[dict]:
        out = []
        for o in self.objects:
            if o.get("kind") != kind:
                continue
            meta = o.get("metadata") or {}
            if namespace is not None and meta.get("namespace", "default") != namespace:
                continue
            if name is not None and meta.get("name") != name:
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
                items = server._select(kind, namespace if namespaced else None, name)
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
