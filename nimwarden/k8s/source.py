"""The Kubernetes source: the target's cluster state (read once per session) and a deployment's workloads.

Suites of the posture families call :func:`judge_workloads` with a judge; it reads the
deployment's :class:`Workloads` through :func:`for_deployment` and returns either the judge's
Outcome or the one the read produced (error: the cluster could not be read, or no workload matches
the deployment's selector — the error names the nearest match found; never a silent
not_applicable that would let the deployment read "compliant"). Helm hook objects
(``helm.sh/hook``) are not part of the deployment's workload: they are judged apart and reported
in the evidence (``hooks``). Whether a deployment can be judged from cluster state at all is
:func:`unavailable`, the applicability predicate every posture family registers. A manifest or
snapshot that cannot be parsed is a configuration error (:class:`nimwarden.errors.ConfigError`,
exit 2), not a finding; the CLI and the plugin read it before any control runs.

Every finding's object and field is located (:func:`locate`): for manifest sources the file and
the line of the field, so that SARIF points code scanning at it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from nimwarden.errors import ConfigError
from nimwarden.k8s.model import ClusterState, K8sObject
from nimwarden.k8s.nemo import NEMO_CR_KINDS
from nimwarden.k8s.resources import JUDGED_KINDS
from nimwarden.k8s.workloads import WORKLOAD_KINDS, PodTemplate, pod_templates, select
from nimwarden.outcome import Attempt, Outcome, errored, incomplete, not_applicable

_cache: dict[tuple, Attempt[ClusterState]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Workloads:
    state: ClusterState
    templates: tuple[PodTemplate, ...]
    namespace: str | None
    hooks: tuple[PodTemplate, ...] = ()  # Helm hook objects the selector matches: judged apart

    @property
    def subject(self) -> str:
        """One object: the first workload (every object judged is in the evidence, ``objects``)."""
        return self.templates[0].ref


def _entries(source: Any) -> tuple:
    entries = getattr(source, "manifest_entries", None)
    return tuple(entries()) if callable(entries) else tuple((p, None) for p in source.paths)


def _key(source: Any) -> tuple:
    return (source.source, tuple((str(p), ns) for p, ns in _entries(source)), getattr(source, "default_namespace", None),
            str(source.kubeconfig), source.context, tuple(source.namespaces))


def read_state(source: Any, timeout_s: float = 10.0) -> ClusterState:
    from nimwarden.k8s.manifests import load_manifests
    from nimwarden.k8s.snapshot import load_snapshot

    if source.source == "manifests":
        return load_manifests(_entries(source), getattr(source, "default_namespace", None))
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


def cached(source: Any) -> Attempt[ClusterState] | None:
    """The state this process already read for a ``kubernetes:`` section, or None (nothing is read)."""
    with _lock:
        return _cache.get(_key(source))


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


def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def nearest(templates: list[PodTemplate], namespace: str | None, selector: Mapping[str, str]) -> PodTemplate | None:
    """The workload closest to a selector that matched nothing: most selector labels matched, then same namespace."""
    def score(t: PodTemplate) -> tuple:
        labels = sum(1 for k, v in selector.items() if t.labels.get(k) == v)
        values = sum(1 for v in selector.values() if v in t.labels.values())  # app=nim-llm vs app.kubernetes.io/name=nim-llm
        keys = sum(1 for k in selector if k in t.labels)
        return (labels, values, namespace is None or t.owner.namespace == namespace, not t.hook, keys)
    return max(templates, key=score) if templates else None


def no_workloads(namespace: str | None, selector: Mapping[str, str], state: ClusterState,
                 templates: list[PodTemplate] | None = None) -> Outcome:
    """An error: the deployment's selector matches no workload, so nothing of it can be judged. Names
    the nearest workload found (or, with none, what the source does hold)."""
    sel = _labels(selector) or "(any)"
    where = f"no workload matched selector {sel} in namespace {namespace or '(all)'}"
    everything = templates if templates is not None else pod_templates(state)
    best = nearest(everything, namespace, selector)
    if best is not None:
        hook = f", a Helm {best.hook} hook" if best.hook else ""
        found = f"nearest found: {best.ref}{hook} (labels {_labels(best.labels) or 'none'})"
        if len(everything) > 1:
            found += f" among {len(everything)} workloads"
    else:
        kinds = inventory(state)
        held = ", ".join(f"{k} {n}" for k, n in sorted(kinds["objects"].items())) or "nothing"
        found = f"the source holds no workload at all ({held})"
    return errored(f"{where}; {found}: fix kubernetes.selector / namespace of the deployment, or the source",
                   source=state.source, selector=dict(selector), namespace=namespace)


def inventory(state: ClusterState) -> dict[str, Any]:
    """What the source holds: objects per kind, the kinds no control reads ("not judged"), the Helm hooks."""
    objects: dict[str, int] = {}
    for o in state.objects:
        objects[o.kind] = objects.get(o.kind, 0) + 1
    not_judged = {k: n for k, n in sorted(objects.items()) if k not in JUDGED_KINDS and k not in WORKLOAD_KINDS}
    hooks = sorted(f"{o.ref} ({o.hook})" for o in state.objects if o.hook)
    return {"source": state.source, "objects": dict(sorted(objects.items())), "not_judged": not_judged, "hooks": hooks}


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
    matched = select(pod_templates(state, ref.namespace), ref.namespace, ref.selector)
    templates = [t for t in matched if not t.hook]
    if not templates:
        blocked = state.unreadable("Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "NIMService", *NEMO_CR_KINDS)
        if blocked:
            return errored(f"no workloads found, and some could not be read: {blocked}", source=state.source)
        if matched:
            return errored(f"only Helm hook objects match selector {_labels(ref.selector) or '(any)'} in namespace "
                           f"{ref.namespace or '(all)'} ({', '.join(f'{t.ref} ({t.hook})' for t in matched)}); "
                           "they are not the release's workload", source=state.source)
        return no_workloads(ref.namespace, ref.selector, state)
    return Workloads(state, tuple(templates), ref.namespace, tuple(t for t in matched if t.hook))


def judge_workloads(target: Any, deployment: Any, judge: Callable[..., Outcome], *args: Any, state: bool = False,
                    subject: Callable[[Workloads], str] | None = None) -> Outcome:
    """``judge(templates, *args)`` (``judge(state, templates, *args)`` with ``state=True``) on the
    deployment's workloads, with the workloads as the subject unless the judge named one; or the
    Outcome the read gave (error, not applicable) as it is."""
    w = for_deployment(target, deployment)
    if isinstance(w, Outcome):
        return w
    out = judge(w.state, w.templates, *args) if state else judge(w.templates, *args)
    if w.hooks and out.status.value in ("pass", "fail"):
        apart = judge(w.state, w.hooks, *args) if state else judge(w.hooks, *args)
        out = replace(out, evidence={**out.evidence, "hooks": {
            "objects": [f"{t.ref} ({t.hook})" for t in w.hooks], "status": apart.status.value,
            "findings": list(apart.evidence.get("findings") or ()),
            "note": "Helm hook objects (helm.sh/hook) run apart from the release's workload: judged apart, not counted in this verdict"}})
    out = locate(out, w.state, w.templates)
    if out.subject:
        return out
    first = (out.evidence.get("locations") or [{}])[0].get("object") if out.status.value == "fail" else None
    return replace(out, subject=first or (subject(w) if subject else w.subject))


def judge_target(target: Any, judge: Callable[..., Outcome], *args: Any) -> Outcome:
    """``judge(state, templates, *args)`` once for the whole target: the templates of every deployment
    (for a target-wide control that judges what lies outside them). Deployments whose workloads cannot
    be read are left out; with none readable the first read's Outcome is returned."""
    if target.kubernetes.source == "none":
        return not_applicable("the target profile has no kubernetes source (kubernetes.source: none)")
    templates: list[PodTemplate] = []
    state, first = None, None
    for dep in target.deployments:
        w = for_deployment(target, dep)
        if isinstance(w, Outcome):
            first = first or w
            continue
        state = w.state
        templates.extend(t for t in w.templates if t not in templates)
    if state is None:
        read = cluster_state(target.kubernetes, timeout_s=max(getattr(target.timeouts, "read_s", 5.0), 5.0))
        if incomplete(read):
            return errored(f"cannot read the cluster state: {read.error}", **read.evidence())
        state = read.observation
    out = locate(judge(state, templates, *args), state, templates)
    if out.subject:
        return out
    first_obj = (out.evidence.get("locations") or [{}])[0].get("object")
    return replace(out, subject=first_obj or state.source)


def _relative(file: str) -> str:
    import os

    try:
        rel = os.path.relpath(file)
    except ValueError:
        return file
    return file if rel.startswith("..") else rel


def locate(out: Outcome, state: ClusterState, templates=()) -> Outcome:
    """Each finding's object (and, for manifest sources, the file and the line of its field) in the evidence."""
    locations = out.evidence.get("locations")
    if not locations:
        return out
    owners: dict[str, K8sObject] = {t.owner.ref: t.owner for t in templates}
    placed = []
    for loc in locations:
        obj = owners.get(loc.get("object")) or state.by_ref(str(loc.get("object")))
        entry = dict(loc)
        if obj is not None and obj.rendered_from:
            entry["rendered_from"] = obj.rendered_from  # the operator makes it from this CR: the CR's line is given
        if obj is not None and obj.file:
            entry["file"] = _relative(obj.file)
            line = obj.line_of(str(loc.get("path") or ""))
            if line:
                entry["line"] = line
        placed.append(entry)
    evidence = {**out.evidence, "locations": placed}
    if placed[0].get("file"):
        evidence["file"], evidence["line"] = placed[0]["file"], placed[0].get("line")
    return replace(out, evidence=evidence)


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
