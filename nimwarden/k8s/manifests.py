"""Cluster state from YAML/JSON manifests (Helm or kustomize output, multi-document files, directories).

Rendered output only: a chart directory (``Chart.yaml``), a file with Helm template actions
(``{{ … }}``), a ``kustomization.yaml``, YAML that is not Kubernetes (an Ansible playbook) or a
document separator glued to a key (``---apiVersion:``) is a :class:`ConfigError` naming the file
and the command to run first, never a half-read object.

Namespaces are what ``helm install -n NS`` / ``kubectl apply -n NS`` would give: an object without
``metadata.namespace`` gets the namespace of its path entry, else the profile's
``kubernetes.default_namespace``, else ``default``. Each object keeps the lines of its YAML node, so a
finding's field path can be turned into a line of the file (:func:`nimwarden.k8s.model.K8sObject.line_of`).

Apply units: a tree is read as what a user applies. While no two files define the same object
(kind, namespace, name), everything read is one unit, resolved together. A repository that keeps
alternatives side by side (NVIDIA's operator samples: ``nemo/25.04`` and ``nemo/25.06`` copies,
``llm.yaml`` and ``multi-llm.yaml`` both defining one NIMService; a GitOps repository with a folder
per environment) is split where it clashes (:func:`nimwarden.k8s.units.split_units`): each clash-free folder subtree is one
unit, and files of one folder that clash with each other are alternatives, a unit each. The same
object in two units is two objects, each judged, its ref naming its unit
(``NIMService/nim/llm@nim/serving/basic/llm.yaml``). The same object twice in one file is one error
naming both documents (the API server would keep only the last one applied).
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from nimwarden import yaml_bounded
from nimwarden.errors import ConfigError
from nimwarden.k8s import yaml_nodes
from nimwarden.k8s.model import ClusterState, K8sObject, Unit, make_object
from nimwarden.k8s.units import split_units

SUFFIXES = (".yaml", ".yml", ".json")
# libyaml's loader when PyYAML was built with it: same safe semantics, ~10x faster on large renders.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
KUSTOMIZATION = ("kustomization.yaml", "kustomization.yml", "Kustomization")
GLUED_SEPARATOR = re.compile(r"^---[^\s-]", re.M)
# Helm's own template actions; a rendered ConfigMap may carry other {{ }} templates (Jinja chat templates).
HELM_ACTION = re.compile(r"\{\{-?\s*(?:\.Values|\.Release|\.Chart|\.Capabilities|include\s|template\s|toYaml|tpl\s)")


def _entries(paths: Iterable[Any]) -> list[tuple[Path, str | None]]:
    out = []
    for raw in paths:
        if isinstance(raw, tuple):
            out.append((Path(raw[0]), raw[1]))
        else:
            out.append((Path(raw), None))
    return out


def _render_hint(namespace: str | None) -> str:
    return f"--namespace {namespace or 'NS'}"


def _refuse_unrendered(directory: Path, namespace: str | None) -> None:
    """A chart or kustomize directory is a recipe, not manifests: say which command renders it."""
    for chart in sorted(directory.rglob("Chart.yaml")):
        raise ConfigError(chart, "", f"an unrendered Helm chart; render it first: `helm template RELEASE {chart.parent} "
                                     f"{_render_hint(namespace)} > rendered.yaml` and audit the output")
    for name in KUSTOMIZATION:
        for k in sorted(directory.rglob(name)):
            try:
                doc = yaml_bounded.load(k.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                doc = None
            if not _plain_kustomization(doc, k.parent):
                raise ConfigError(k, "", f"a kustomization; render it first: `kubectl kustomize {k.parent} > rendered.yaml` "
                                         "and audit the output")


def _plain_kustomization(doc: Any, directory: Path) -> bool:
    """A kustomization that only lists local manifest files: reading those files is what kustomize renders."""
    if not isinstance(doc, dict) or set(doc) - {"apiVersion", "kind", "metadata", "resources"}:
        return False
    resources = doc.get("resources") or []
    return isinstance(resources, list) and all(
        isinstance(r, str) and "://" not in r and (directory / r).is_file() for r in resources)


def manifest_files(paths: Iterable[Any]) -> list[tuple[Path, str | None]]:
    """The files named, and every manifest file under the directories named, in a stable order,
    each with the namespace its path entry gives (None: the profile's default)."""
    files: list[tuple[Path, str | None]] = []
    for path, namespace in _entries(paths):
        if path.is_dir():
            _refuse_unrendered(path, namespace)
            files.extend((p, namespace) for p in sorted(path.rglob("*"))
                         if p.is_file() and p.suffix in SUFFIXES)
        elif path.is_file():
            if path.name in KUSTOMIZATION:
                _refuse_unrendered(path.parent, namespace)
            if path.name == "Chart.yaml":
                _refuse_unrendered(path.parent, namespace)
            files.append((path, namespace))
        else:
            raise ConfigError(path, "", "no such manifest file or directory")
    return files


# A folder is read whole (every .yaml/.yml/.json under it): in a repository's root that takes in CI workflows,
# docs and compose files too. Said with every "not Kubernetes" error, so that the way out is in the line.
FOLDERS_HINT = ("; a folder is read whole, every .yaml/.yml/.json under it: give --manifests / kubernetes.paths the "
                "folders or files of rendered manifests only")


def _not_kubernetes(doc: Any, file: Path, where: str) -> ConfigError:
    if isinstance(doc, list):
        looks = " (an Ansible playbook?)" if any(isinstance(d, dict) and ("hosts" in d or "tasks" in d) for d in doc) else ""
        return ConfigError(file, where, f"not a Kubernetes manifest: an object must be a mapping with apiVersion and kind, this is a YAML list{looks}; "
                                        f"pass rendered manifests (`helm template …`, `kubectl kustomize …`){FOLDERS_HINT}")
    return ConfigError(file, where, f"not a Kubernetes manifest: an object must be a mapping with apiVersion and kind, not a "
                                    f"{type(doc).__name__}{FOLDERS_HINT}")


def _check_object(doc: Any, file: Path, where: str) -> Mapping[str, Any]:
    if not isinstance(doc, dict):
        raise _not_kubernetes(doc, file, where)
    if not doc.get("kind"):
        raise ConfigError(file, where, "has no kind: not a Kubernetes object; pass rendered manifests "
                                       f"(`helm template …`, `kubectl kustomize …`){FOLDERS_HINT}")
    if doc.get("kind") == "Kustomization" and not _plain_kustomization(doc, file.parent):
        raise ConfigError(file, where, f"a kustomization; render it first: `kubectl kustomize {file.parent} > rendered.yaml`")
    if not doc.get("apiVersion"):
        raise ConfigError(file, where, f"{doc['kind']} has no apiVersion")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ConfigError(file, where, f"{doc['kind']} has no metadata.name")
    _check_metadata(doc, meta, file, where)
    return doc


def _check_metadata(doc: Mapping[str, Any], meta: Mapping[str, Any], file: Path, where: str) -> None:
    """The object header every reader relies on, typed as the API types it (kubectl refuses anything else)."""
    for key in ("kind", "apiVersion"):
        if not isinstance(doc[key], str):
            raise ConfigError(file, f"{where}.{key}", f"must be a string, got {type(doc[key]).__name__}")
    for key in ("name", "namespace"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise ConfigError(file, f"{where}.metadata.{key}", f"must be a string, got {type(meta[key]).__name__}")
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is not None and not (isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
            raise ConfigError(file, f"{where}.metadata.{key}", "must be a mapping of strings to strings (quote numbers and "
                                                               f"booleans: kubectl refuses anything else), got {_shape(value)}")


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        key, item = next((k, v) for k, v in value.items() if not (isinstance(k, str) and isinstance(v, str)))
        return " ".join(f"{key!r}: {item!r}".split())[:80]
    return type(value).__name__


def _top_level_duplicates(node: Any) -> str | None:
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, _value in node.value:
            k = getattr(key, "value", None)
            if k in seen:
                return f"key {k!r} appears twice (line {key.start_mark.line + 1})"
            seen.add(k)
    return None


def objects_from_documents(docs: Iterable[Any], file: Path, default_namespace: str = "default",
                           nodes: list | None = None) -> list[K8sObject]:
    out: list[K8sObject] = []
    for index, doc in enumerate(docs):
        if doc is None:  # empty document between '---' separators
            continue
        node = nodes[index] if nodes is not None else None
        where = f"document {index}"
        if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and "items" in doc:
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise ConfigError(file, f"{where}.items", "must be a list")
            item_nodes = _child(_child(node, "items"), None) if node is not None else None
            for j, item in enumerate(items):
                body = _check_object(item, file, f"{where}.items[{j}]")
                sub = item_nodes[j] if item_nodes is not None and j < len(item_nodes) else None
                out.append(make_object(body, f"{file}#{index}.items[{j}]", default_namespace, node=sub, file=str(file)))
            continue
        body = _check_object(doc, file, where)
        if body.get("kind") == "Kustomization":
            continue  # a plain list of the files read here (checked above): nothing to deploy itself
        out.append(make_object(body, f"{file}#{index}", default_namespace, node=node, file=str(file)))
    return out


def _child(lines: Any, key: str | None) -> Any:
    """The lines under a mapping key (key None: the items of a sequence), from :func:`yaml_nodes.lines_of`."""
    if key is None:
        return list(lines) if isinstance(lines, yaml_nodes.Seq) else None
    entry = lines.get(key) if isinstance(lines, yaml_nodes.Map) else None
    return entry[1] if isinstance(entry, tuple) else entry


def _parse(text: str, file: Path) -> tuple[list[Any], list[Any]]:
    """(documents, the lines of their nodes), in one pass of the (C) parser."""
    docs: list[Any] = []
    nodes: list[Any] = []
    loader = yaml_nodes.Loader(text)
    anchors = "&" in text  # no anchor, no alias: rendered output (which has none) is not walked once more
    try:
        while loader.check_node():
            node = loader.get_node()
            if anchors:
                yaml_bounded.check_aliasing(node)  # an alias bomb is invalid YAML here, as for the API server
            dup = _top_level_duplicates(node)
            if dup:
                raise ConfigError(file, f"document {len(docs)}", f"{dup}: two objects run together? (a '---' separator missing or glued to a key)")
            nodes.append(yaml_nodes.lines_of(node))  # first: a document nested too deep is refused before it is built
            docs.append(yaml_nodes.construct(loader, node))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(file, f"document {len(docs)}", f"invalid YAML{line}: {problem}") from None
    finally:
        loader.dispose()
    return docs, nodes


def load_file(file: Path, default_namespace: str = "default") -> list[K8sObject]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "", f"cannot read: {exc}") from None
    glued = GLUED_SEPARATOR.search(text)
    if glued:
        line = text.count("\n", 0, glued.start()) + 1
        raise ConfigError(file, f"line {line}", f"document separator glued to a key ({text[glued.start():].splitlines()[0][:40]!r}); "
                                                "put '---' on a line of its own")
    helm = HELM_ACTION.search(text)
    if helm is None:
        try:
            docs, nodes = _parse(text, file)  # JSON is YAML too
        except ConfigError:
            helm = re.search(r"\{\{", text)  # a parse error with {{ in the text: a template, say so
            if helm is None:
                raise
    if helm is not None:
        line = text.count("\n", 0, helm.start()) + 1
        raise ConfigError(file, f"line {line}", "holds Helm template actions ({{ … }}): an unrendered template; render the chart first: "
                                                f"`helm template RELEASE CHART_DIR {_render_hint(default_namespace)}` and audit the output")
    return objects_from_documents(docs, file, default_namespace, nodes)


def _twice_in_one_file(objects: list[K8sObject]) -> None:
    """The same object twice in one file: the API server would keep only the last one applied."""
    seen: dict[tuple, K8sObject] = {}
    for obj in objects:
        first = seen.get(obj.key)
        if first is not None:
            raise ConfigError(obj.origin.split("#")[0], "", f"{obj.ref} is defined twice: in {first.origin} and in {obj.origin} "
                                                           "(the API server keeps only the last one applied); keep one")
        seen[obj.key] = obj


def _label(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or path.name
    except ValueError:
        return path.as_posix()


def load_manifests(paths: Iterable[Any], default_namespace: str | None = None,
                   read_already: Mapping[Path, list[K8sObject]] | None = None) -> ClusterState:
    """Read manifests into a ClusterState; any unreadable document is a ConfigError naming file and index.

    ``paths`` holds paths, or ``(path, namespace)`` pairs (the namespace ``-n`` would give the
    objects of that path that carry none); ``default_namespace`` serves the others. ``read_already``: the
    objects of some files, read by :func:`read_files` (by another process: :mod:`nimwarden.k8s.beside`).

    A tree whose files define the same object more than once is read as several apply units
    (:func:`~nimwarden.k8s.units.split_units`): each object keeps its unit, the same object in two units is two objects (its ref
    names its unit), and each unit sees its own objects first (:meth:`ClusterState.view`)."""
    # The cyclic GC would walk every value and line map kept so far, again and again, while thousands more are
    # made (a third of the parse of a large tree); they hold no cycles, so it waits until the tree is read.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load(_entries(paths), default_namespace, read_already if read_already is not None else {})
    finally:
        if paused:
            gc.enable()


def manifest_plan(paths: Iterable[Any]) -> tuple[list[tuple[Path, list[Path]]], dict[Path, str | None]]:
    """(each path entry with its files, every file once in the order it is read with the namespace its entry gives)."""
    per_entry: list[tuple[Path, list[Path]]] = []
    namespace_of: dict[Path, str | None] = {}
    for path, namespace in _entries(paths):
        found = manifest_files([(path, namespace)])
        per_entry.append((path, [f for f, _ in found]))
        for f, ns in found:
            namespace_of.setdefault(f, ns)
    return per_entry, namespace_of


def read_files(files: Iterable[tuple[Path, str | None]], default_namespace: str | None) -> dict[Path, list[K8sObject]]:
    """The objects of each (file, namespace) of a :func:`manifest_plan`, as :func:`load_manifests` reads them."""
    out = {}
    for file, namespace in files:
        out[file] = load_file(file, namespace or default_namespace or "default")
    return out


def _load(entries: list[tuple[Path, str | None]], default_namespace: str | None,
          read_already: Mapping[Path, list[K8sObject]]) -> ClusterState:
    # the plan the objects were read by, where the reader says (nimwarden.k8s.beside): the same entries, not walked again
    per_entry, namespace_of = getattr(read_already, "plan", None) or manifest_plan(entries)
    if not namespace_of:
        raise ConfigError(", ".join(str(p) for p, _ in entries) or "(none)", "", "no manifest files found")
    by_file: dict[Path, list[K8sObject]] = {}
    for file, namespace in namespace_of.items():
        objects = read_already.get(file)
        if objects is None:
            objects = read_files([(file, namespace)], default_namespace)[file]
        _twice_in_one_file(objects)
        by_file[file] = objects
    keys = {f: frozenset(o.key for o in objs) for f, objs in by_file.items()}
    source = "manifests: " + ", ".join(str(p) for p, _ in entries)
    units = split_units([(p, [f for f in files if f in by_file]) for p, files in per_entry], keys)
    if len(units) == 1:
        return ClusterState(source, tuple(o for f in units[0][1] for o in by_file[f]))
    root = Path(os.path.commonpath([str(p.parent) for p, _ in entries]))
    labels = {path: _label(path, root) for path, _, _ in units}
    infos, objects = [], []
    homes: dict[tuple, set[str]] = {}
    for path, files, enclosing in units:
        label = labels[path]
        infos.append(Unit(label, str(path), tuple(labels[e] for e in enclosing)))
        for f in files:
            for o in by_file[f]:
                homes.setdefault(o.key, set()).add(label)
                objects.append((label, o))
    placed = tuple(replace(o, unit=label, twin=len(homes[o.key]) > 1) for label, o in objects)
    return ClusterState(source, placed, units=tuple(infos))
