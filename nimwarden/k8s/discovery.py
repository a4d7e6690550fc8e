"""Discovery: the Triton, NIM and NeMo deployments a cluster state holds, with the ways in to each.

From one :class:`ClusterState` (manifests, a snapshot, or a live read made here with get/list only)
:func:`discover` finds

- NIMService resources (NIM Operator);
- Deployments, StatefulSets and DaemonSets with a container that runs ``tritonserver`` (command,
  args or image) or a NIM image (``nvcr.io/nim/…``);
- KServe InferenceServices whose predictor is Triton or NIM (``predictor.triton``, model format
  ``triton``, a runtime whose name or containers say so, or their own containers);

- NeMo workloads (kind ``nemo``): the NIM Operator's NeMo resources (NemoDatastore, NemoEntitystore,
  NemoCustomizer, NemoEvaluator, NemoGuardrail), and Deployments / StatefulSets running a NeMo image,
  the NeMo Platform (``nemo services run``), ``nemoguardrails server`` or a NeMo-only port
  (:mod:`nimwarden.k8s.nemo`); each Service port becomes the endpoint its service answers on
  (``nemo``, ``nemo_datastore`` …), the NeMo Platform chart's Envoy proxy ``nemo_gateway``;

skipping the workloads an operator renders for one of those (a NIMService's or a NeMo resource's
Deployment, a KServe predictor's), so one workload is one deployment. For each it collects the Services that select its
pods (or the one the operator would create), their ports classified as Triton/NIM endpoints, the
Ingresses / HTTPRoutes / Routes in front of those Services and the gateway they name. Turning that
into a target profile is :mod:`nimwarden.k8s.profile_yaml`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nimwarden.k8s.exposure import workload_services
from nimwarden.k8s.model import ClusterState, K8sObject
from nimwarden.k8s.nemo import NEMO_CR_KINDS, PLATFORM_COMPONENT, SERVICES, NemoService, service_of
from nimwarden.k8s.resources import BY_KIND, Resource
from nimwarden.k8s.ways_in import (
    Front,
    ServicePort,
    Way,
    argv_tokens,
    classify_container,
    container_ports,
    flag_value,
    fronts_of,
    restricted_header,
    way_of,
)
from nimwarden.k8s.workloads import PodTemplate

CONTROLLERS = ("Deployment", "StatefulSet", "DaemonSet")
KSERVE_LABEL = "serving.kserve.io/inferenceservice"

# What discovery reads: the kinds it needs and nothing else. Kinds the harness's resource table does
# not (yet) carry are declared here; deploy/k8s/rbac-read.yaml grants get/list on every one of them.
_EXTRA = {r.kind: r for r in (
    Resource("InferenceService", "serving.kserve.io", "v1beta1", "inferenceservices", True, optional=True),
    Resource("ServingRuntime", "serving.kserve.io", "v1alpha1", "servingruntimes", True, optional=True),
    Resource("ClusterServingRuntime", "serving.kserve.io", "v1alpha1", "clusterservingruntimes", False, optional=True),
)}
DISCOVERY_KINDS = ("Service", *CONTROLLERS, "Ingress", "NIMService", "HTTPRoute", "Route",
                   "InferenceService", "ServingRuntime", "ClusterServingRuntime", *NEMO_CR_KINDS)


def discovery_resources() -> list[Resource]:
    return [BY_KIND.get(k) or _EXTRA[k] for k in DISCOVERY_KINDS]


@dataclass
class Found:
    name: str  # the profile's deployment name
    kind: str  # triton | nim | nemo
    namespace: str
    ref: str  # the object found: Deployment/ns/name, NIMService/ns/name, InferenceService/ns/name
    why: str
    image: str
    selector: dict[str, str]
    ways: list[Way] = field(default_factory=list)
    fronts: list[Front] = field(default_factory=list)
    restricted_header: str | None = None  # the header --http-restricted-api names (never its value)
    grpc_tls: bool = False
    notes: list[str] = field(default_factory=list)
    unit: str | None = None  # the apply unit (folder or file) it was found in, when the manifests are several units
    unit_label: str = ""


@dataclass(frozen=True)
class Discovery:
    source: str
    found: tuple[Found, ...]
    unreadable: Mapping[str, str]  # kind -> why (a denied permission)
    absent: tuple[str, ...]  # optional APIs the cluster does not serve


# ----------------------------------------------------------------------------------- reading


def read_live(configuration: Any, namespaces: Sequence[str] = (), timeout_s: float = 10.0):
    """Read only what discovery needs, with get/list requests only (nimwarden.k8s.live.read_cluster over
    discovery's resources). Returns (state, request paths)."""
    from nimwarden.k8s.live import read_cluster

    requests: list[str] = []
    state = read_cluster(configuration, namespaces, timeout_s, resources=discovery_resources(), requests=requests)
    return state, requests


class _Templates:
    """The pod templates discovery looks at, found by who owns them and by the labels it asks about.
    Each lookup was a scan of every template, once per custom resource or InferenceService: quadratic in a
    cluster (or an apply unit) with thousands of them. Lists keep the templates' order."""

    def __init__(self, templates: Sequence[PodTemplate]):
        self.all = list(templates)
        self._owned: dict[tuple, list[PodTemplate]] = {}  # (namespace, ownerReference kind, name): controllers'
        self._of: dict[int, list[PodTemplate]] = {}  # id(owner): a CR's own (rendered) templates
        self._by_label: dict | None = None  # source's index of templates by (label, value), made when first asked
        for t in self.all:
            self._of.setdefault(id(t.owner), []).append(t)
            if t.owner.kind in CONTROLLERS:
                keys = {(t.owner.namespace, r.get("kind"), r.get("name")) for r in t.owner.metadata.get("ownerReferences") or ()}
                for key in keys:
                    self._owned.setdefault(key, []).append(t)

    def owned_by(self, kind: str, obj: K8sObject) -> list[PodTemplate]:
        """The controllers' templates whose owner names ``obj`` (of ``kind``) among its ownerReferences."""
        return list(self._owned.get((obj.namespace, kind, obj.name), ()))

    def of(self, obj: K8sObject) -> list[PodTemplate]:
        """The templates ``obj`` itself holds (a CR's pod, as the operator would render it)."""
        return list(self._of.get(id(obj), ()))

    def labelled(self, namespace: str | None, key: str, value: str) -> list[PodTemplate]:
        """The templates in ``namespace`` whose pods carry the label ``key: value``."""
        if self._by_label is None:
            from nimwarden.k8s.source import _label_index

            self._by_label = _label_index(self.all)
        return [t for t in self._by_label.get((key, value), ()) if t.owner.namespace == namespace]


# ----------------------------------------------------------------------------------- the three shapes


def _controller_found(state: ClusterState, tpl: PodTemplate) -> Found | None:
    hits = [(c, classify_container(c)) for path, c in tpl.containers() if ".initContainers[" not in path]
    hits = [(c, h) for c, h in hits if h]
    if not hits:
        return None
    (container, (kind, why)) = next(((c, h) for c, h in hits if h[0] == "nim"), hits[0])
    obj = tpl.owner
    selector = dict(((obj.spec.get("selector") or {}).get("matchLabels")) or {}) or {
        k: v for k, v in tpl.labels.items() if k != "pod-template-hash"}
    tokens = argv_tokens(container)
    found = Found(obj.name, kind, str(obj.namespace), obj.ref, why, str(container.get("image") or ""), selector,
                  restricted_header=restricted_header(tokens),
                  grpc_tls=(flag_value(tokens, "--grpc-use-ssl") or "").lower() in ("true", "1"))
    by_target = container_ports([c for c, _ in hits], kind)
    found.ways = [way_of(s, by_target) for s in workload_services(state, [tpl])]
    found.fronts = fronts_of(state, [tpl])
    return found


def _nimservice_found(state: ClusterState, obj: K8sObject, templates: _Templates) -> Found:
    image = obj.spec.get("image") or {}
    owned = templates.owned_by("NIMService", obj)
    selector = {"app.kubernetes.io/name": obj.name}
    mine = owned or templates.of(obj)
    if owned:
        selector = dict(((owned[0].owner.spec.get("selector") or {}).get("matchLabels")) or {}) or selector
    found = Found(obj.name, "nim", str(obj.namespace), obj.ref, "a NIMService (NIM Operator)",
                  f"{image.get('repository', '')}:{image.get('tag', 'latest')}", selector)
    by_target = {8000: "http", "api": "http"}
    services = workload_services(state, mine)
    named = state.get("Service", obj.namespace, obj.name)
    if named is not None and named not in services:
        services.append(named)
    found.ways = [way_of(s, by_target) for s in services]
    if not found.ways:
        svc = (obj.spec.get("expose") or {}).get("service") or {}
        port = int(svc.get("port") or 8000)
        found.ways = [Way(str(obj.namespace), obj.name, str(svc.get("type") or "ClusterIP"), (ServicePort("http", port, "api"),), (), True)]
        found.notes.append(f"Service {obj.name} is the one the NIM Operator creates (not in the cluster state read)")
    found.fronts = fronts_of(state, mine)
    return found


def _isvc_kind(state: ClusterState, obj: K8sObject) -> tuple[str, str, list[Mapping[str, Any]]] | None:
    predictor = obj.spec.get("predictor") or {}
    containers = list(predictor.get("containers") or ())
    if predictor.get("triton") is not None:
        return "triton", "an InferenceService with a triton predictor", [predictor["triton"]]
    model = predictor.get("model") or {}
    runtime = str(model.get("runtime") or "")
    if runtime:
        rt = state.get("ServingRuntime", obj.namespace, runtime) or state.get("ClusterServingRuntime", None, runtime)
        if rt is not None:
            containers += list(rt.spec.get("containers") or ())
    for c in containers:
        hit = classify_container(c)
        if hit:
            return hit[0], f"an InferenceService whose {hit[1]}", containers
    fmt = str((model.get("modelFormat") or {}).get("name") or "").lower()
    if "nim" in runtime.lower().split("-"):
        return "nim", f"an InferenceService with the runtime {runtime}", containers
    if "triton" in runtime.lower() or fmt == "triton":
        return "triton", f"an InferenceService with {'the runtime ' + runtime if runtime else 'model format triton'}", containers
    return None


def _isvc_found(state: ClusterState, obj: K8sObject, templates: _Templates) -> Found | None:
    hit = _isvc_kind(state, obj)
    if hit is None:
        return None
    kind, why, containers = hit
    selector = {KSERVE_LABEL: obj.name}
    mine = templates.labelled(obj.namespace, KSERVE_LABEL, obj.name)
    image = next((str(c.get("image")) for c in containers if c.get("image")), "")
    found = Found(obj.name, kind, str(obj.namespace), obj.ref, why, image, selector)
    tokens = [t for c in containers for t in argv_tokens(c)]
    found.restricted_header = restricted_header(tokens)
    by_target = {**container_ports(containers, kind), 8080: "http", 80: "http", 9000: "grpc"}
    found.ways = [way_of(s, by_target) for s in workload_services(state, mine)]
    if not found.ways:
        found.ways = [Way(str(obj.namespace), f"{obj.name}-predictor", "ClusterIP", (ServicePort("http", 80, "http"),), (), True)]
        found.notes.append(f"Service {obj.name}-predictor is the one KServe creates (not in the cluster state read)")
    found.fronts = fronts_of(state, mine)
    url = str((obj.body.get("status") or {}).get("url") or "")
    m = re.match(r"(https?)://([^/:]+)", url)
    if m:
        found.fronts.append(Front(obj.ref + " status.url", m.group(2), m.group(1) == "https", "/", "KServe's ingress gateway"))
    return found


def _owned_by_cr(obj: K8sObject) -> bool:
    return any(r.get("kind") in NEMO_CR_KINDS for r in obj.metadata.get("ownerReferences") or ())


def _nemo_found(state: ClusterState, obj: K8sObject, service: NemoService, why: str, mine: Sequence[PodTemplate],
                templates: _Templates) -> Found:
    """A NeMo workload: its Services' ports named by the endpoint its service answers on; the NeMo
    Platform's Envoy proxy (same release) as ``nemo_gateway``; the ports that are no API left out, with a note."""
    controller = next((t.owner for t in mine if t.owner.kind in CONTROLLERS), None)
    if controller is not None:
        selector = dict(((controller.spec.get("selector") or {}).get("matchLabels")) or {}) or {
            k: v for k, v in mine[0].labels.items() if k != "pod-template-hash"}
    else:
        from nimwarden.k8s.nemo_operator import selector_labels

        selector = selector_labels(obj)
    image = next((str(c.get("image")) for p, c in mine[0].containers() if ".initContainers[" not in p), "")
    found = Found(obj.name, "nemo", str(obj.namespace), obj.ref, f"{service.title}: {why}", image, selector)
    by_target: dict[Any, str | None] = {p: service.endpoint for p in service.ports}
    for tpl in mine:
        for _path, c in tpl.containers():
            for p in c.get("ports") or ():
                endpoint = None if p.get("name") == "internal" or p.get("containerPort") == 9009 else service.endpoint
                by_target[p.get("containerPort")] = endpoint
                if p.get("name"):
                    by_target[p["name"]] = endpoint
    skipped = []
    for svc in workload_services(state, mine):
        way = way_of(svc, {})
        ports = [ServicePort(by_target.get(p.get("targetPort", p.get("port"))) or by_target.get(p.get("port")), int(p["port"]),
                             str(p.get("name") or ""), p.get("nodePort"))
                 for p in svc.spec.get("ports") or () if isinstance(p.get("port"), int)]
        skipped += [f"{svc.name}:{p.port}/{p.name}" for p in ports if not p.endpoint]
        found.ways.append(Way(way.namespace, way.name, way.type, tuple(p for p in ports if p.endpoint), way.external,
                              svc.rendered_from is not None))
    if skipped:
        found.notes.append(f"not an API, not probed: {', '.join(skipped)} (the Customizer's training-progress callback)")
    if any(w.inferred for w in found.ways):
        found.notes.append(f"Service {obj.name} is the one the NIM Operator creates (not in the cluster state read)")
    fronted = list(mine)
    if service.key == "platform":
        release = mine[0].labels.get("app.kubernetes.io/instance")
        envoy = [t for t in templates.labelled(obj.namespace, PLATFORM_COMPONENT, "nmp-envoy")
                 if release is None or t.labels.get("app.kubernetes.io/instance") == release]
        for svc in workload_services(state, envoy):
            gw = way_of(svc, {})
            ports = tuple(ServicePort("nemo_gateway", p.port, p.name, p.node_port) for p in gw.ports if p.name != "admin")
            found.ways.append(Way(gw.namespace, gw.name, gw.type, ports, gw.external))
            found.notes.append(f"Service {svc.name} is the chart's Envoy proxy in front of the API (it strips the X-NMP-* identity headers)")
        fronted += envoy
    found.fronts = fronts_of(state, fronted)
    return found


def _nemo(state: ClusterState, templates: _Templates) -> list[Found]:
    """The NIM Operator's NeMo resources (through the Deployment it made, or the pod it would render), then every
    other controller whose main container is a NeMo service with an API."""
    out = []
    for kind, key in NEMO_CR_KINDS.items():
        for cr in state.of_kind(kind):
            mine = templates.owned_by(kind, cr) or templates.of(cr)
            if mine:  # none: outside the namespaces asked for
                out.append(_nemo_found(state, cr, SERVICES[key], f"a {kind} (NIM Operator)", mine, templates))
    for tpl in templates.all:
        owner = tpl.owner
        if owner.kind not in CONTROLLERS or _owned_by_cr(owner) or any(
                r.get("kind") == "NIMService" for r in owner.metadata.get("ownerReferences") or ()):
            continue
        hit = service_of(tpl)
        if hit is None or hit[0].endpoint is None or hit[0].key == "gateway":
            continue  # the platform's controller serves no API; its Envoy proxy is found with the API
        out.append(_nemo_found(state, owner, hit[0], hit[1], [tpl], templates))
    return out


# ----------------------------------------------------------------------------------- discovery


def _profile_name(raw: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    return name if name and name[0].isalnum() else f"d-{name}".strip("-")


def _found_in(state: ClusterState, templates: _Templates, wanted: set[str], mine: Any) -> list[Found]:
    """Every Triton / NIM / NeMo deployment of ``state`` whose object ``mine`` accepts, one per workload."""
    isvcs = {(o.namespace, o.name) for o in state.of_kind("InferenceService")}
    found: list[Found] = []
    for obj in state.of_kind("NIMService"):
        if mine(obj) and (not wanted or obj.namespace in wanted):
            found.append(_nimservice_found(state, obj, templates))
    for obj in state.of_kind("InferenceService"):
        if mine(obj) and (not wanted or obj.namespace in wanted):
            f = _isvc_found(state, obj, templates)
            if f is not None:
                found.append(f)
    for tpl in templates.all:
        owner = tpl.owner
        if owner.kind not in CONTROLLERS:
            continue
        if any(r.get("kind") == "NIMService" for r in owner.metadata.get("ownerReferences") or ()):
            continue  # the operator's rendering of a NIMService, found above
        if (owner.namespace, tpl.labels.get(KSERVE_LABEL)) in isvcs:
            continue  # KServe's predictor of an InferenceService, found above
        f = _controller_found(state, tpl)
        if f is not None:
            found.append(f)
    found += [f for f in _nemo(state, templates) if (obj := state.by_ref(f.ref)) is None or mine(obj)]
    return found


def _unit_names(labels: Sequence[str]) -> dict[str, str]:
    """A short name per apply unit for deployment names: its path below the units' common folder."""
    parts = [label.split("/") for label in labels]
    common = 0
    while parts and all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    return {label: "/".join(p[common:]).removesuffix(".yaml").removesuffix(".yml").removesuffix(".json")
            for label, p in zip(labels, parts)}


def discover(state: ClusterState, namespaces: Sequence[str] = ()) -> Discovery:
    """Every Triton / NIM / NeMo deployment in ``state`` (limited to ``namespaces`` when given), one per workload
    — per workload and apply unit, when the manifests are several units (variants side by side)."""
    from nimwarden.k8s.source import templates_of

    wanted = set(namespaces)
    templates = [t for t in templates_of(state) if not wanted or t.owner.namespace in wanted]
    if not state.units:
        found = _found_in(state, _Templates(templates), wanted, lambda o: True)
    else:
        found = []
        by_unit: dict[str, list[PodTemplate]] = {}
        for t in templates:
            by_unit.setdefault(t.owner.unit, []).append(t)
        for unit in state.units:
            label = unit.label
            here = _found_in(state.view(label), _Templates(by_unit.get(label, ())), wanted,
                             lambda o, label=label: o.unit == label)
            for f in here:
                f.unit, f.unit_label = unit.path, label
            found += here
    found.sort(key=lambda f: (f.namespace, f.name, f.unit_label, f.ref))
    groups: dict[str, list[Found]] = {}
    for f in found:
        f.name = _profile_name(f.name)
        groups.setdefault(f.name, []).append(f)
    for same in groups.values():  # the same workload in several apply units: one deployment each, named after its unit
        if len(same) > 1 and all(f.unit_label for f in same) and len({f.unit_label for f in same}) == len(same):
            short = _unit_names([f.unit_label for f in same])
            for f in same:
                f.name = _profile_name(f"{f.name}-{short[f.unit_label]}")
    names = [f.name for f in found]
    times = Counter(names)
    for f, name in zip(found, names):
        f.name = name if times[name] == 1 else _profile_name(f"{f.namespace}-{name}")
    seen: dict[str, int] = {}
    for f in found:  # the same name twice in one namespace (a Deployment and a StatefulSet)
        seen[f.name] = seen.get(f.name, 0) + 1
        if seen[f.name] > 1:
            f.name = f"{f.name}-{f.ref.split('/')[0].lower()}"
    blocked = {k: v for k, v in state.denied.items() if k in DISCOVERY_KINDS}
    return Discovery(state.source, tuple(found), blocked, tuple(state.absent))
