"""The Kubernetes probe: the target's cluster state (read once per session) and a deployment's workloads.

Suites ask :func:`for_deployment` and get either a :class:`Workloads` to judge or an Outcome to
record as is (not applicable: no ``kubernetes:`` section / no workloads match; error: the cluster
could not be read). A manifest or snapshot that cannot be parsed is a configuration error
(:class:`nimwarden.errors.ConfigError`, exit 2), not a finding.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from nimwarden.errors import ConfigError
from nimwarden.judges.k8s_common import no_workloads
from nimwarden.k8s.model import ClusterState
from nimwarden.k8s.workloads import PodTemplate, pod_templates, select
from nimwarden.outcome import Attempt, Outcome, errored, incomplete, not_applicable

_cache: dict[tuple, Attempt[ClusterState]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Workloads:
    state: ClusterState
    templates: tuple[PodTemplate, ...]
    namespace: str | None

    @property
    def subject(self) -> str:
        return ", ".join(t.ref for t in self.templates)


def _key(source: Any) -> tuple:
    return (source.source, tuple(str(p) for p in source.paths), str(source.kubeconfig), source.context, tuple(source.namespaces))


def read_state(source: Any, timeout_s: float = 10.0) -> ClusterState:
    from nimwarden.k8s.manifests import load_manifests
    from nimwarden.k8s.snapshot import load_snapshot

    if source.source == "manifests":
        return load_manifests(source.paths)
    if source.source == "snapshot":
        return load_snapshot(source.paths)
    if source.source == "live":
        from nimwarden.k8s.live import client_configuration, read_cluster

        cfg = client_configuration(source.kubeconfig, source.context)
        return read_cluster(cfg, namespaces=source.namespaces, timeout_s=timeout_s)
    raise ValueError(f"unknown kubernetes source {source.source!r}")


def cluster_state(source: Any, timeout_s: float = 10.0) -> Attempt[ClusterState]:
    """The cluster state for a target's ``kubernetes:`` section, read once per process."""
    key = _key(source)
    with _lock:
        if key in _cache:
            return _cache[key]
        probe = f"k8s.{source.source}"
        request = f"{source.source}: {', '.join(map(str, source.paths)) or source.context or 'default context'}"
        t0 = time.monotonic()
        try:
            result = Attempt(probe, request, read_state(source, timeout_s), None, time.monotonic() - t0)
        except ConfigError:
            raise  # a broken manifest/snapshot is the user's configuration error (exit 2), not a finding
        except Exception as exc:  # noqa: BLE001 - becomes an error outcome, never a pass
            result = Attempt(probe, request, None, f"{type(exc).__name__}: {exc}", time.monotonic() - t0)
        _cache[key] = result
        return result


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def for_deployment(target: Any, deployment: Any) -> Workloads | Outcome:
    """The workloads of one deployment (namespace + selector from the profile), or the Outcome to record."""
    source = target.kubernetes
    if source.source == "none":
        return not_applicable("the target profile has no kubernetes source (kubernetes.source: none)")
    ref = deployment.kubernetes
    if not ref.namespace and not ref.selector:
        return not_applicable(f"deployment {deployment.name} declares no kubernetes namespace or selector")
    read = cluster_state(source, timeout_s=max(getattr(target.timeouts, "read_s", 5.0), 5.0))
    bad = incomplete(read)
    if bad:
        return errored(f"cannot read the cluster state: {read.error}", **read.evidence())
    state = read.observation
    templates = select(pod_templates(state, ref.namespace), ref.namespace, ref.selector)
    if not templates:
        blocked = state.unreadable("Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "NIMService")
        if blocked:
            return errored(f"no workloads found, and some could not be read: {blocked}", source=state.source)
        return no_workloads(ref.namespace, ref.selector, state.source)
    return Workloads(state, tuple(templates), ref.namespace)


def option(target: Any, name: str, default: Any) -> Any:
    return (getattr(target.kubernetes, "options", None) or {}).get(name, default)
