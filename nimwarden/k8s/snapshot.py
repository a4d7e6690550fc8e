"""Cluster state from a snapshot: ``kubectl get … -o json`` List dumps, or one taken by :func:`take_snapshot`.

A snapshot written here is a ``List`` with an extra top-level ``nimwarden``
member recording when and from where it was taken and which resources could
not be read (so an offline audit still reports ``error`` for them).
Secret values are never written: Secrets are reduced to key names (:func:`nimwarden.k8s.model.scrub_secret`)
and literal secrets elsewhere are fingerprinted (:func:`nimwarden.k8s.redaction.redact_object`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nimwarden.errors import ConfigError
from nimwarden.k8s.manifests import _check_object
from nimwarden.k8s.model import ClusterState, K8sObject, make_object, merge
from nimwarden.k8s.redaction import redact_object

SNAPSHOT_SCHEMA = "nimwarden/k8s-snapshot/v1"


def _items(doc: Any, file: Path) -> Iterable[tuple[str, dict]]:
    if not isinstance(doc, dict):
        raise ConfigError(file, "", "a snapshot is a JSON object (a List)")
    if "items" not in doc:
        yield "", doc  # a single object (kubectl get pod x -o json)
        return
    items = doc["items"]
    if not isinstance(items, list):
        raise ConfigError(file, "items", "must be a list")
    list_kind = str(doc.get("kind", ""))
    for i, item in enumerate(items):
        if isinstance(item, dict) and "kind" not in item and list_kind.endswith("List") and list_kind != "List":
            # typed lists (PodList) may omit kind/apiVersion on items
            item = dict(item, kind=list_kind[: -len("List")], apiVersion=item.get("apiVersion") or doc.get("apiVersion", "v1"))
        yield f"items[{i}]", item


def load_snapshot_file(file: Path) -> ClusterState:
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "", f"cannot read snapshot: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(file, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
    objects: list[K8sObject] = []
    for where, item in _items(doc, file):
        body = _check_object(item, file, where or "object")
        objects.append(make_object(body, f"{file} {where}".strip(), default_namespace="default"))
    meta = doc.get("nimwarden") if isinstance(doc, dict) else None
    denied, absent = {}, ()
    if isinstance(meta, dict):
        denied = {str(k): str(v) for k, v in (meta.get("denied") or {}).items()}
        absent = tuple(str(a) for a in meta.get("absent") or ())
    return ClusterState(f"snapshot: {file}", tuple(objects), denied, absent)


def load_snapshot(paths: Iterable[str | os.PathLike[str]]) -> ClusterState:
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files.extend(sorted(p.glob("*.json")))
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(p, "", "no such snapshot file or directory")
    if not files:
        raise ConfigError(", ".join(str(p) for p in paths), "", "no snapshot files found")
    return merge((load_snapshot_file(f) for f in files), "snapshot: " + ", ".join(str(f) for f in files))


def state_to_document(state: ClusterState) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [redact_object(o.body) for o in state.objects],
        "nimwarden": {
            "schema": SNAPSHOT_SCHEMA,
            "taken_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": state.source,
            "denied": dict(state.denied),
            "absent": list(state.absent),
        },
    }


def take_snapshot(client_config: Any, out_path: str | os.PathLike[str], namespaces: Iterable[str] = (),
                  timeout_s: float = 10.0) -> ClusterState:
    """Read the cluster through the live (read-only) path and write a snapshot file.

    ``client_config`` is a ``kubernetes.client.Configuration`` (see
    :func:`nimwarden.k8s.live.client_configuration`). Returns the state written;
    resources that could not be read are recorded in the file, not hidden.
    """
    from nimwarden.k8s.live import read_cluster

    state = read_cluster(client_config, namespaces=tuple(namespaces), timeout_s=timeout_s)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(state_to_document(state), indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, out)
    return state
