"""Cluster state from YAML/JSON manifests (Helm or kustomize output, multi-document files, directories)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from nimwarden.errors import ConfigError
from nimwarden.k8s.model import ClusterState, K8sObject, make_object

SUFFIXES = (".yaml", ".yml", ".json")
# libyaml's loader when PyYAML was built with it: same safe semantics, ~10x faster on large renders.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def manifest_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The files named, and every manifest file under the directories named, in a stable order."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(path, "", "no such manifest file or directory")
    return files


def _check_object(doc: Any, file: Path, where: str) -> Mapping[str, Any]:
    if not isinstance(doc, dict):
        raise ConfigError(file, where, f"a Kubernetes object must be a mapping, not {type(doc).__name__}")
    if not doc.get("kind"):
        raise ConfigError(file, where, "has no kind")
    if not doc.get("apiVersion"):
        raise ConfigError(file, where, f"{doc['kind']} has no apiVersion")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ConfigError(file, where, f"{doc['kind']} has no metadata.name")
    return doc


def objects_from_documents(docs: Iterable[Any], file: Path, default_namespace: str = "default") -> list[K8sObject]:
    out: list[K8sObject] = []
    for index, doc in enumerate(docs):
        if doc is None:  # empty document between '---' separators
            continue
        where = f"document {index}"
        if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and "items" in doc:
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise ConfigError(file, f"{where}.items", "must be a list")
            for j, item in enumerate(items):
                body = _check_object(item, file, f"{where}.items[{j}]")
                out.append(make_object(body, f"{file}#{index}.items[{j}]", default_namespace))
            continue
        body = _check_object(doc, file, where)
        out.append(make_object(body, f"{file}#{index}", default_namespace))
    return out


def load_file(file: Path, default_namespace: str = "default") -> list[K8sObject]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "", f"cannot read: {exc}") from None
    docs: list[Any] = []
    try:
        for doc in yaml.load_all(text, Loader=SAFE_LOADER):  # JSON is YAML too
            docs.append(doc)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(file, f"document {len(docs)}", f"invalid YAML{line}: {problem}") from None
    return objects_from_documents(docs, file, default_namespace)


def load_manifests(paths: Iterable[str | os.PathLike[str]], default_namespace: str = "default") -> ClusterState:
    """Read manifests into a ClusterState; any unreadable document is a ConfigError naming file and index."""
    paths = list(paths)
    files = manifest_files(paths)
    if not files:
        raise ConfigError(", ".join(str(p) for p in paths) or "(none)", "", "no manifest files found")
    objects: list[K8sObject] = []
    for file in files:
        objects.extend(load_file(file, default_namespace))
    return ClusterState("manifests: " + ", ".join(str(p) for p in paths), tuple(objects))
