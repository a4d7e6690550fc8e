"""The Kubernetes source: the target's cluster state (read once per session) and a deployment's workloads.

Suites of the posture families call :func:`judge_workloads` with a judge; it reads the
deployment's :class:`Workloads` through :func:`for_deployment` and returns either the judge's
Outcome or the one the read produced (error: the cluster could not be read; not applicable: no
workloads match). Whether a deployment can be judged from cluster state at all is
:func:`unavailable`, the applicability predicate every posture family registers. A manifest or
snapshot that cannot be parsed is a configuration error (:class:`nimwarden.errors.ConfigError`,
exit 2), not a finding.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from nimwarden.errors import ConfigError
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


def unavailable(target: Any, deployment: Any = None) -> str | None:
    """Why the target (and the deployment, when given) cannot be judged from cluster state, or None."""
    if target.kubernetes.source == "none":
        return "the target profile has no kubernetes source (kubernetes.source: none)"
    if deployment is not None and not deployment.kubernetes.namespace and not deployment.kubernetes.selector:
        return f"deployment {deployment.name} declares no kubernetes namespace or selector"
    return None


def no_workloads(namespace: str | None, selector: Mapping[str, str], source: str) -> Outcome:
    sel = ",".join(f"{k}={v}" for k, v in selector.items()) or "(any)"
    return not_applicable(f"no workloads match selector {sel} in namespace {namespace or '(all)'}", source=source)


def for_deployment(target: Any, deployment: Any) -> Workloads | Outcome:
    """The workloads of one deployment (namespace + selector from the profile), or the Outcome to record."""
    reason = unavailable(target, deployment)
    if reason:
        return not_applicable(reason)
    source, ref = target.kubernetes, deployment.kubernetes
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


def judge_workloads(target: Any, deployment: Any, judge: Callable[..., Outcome], *args: Any, state: bool = False,
                    subject: Callable[[Workloads], str] | None = None) -> Outcome:
    """``judge(templates, *args)`` (``judge(state, templates, *args)`` with ``state=True``) on the
    deployment's workloads, with the workloads as the subject unless the judge named one; or the
    Outcome the read gave (error, not applicable) as it is."""
    w = for_deployment(target, deployment)
    if isinstance(w, Outcome):
        return w
    out = judge(w.state, w.templates, *args) if state else judge(w.templates, *args)
    if out.subject:
        return out
    return replace(out, subject=subject(w) if subject else w.subject)


def judge_state(target: Any, judge: Callable[[ClusterState], Outcome]) -> Outcome:
    """``judge(state)`` on the target's whole cluster state (target-wide controls), or the Outcome the read gave."""
    reason = unavailable(target)
    if reason:
        return not_applicable(reason)
    read = cluster_state(target.kubernetes, timeout_s=max(getattr(target.timeouts, "read_s", 5.0), 5.0))
    if not read.completed:
        return errored(f"cannot read the cluster state: {read.error}", **read.evidence())
    return judge(read.observation)


def option(target: Any, name: str, default: Any) -> Any:
    return (getattr(target.kubernetes, "options", None) or {}).get(name, default)
