"""Cluster state from a live API server, read-only, through the ``kubernetes`` client.

Only GET requests are made (list with ``limit``/``continue`` paging, and get by
name). A 403 does not abort the read: the resource is recorded in
``ClusterState.denied`` with the permission that is missing, and every control
that needs it reports ``error`` naming that permission — never a pass on an
empty list. A 404 on an optional API (a CRD that is not installed) means the
cluster has none of those objects. Anything else (connection refused, TLS
failure, 5xx, unparseable body) raises :class:`K8sReadError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nimwarden.k8s.model import ClusterState, K8sObject, make_object
from nimwarden.k8s.resources import BY_KIND, RESOURCES, Resource

MAX_PAGES = 10_000  # a server that keeps handing out continue tokens is broken, not large


class K8sReadError(Exception):
    """The API server could not be read (not a permission problem)."""


class Forbidden(Exception):
    def __init__(self, permission: str, message: str):
        self.permission = permission
        super().__init__(f"{permission}: {message}" if message else permission)


def client_configuration(kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None):
    """A ``kubernetes.client.Configuration`` from a kubeconfig (and context), or in-cluster config."""
    from kubernetes import client, config

    cfg = client.Configuration()
    default_kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if kubeconfig is None and not Path(default_kubeconfig.split(os.pathsep)[0]).exists() and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)
    else:
        config.load_kube_config(config_file=str(kubeconfig) if kubeconfig else None, context=context, client_configuration=cfg)
    return cfg


def _permission(resource: Resource, verb: str, namespace: str | None) -> str:
    group = resource.group or "core"
    where = f"in namespace {namespace}" if namespace else "cluster-wide"
    return f"missing permission: {verb} {resource.plural} ({group}) {where}"


class LiveReader:
    def __init__(self, configuration: Any, timeout_s: float = 10.0, page_size: int = 500):
        from nimwarden.net.kube_api import ApiTransport

        self.timeout = (min(timeout_s, 5.0), timeout_s)
        self.transport = ApiTransport(configuration, self.timeout)  # each request bounded as a whole
        self.page_size = page_size
        self.requests: list[str] = []  # every path asked, for evidence

    def close(self) -> None:
        self.transport.close()

    def _get(self, path: str, query: list[tuple[str, Any]]) -> tuple[int, dict]:
        from nimwarden.net.kube_api import ApiCallError

        self.requests.append(path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else ""))
        try:
            status, raw = self.transport.call("GET", path, query, {"Accept": "application/json"})
        except ApiCallError as exc:  # no whole answer in time, refused, TLS: all mean "could not read"
            raise K8sReadError(f"GET {path}: {exc}") from None
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            if status != 200:  # a real API server answers an unknown group's path with text/plain "404 page not found"
                return status, {"message": raw[:200].decode("utf-8", "replace").strip()}
            raise K8sReadError(f"GET {path}: HTTP {status}, body is not JSON") from None
        return status, body if isinstance(body, dict) else {}

    def list(self, resource: Resource, namespace: str | None = None) -> list[dict]:
        path = resource.path(namespace)
        items: list[dict] = []
        token = None
        for _ in range(MAX_PAGES):
            query: list[tuple[str, Any]] = [("limit", self.page_size)]
            if token:
                query.append(("continue", token))
            status, body = self._get(path, query)
            if status == 403:
                raise Forbidden(_permission(resource, "list", namespace), str(body.get("message", "")))
            if status == 404:
                raise LookupError(path)
            if status != 200:
                raise K8sReadError(f"GET {path}: HTTP {status}: {body.get('message', '')}".rstrip(": "))
            for item in body.get("items") or []:
                item.setdefault("kind", resource.kind)
                item.setdefault("apiVersion", resource.api_version)
                items.append(item)
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return items
        raise K8sReadError(f"GET {path}: more than {MAX_PAGES} pages; giving up")

    def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict | None:
        path = resource.path(namespace, name)
        status, body = self._get(path, [])
        if status == 403:
            raise Forbidden(_permission(resource, "get", namespace), str(body.get("message", "")))
        if status == 404:
            return None
        if status != 200:
            raise K8sReadError(f"GET {path}: HTTP {status}: {body.get('message', '')}".rstrip(": "))
        body.setdefault("kind", resource.kind)
        body.setdefault("apiVersion", resource.api_version)
        return body


def _read(reader: LiveReader, res: Resource, namespaces: tuple[str, ...]) -> tuple[list[dict], Resource]:
    """The resource's objects (and the version that served them: an older cluster's, where ``version`` is 404)."""
    from dataclasses import replace

    versions = (res.version, *res.older)
    for i, version in enumerate(versions):
        at = replace(res, version=version)
        try:
            if at.kind == "Namespace" and namespaces:
                return [b for b in (reader.get(at, ns) for ns in namespaces) if b is not None], at
            if at.namespaced and namespaces:
                return [b for ns in namespaces for b in reader.list(at, ns)], at
            return reader.list(at), at
        except LookupError:
            if i == len(versions) - 1:
                raise
    raise AssertionError("unreachable")


def read_cluster(configuration: Any, namespaces: Iterable[str] = (), timeout_s: float = 10.0, page_size: int = 500,
                 kinds: Iterable[str] | None = None, resources: Iterable[Any] | None = None,
                 requests: list[str] | None = None) -> ClusterState:
    """Read every resource nimwarden judges (or ``kinds`` of them, or the given ``resources``); restricted to
    ``namespaces`` when given. ``requests``, when given, receives the paths of every request sent."""
    namespaces = tuple(namespaces)
    if resources is not None:
        resources = list(resources)
    else:
        resources = [BY_KIND[k] for k in kinds] if kinds is not None else list(RESOURCES)
    reader = LiveReader(configuration, timeout_s, page_size)
    objects: list[K8sObject] = []
    denied: dict[str, str] = {}
    absent: list[str] = []
    try:
        for res in resources:
            try:
                bodies, res = _read(reader, res, namespaces)
            except Forbidden as exc:
                denied[res.kind] = str(exc)
                continue
            except LookupError:
                if not res.optional:
                    raise K8sReadError(f"{res.path()} is not served (404); is this a Kubernetes API server?") from None
                absent.append(res.kind)
                continue
            for body in bodies:
                if not (body.get("metadata") or {}).get("name"):
                    raise K8sReadError(f"{res.path()}: an item has no metadata.name")
                objects.append(make_object(body, res.path((body.get('metadata') or {}).get("namespace")), default_namespace=None))
    finally:
        reader.close()
        if requests is not None:
            requests.extend(reader.requests)
    host = getattr(configuration, "host", "?")
    return ClusterState(f"live: {host}" + (f" namespaces {','.join(namespaces)}" if namespaces else ""),
                        tuple(objects), denied, tuple(absent))
