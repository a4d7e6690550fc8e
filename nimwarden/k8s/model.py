"""One object model for cluster state, whatever it was read from.

Manifests, a snapshot and a live API server all produce a :class:`ClusterState`:
the objects (as the API's JSON form), where they came from, and — for live
reads — which resources the credentials were not allowed to read, so that a
control depending on them reports ``error`` naming the missing permission
instead of passing on an empty list.

Secret values never enter the model: a Secret keeps its metadata, type, the
names of its keys and (for registry credentials) the registry host names.

Objects an operator creates from a custom resource the state holds (the NIM Operator's Services, Roles,
Ingresses … for its NeMo resources, :mod:`nimwarden.k8s.nemo_operator`) are in the state too, unless the
state holds the real ones: ``of_kind``/``get``/``by_ref`` return them, ``objects`` stays what was read.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class K8sObject:
    kind: str
    api_version: str
    namespace: str | None
    name: str
    body: Mapping[str, Any]
    origin: str = ""  # "manifests/app.yaml#2", "snapshot.json items[4]" or the API path
    file: str | None = None  # the manifest file it was read from (manifest sources only)
    node: Any = field(default=None, compare=False, repr=False)  # the lines of its YAML node (yaml_nodes.lines_of)
    # An object an operator renders from a CR: node and file are the CR's, field_map takes its field paths to
    # the CR fields that produced them (``spec.type`` → ``spec.expose.service.type``), rendered_from names the CR.
    field_map: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    rendered_from: str | None = None
    unit: str = ""  # the apply unit it was read in (manifests: a folder or file of the tree); "" with one unit
    twin: bool = False  # another apply unit holds the same kind/namespace/name: the ref names the unit

    @property
    def ref(self) -> str:
        """``Deployment/ns/name`` (namespaced) or ``ClusterRole/name``; ``Deployment/ns/name@envs/prod``
        when another apply unit holds the same object."""
        ref = f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"
        return f"{ref}@{self.unit}" if self.twin else ref

    @property
    def key(self) -> tuple[str, str | None, str]:
        """What the API server keys it by: (kind, namespace, name)."""
        return (self.kind, self.namespace or None, self.name)

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.body.get("metadata") or {}

    @property
    def labels(self) -> Mapping[str, str]:
        return self.metadata.get("labels") or {}

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.metadata.get("annotations") or {}

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.body.get("spec") or {}

    @property
    def hook(self) -> str | None:
        """The Helm hook this object is (``test``, ``pre-upgrade`` …), or None: not part of the release's workload."""
        value = self.annotations.get("helm.sh/hook")
        return str(value) if value else None

    def line_of(self, path: str = "") -> int | None:
        """The line (1-based) of a field path (``spec.template.spec.containers[0].image``) in the
        object's manifest: the deepest part of the path the file has (a missing field points at its
        parent); None when the object was not read from a manifest. A key with dots is written in
        brackets (``data[config.yaml]``); a path that goes on inside a block scalar holding YAML
        (a ConfigMap's ``config.yaml: |``) points at the line inside it (``data[config.yaml].auth.enabled``)."""
        if self.node is None:
            return None
        return _line_in(self.node, _PATH_PART.findall(map_path(self.field_map, path.split(" ")[0])), 0)


def _line_in(node: Any, parts: list, offset: int) -> int:
    from nimwarden.k8s import yaml_nodes as shapes

    line = shapes.line_of(node) + 1 + offset
    for n, (key, index) in enumerate(parts):
        if index:
            key = index[1:-1]
            if isinstance(node, shapes.Seq):
                if not key.isdigit() or int(key) >= len(node):
                    break
                node = node[int(key)]
                line = shapes.line_of(node) + 1 + offset
                continue
        if isinstance(node, shapes.Block):
            try:  # YAML inside the block: its lines start on the line after the indicator
                inner = _yaml().compose(node.text)
                inner_lines = shapes.lines_of(inner) if inner is not None else None
            except _yaml().YAMLError:
                break
            return _line_in(inner_lines, parts[n:], node.line + 1 + offset) if inner is not None else line
        entry = node.get(key) if isinstance(node, shapes.Map) else None
        if entry is None:
            break
        line, node = (entry[0], entry[1]) if isinstance(entry, tuple) else (entry, entry)
        line += 1 + offset
    return line


_PATH_PART = re.compile(r"([^.\[\]]+)|(\[[^\]]*\])")


def map_path(field_map: Mapping[str, str], path: str) -> str:
    """``path`` with its longest mapped prefix replaced (a rendered field path → the field the user wrote)."""
    for prefix in sorted(field_map, key=len, reverse=True):
        if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
            return field_map[prefix] + path[len(prefix):]
    return path


def _yaml():
    import yaml

    return yaml


# Operators' renderers: ``render(lookup) -> [K8sObject]`` for the objects an operator creates from the custom
# resources a state holds (``lookup(kind, namespace=None, name=None)``). ``nimwarden.k8s.nemo_operator``
# registers the NIM Operator's NeMo renderer when ``nimwarden.k8s`` loads: the model imports no operator.
RENDERERS: list[Callable[[Callable[..., Any]], list[K8sObject]]] = []


@dataclass(frozen=True)
class Unit:
    """One apply unit of a manifest tree: what one ``kubectl apply -f`` of it applies (see
    :mod:`nimwarden.k8s.manifests`). ``enclosing``: the units whose objects it also sees (the files
    beside it when it is one of several alternative files, and the folders above it), nearest first."""

    label: str  # its path relative to the tree's root: "envs/prod", "nim/serving/basic/llm.yaml"
    path: str  # its folder or file
    enclosing: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterState:
    source: str  # e.g. "manifests: lab/manifests/hardened" or "live: context kind-nim"
    objects: tuple[K8sObject, ...]
    denied: Mapping[str, str] = field(default_factory=dict)  # kind -> missing permission
    absent: tuple[str, ...] = ()  # kinds the cluster does not serve (CRD not installed)
    units: tuple[Unit, ...] = ()  # apply units (manifest trees read as several); () = one
    _index: dict = field(default_factory=dict, compare=False, repr=False, init=False)
    _memo: dict = field(default_factory=dict, compare=False, repr=False, init=False)

    def __post_init__(self) -> None:
        for obj in self.objects:
            self._add(obj)
        for render in RENDERERS:  # the objects an operator creates for the custom resources the state holds
            for obj in render(self._lookup):
                self._add(obj)

    def _add(self, obj: K8sObject) -> None:
        index = self._index
        index.setdefault(obj.kind, []).append(obj)
        index.setdefault((obj.kind, obj.namespace or None), []).append(obj)
        index.setdefault(("ref", obj.ref), obj)
        index.setdefault(("key",) + obj.key, obj)

    def _lookup(self, kind: str, namespace: str | None = None, name: str | None = None):
        return self.of_kind(kind) if name is None else self.get(kind, namespace, name)

    def by_ref(self, ref: str) -> K8sObject | None:
        """The object a finding names (``Deployment/ns/name``, ``ClusterRole/name``)."""
        return self._index.get(("ref", ref))

    def of_kind(self, kind: str, namespace: str | None = None) -> list[K8sObject]:
        """Every object of a kind (in one namespace when given); indexed, never a scan of the state."""
        return list(self._index.get(kind if namespace is None else (kind, namespace), ()))

    def in_namespaces(self, kind: str, namespaces: Iterable[str | None]) -> list[K8sObject]:
        """The objects of a kind in these namespaces, in the state's order: an index lookup per namespace."""
        spaces = list(dict.fromkeys(namespaces))
        if len(spaces) == 1:
            return self.of_kind(kind, spaces[0])
        found = [o for ns in spaces for o in self._index.get((kind, ns), ())]
        if len(spaces) > 1:
            position = self.memo("positions", lambda: {id(o): i for i, o in enumerate(self.objects)})
            found.sort(key=lambda o: position.get(id(o), 0))
        return found

    def get(self, kind: str, namespace: str | None, name: str) -> K8sObject | None:
        return self._index.get(("key", kind, namespace or None, name))

    def memo(self, key: Any, make: Any) -> Any:
        """``make()`` once per state and key: what every control of a run derives alike (pod templates,
        the network-policy inventory, unit views) is derived once, not once per control and deployment."""
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = make()
            return value

    def forget(self) -> None:
        """Drop what :meth:`memo` kept, in this state and in its units' views. What it keeps refers back to the state
        (a deployment's workloads name the state they were found in): a cycle only the cyclic GC would free, and a
        program run of the offline audit turns that off. Once judging is done, the runner forgets the state so that
        the objects read are freed before the reports are written (a third of a repository audit's memory)."""
        memo = dict(self._memo)
        self._memo.clear()
        for value in memo.values():
            if isinstance(value, ClusterState) and value is not self:
                value.forget()

    def view(self, unit: str) -> ClusterState:
        """What one apply unit sees: its own objects, then those of its enclosing units, then the shared
        cluster-scoped objects (those only one unit of the tree defines), each key once, nearest first.
        A state of one unit is its own view."""
        if not self.units:
            return self
        return self.memo(("view", unit), lambda: self._view(unit))

    def _view(self, unit: str) -> ClusterState:
        by_unit = self.memo("by-unit", self._by_unit)
        info = self.memo("units-by-label", lambda: {u.label: u for u in self.units}).get(unit)
        layers = [by_unit.get(unit, ())] + [by_unit.get(e, ()) for e in (info.enclosing if info else ())]
        layers.append(self.memo("shared", self._shared))
        seen: set = set()
        objects = []
        for layer in layers:
            for o in layer:
                if o.key not in seen:
                    seen.add(o.key)
                    objects.append(o)
        return ClusterState(f"{self.source} (apply unit {unit})", tuple(objects), self.denied, self.absent)

    def _by_unit(self) -> dict[str, list[K8sObject]]:
        out: dict[str, list[K8sObject]] = {}
        for o in self.objects:
            out.setdefault(o.unit, []).append(o)
        return out

    def _shared(self) -> list[K8sObject]:
        """Cluster-scoped objects that only one unit defines: every unit sees them (a tree's CRDs, ClusterRoles)."""
        return [o for o in self.objects if o.namespace is None and not o.twin]

    def unreadable(self, *kinds: str) -> str | None:
        """Why one of these kinds could not be read (a denied permission), or None when all were."""
        reasons = [self.denied[k] for k in kinds if k in self.denied]
        return "; ".join(reasons) if reasons else None

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for o in self.objects:
            counts[o.kind] = counts.get(o.kind, 0) + 1
        return {"source": self.source, "objects": counts, "denied": dict(self.denied), "absent": list(self.absent)}


def _registries(data: Mapping[str, Any], string_data: Mapping[str, Any]) -> list[str]:
    raw = string_data.get(".dockerconfigjson") or string_data.get(".dockercfg")
    if raw is None:
        encoded = data.get(".dockerconfigjson") or data.get(".dockercfg")
        if not encoded:
            return []
        try:
            raw = base64.b64decode(encoded).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return []
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        return []
    auths = parsed.get("auths", parsed) if isinstance(parsed, dict) else {}
    return sorted(str(k) for k in auths) if isinstance(auths, dict) else []


def scrub_secret(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Secret without its values: metadata, type, key names and registry hosts only."""
    data = body.get("data") or {}
    string_data = body.get("stringData") or {}
    meta = dict(body.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    # kubectl apply keeps the whole object, values included, in this annotation.
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    meta["annotations"] = annotations
    return {
        "apiVersion": body.get("apiVersion", "v1"),
        "kind": "Secret",
        "metadata": meta,
        "type": body.get("type", "Opaque"),
        "dataKeys": sorted(set(data) | set(string_data)),
        "registries": _registries(data, string_data),
        "inlineValues": bool(data or string_data),
    }


def make_object(body: Mapping[str, Any], origin: str, default_namespace: str | None = "default", *,
                node: Any = None, file: str | None = None) -> K8sObject:
    """Build a K8sObject from an API-form mapping (callers validate kind and name first)."""
    from nimwarden.k8s.resources import is_namespaced

    kind = str(body["kind"])
    if kind == "Secret":
        body = scrub_secret(body)
        node = None  # the node holds the values; a Secret's findings point at the file, not a line
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace") if is_namespaced(kind) else None
    if is_namespaced(kind) and not namespace:
        namespace = default_namespace
    return K8sObject(kind, str(body.get("apiVersion", "")), namespace, str(meta["name"]), body, origin, file, node)


def merge(states: Iterable[ClusterState], source: str) -> ClusterState:
    objects: list[K8sObject] = []
    denied: dict[str, str] = {}
    absent: list[str] = []
    for s in states:
        objects.extend(s.objects)
        denied.update(s.denied)
        absent.extend(a for a in s.absent if a not in absent)
    return ClusterState(source, tuple(objects), denied, tuple(absent))
