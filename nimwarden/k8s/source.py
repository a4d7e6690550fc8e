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
from pathlib import Path
from typing import Any

from nimwarden.errors import ConfigError
from nimwarden.k8s.model import ClusterState, K8sObject
from nimwarden.k8s.nemo import NEMO_CR_KINDS
from nimwarden.k8s.resources import JUDGED_KINDS
from nimwarden.k8s.units import merge_units
from nimwarden.k8s.workloads import WORKLOAD_KINDS, PodTemplate, pod_templates, select
from nimwarden.outcome import Attempt, Outcome, errored, incomplete, not_applicable

_cache: dict[tuple, Attempt[ClusterState]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Workloads:
    state: ClusterState  # what the workloads' apply unit sees (the whole state when it is one unit)
    templates: tuple[PodTemplate, ...]
    namespace: str | None
    hooks: tuple[PodTemplate, ...] = ()  # Helm hook objects the selector matches: judged apart
    units: tuple[str, ...] = ()  # the apply units the workloads lie in, when the source is several

    @property
    def subject(self) -> str:
        """One object: the first workload (every object judged is in the evidence, ``objects``)."""
        return self.templates[0].ref

    def per_unit(self, whole: ClusterState) -> list[tuple[str, Workloads]]:
        """The workloads of each apply unit, each with what that unit sees (``whole``: the state read)."""
        return [(u, Workloads(whole.view(u), tuple(t for t in self.templates if t.owner.unit == u), self.namespace,
                              tuple(t for t in self.hooks if t.owner.unit == u), (u,))) for u in self.units]


def templates_of(state: ClusterState) -> list[PodTemplate]:
    """Every pod template of the state, derived once per state; in a state of several apply units each
    unit's workloads are derived from what that unit sees (its operator resources, runtimes, owners)."""
    def make() -> list[PodTemplate]:
        if not state.units:
            return pod_templates(state)
        out: list[PodTemplate] = []
        for unit in state.units:
            out.extend(t for t in pod_templates(state.view(unit.label)) if t.owner.unit == unit.label)
        return out
    return state.memo("templates", make)


def _selected(state: ClusterState, namespace: str | None, selector: Mapping[str, str]) -> list[PodTemplate]:
    """``select`` through an index of the templates by namespace and label: no scan of every workload
    per deployment."""
    index = state.memo("templates-by-label", lambda: _label_index(templates_of(state)))
    candidates = [index.get(("ns", namespace), ()) if namespace is not None else templates_of(state)]
    candidates += [index.get((k, v), ()) for k, v in selector.items()]
    smallest = min(candidates, key=len)
    return select(list(smallest), namespace, selector)


def _label_index(templates: list[PodTemplate]) -> dict:
    index: dict = {}
    for t in templates:
        index.setdefault(("ns", t.owner.namespace), []).append(t)
        for k, v in t.labels.items():
            index.setdefault((k, v), []).append(t)
    return index


def _within(file: str | None, unit: Any) -> bool:
    if unit is None:
        return True
    if not file:
        return False
    f, u = Path(file).resolve(), Path(unit).resolve()
    return f == u or u in f.parents


def _entries(source: Any) -> tuple:
    entries = getattr(source, "manifest_entries", None)
    return tuple(entries()) if callable(entries) else tuple((p, None) for p in source.paths)


def _key(source: Any) -> tuple:
    """The cache key of a ``kubernetes:`` section. A section is a frozen dataclass asked for its state once per
    control and deployment (100,000 times in a repository audit): its key is made once per section object."""
    known = _keys.get(id(source))
    if known is not None and known[0] is source:
        return known[1]
    key = (source.source, tuple((str(p), ns) for p, ns in _entries(source)), getattr(source, "default_namespace", None),
           str(source.kubeconfig), source.context, tuple(source.namespaces))
    if getattr(type(source), "__dataclass_params__", None) is not None and type(source).__dataclass_params__.frozen:
        if len(_keys) > 64:
            _keys.clear()
        _keys[id(source)] = (source, key)  # the section itself is held: its id is never another's while the key is kept
    return key


_keys: dict[int, tuple[Any, tuple]] = {}


def read_state(source: Any, timeout_s: float = 10.0, read_already: Mapping | None = None) -> ClusterState:
    from nimwarden.k8s.manifests import load_manifests
    from nimwarden.k8s.snapshot import load_snapshot

    if source.source == "manifests":  # read_already: objects of some files, read by another process (k8s.beside)
        return load_manifests(_entries(source), getattr(source, "default_namespace", None), read_already)
    if source.source == "snapshot":
        return load_snapshot(source.paths)
    if source.source == "live":
        from nimwarden.k8s.live import client_configuration, read_cluster

        cfg = client_configuration(source.kubeconfig, source.context)
        return read_cluster(cfg, namespaces=source.namespaces, timeout_s=timeout_s)
    raise ValueError(f"unknown kubernetes source {source.source!r}")


def cluster_state(source: Any, timeout_s: float = 10.0, read_already: Mapping | None = None) -> Attempt[ClusterState]:
    """The cluster state for a target's ``kubernetes:`` section, read once per process."""
    key = _key(source)
    with _lock:
        if key in _cache:
            return _cache[key]
        probe = f"k8s.{source.source}"
        request = f"{source.source}: {', '.join(map(str, source.paths)) or source.context or 'default context'}"
        t0 = time.monotonic()
        try:
            result = Attempt(probe, request, read_state(source, timeout_s, read_already), None, time.monotonic() - t0)
        except ConfigError:
            raise  # a broken manifest/snapshot is the user's configuration error (exit 2), not a finding
        except Exception as exc:  # noqa: BLE001 - becomes an error outcome, never a pass
            result = Attempt(probe, request, None, f"{type(exc).__name__}: {exc}", time.monotonic() - t0)
        _cache[key] = result
        return result


def cached(source: Any, keep: Attempt[ClusterState] | None = None) -> Attempt[ClusterState] | None:
    """The state this process already read for a ``kubernetes:`` section, or None (nothing is read); ``keep``: a
    state read by another process (:mod:`nimwarden.k8s.beside`) to keep as this one's, unless it read one itself."""
    with _lock:
        return _cache.setdefault(_key(source), keep) if keep is not None else _cache.get(_key(source))


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
                 templates: list[PodTemplate] | None = None, unit: str = "") -> Outcome:
    """An error: the deployment's selector matches no workload, so nothing of it can be judged. Names
    the nearest workload found (or, with none, what the source does hold)."""
    sel = _labels(selector) or "(any)"
    where = f"no workload matched selector {sel} in namespace {namespace or '(all)'}{unit}"
    everything = templates if templates is not None else templates_of(state)
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
    unit = getattr(ref, "unit", None)
    key = ("workloads", ref.namespace, tuple(sorted(ref.selector.items())), str(unit) if unit else None)
    return state.memo(key, lambda: _workloads(state, ref.namespace, ref.selector, unit))


def _workloads(state: ClusterState, namespace: str | None, selector: Mapping[str, str], unit: Any) -> Workloads | Outcome:
    matched = [t for t in _selected(state, namespace, selector) if _within(t.owner.file, unit)]
    templates = [t for t in matched if not t.hook]
    where = f" in {unit}" if unit else ""
    if not templates:
        blocked = state.unreadable("Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "NIMService", *NEMO_CR_KINDS)
        if blocked:
            return errored(f"no workloads found, and some could not be read: {blocked}", source=state.source)
        if matched:
            return errored(f"only Helm hook objects match selector {_labels(selector) or '(any)'} in namespace "
                           f"{namespace or '(all)'}{where} ({', '.join(f'{t.ref} ({t.hook})' for t in matched)}); "
                           "they are not the release's workload", source=state.source)
        everything = [t for t in templates_of(state) if _within(t.owner.file, unit)] if unit else None
        return no_workloads(namespace, selector, state, everything, where)
    hooks = tuple(t for t in matched if t.hook)
    units = tuple(dict.fromkeys(t.owner.unit for t in templates)) if state.units else ()
    seen = state.view(units[0]) if len(units) == 1 else state
    return Workloads(seen, tuple(templates), namespace, hooks, units)


def judge_workloads(target: Any, deployment: Any, judge: Callable[..., Outcome], *args: Any, state: bool = False,
                    subject: Callable[[Workloads], str] | None = None) -> Outcome:
    """``judge(templates, *args)`` (``judge(state, templates, *args)`` with ``state=True``) on the
    deployment's workloads, with the workloads as the subject unless the judge named one; or the
    Outcome the read gave (error, not applicable) as it is."""
    w = for_deployment(target, deployment)
    if isinstance(w, Outcome):
        return w
    if len(w.units) > 1:  # the same workload in several apply units (variants side by side): each judged in its own
        return merge_units([(u, _judged(part, judge, args, state, subject)) for u, part in w.per_unit(w.state)])
    out = _judged(w, judge, args, state, subject)
    return merge_units([(w.units[0], out)]) if w.units else out


def _judged(w: Workloads, judge: Callable[..., Outcome], args: tuple, state: bool,
            subject: Callable[[Workloads], str] | None) -> Outcome:
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
    be read are left out; with none readable the first read's Outcome is returned. A source of several
    apply units is judged unit by unit (each with the deployments' workloads in it) and merged."""
    if target.kubernetes.source == "none":
        return not_applicable("the target profile has no kubernetes source (kubernetes.source: none)")
    templates: list[PodTemplate] = []
    seen: set[int] = set()
    for dep in target.deployments:
        w = for_deployment(target, dep)
        if isinstance(w, Outcome):
            continue
        for t in w.templates:
            if id(t) not in seen:
                seen.add(id(t))
                templates.append(t)
    read = cluster_state(target.kubernetes, timeout_s=max(getattr(target.timeouts, "read_s", 5.0), 5.0))
    if incomplete(read):
        return errored(f"cannot read the cluster state: {read.error}", **read.evidence())
    whole = read.observation
    if whole.units:
        return merge_units([(u.label, _target_judged(whole.view(u.label), [t for t in templates if t.owner.unit == u.label], judge, args))
                            for u in whole.units])
    return _target_judged(whole, templates, judge, args)


def _target_judged(state: ClusterState, templates: list[PodTemplate], judge: Callable[..., Outcome], args: tuple) -> Outcome:
    out = locate(judge(state, templates, *args), state, templates)
    if out.subject:
        return out
    first_obj = (out.evidence.get("locations") or [{}])[0].get("object")
    return replace(out, subject=first_obj or state.source)


def _relative(file: str) -> str:
    import os

    key = (os.getcwd(), file)
    known = _relatives.get(key)
    if known is not None:
        return known
    try:
        rel = os.path.relpath(file)
    except ValueError:
        return file
    out = file if rel.startswith("..") else rel
    if len(_relatives) < 100_000:  # one file names many findings
        _relatives[key] = out
    return out


_relatives: dict[tuple[str, str], str] = {}


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
    whole = read.observation
    if whole.units:
        return merge_units([(u.label, judge(whole.view(u.label))) for u in whole.units])
    return judge(whole)


def per_unit(target: Any, deployment: Any, judge: Callable[[str | None], Outcome]) -> Outcome:
    """``judge(unit)`` for each apply unit the deployment's workloads lie in (every unit for a target-wide
    control, ``deployment`` None), merged; ``judge(None)`` (the whole state) when the source is one unit.
    For families that ask their own questions of a unit's view (the network-policy model)."""
    if unavailable(target):
        return judge(None)
    read = cluster_state(target.kubernetes, timeout_s=max(getattr(target.timeouts, "read_s", 5.0), 5.0))
    if not read.completed or not read.observation.units:
        return judge(None)
    if deployment is None:
        return merge_units([(u.label, judge(u.label)) for u in read.observation.units])
    w = for_deployment(target, deployment)
    if isinstance(w, Outcome):
        return w
    return merge_units([(u, judge(u)) for u in w.units])


def option(target: Any, name: str, default: Any) -> Any:
    return (getattr(target.kubernetes, "options", None) or {}).get(name, default)
