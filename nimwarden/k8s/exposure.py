"""Which Kubernetes objects publish a deployment's workloads: the Services whose selector matches
the pod labels, and the Ingress / Gateway API HTTPRoute / OpenShift Route / Traefik IngressRoute
objects whose backends are those Services (with the Ingress the NIM Operator creates for a
NIMService). Object-model queries shared by the exposure controls of the ports, tls and gateway
families.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nimwarden.k8s.model import ClusterState, K8sObject
from nimwarden.k8s.workloads import PodTemplate


def _selects(service: K8sObject, tpl: PodTemplate) -> bool:
    selector = service.spec.get("selector") or {}
    return bool(selector) and service.namespace == tpl.owner.namespace and all(tpl.labels.get(k) == v for k, v in selector.items())


def workload_services(state: ClusterState, templates: Sequence[PodTemplate]) -> list[K8sObject]:
    """The Services whose selector matches one of the templates' pods (a Service selects in its own
    namespace only: the Services of the templates' namespaces are the only candidates)."""
    return [s for s in _in_namespaces(state, "Service", templates) if any(_selects(s, t) for t in templates)]


def _in_namespaces(state: ClusterState, kind: str, templates: Sequence[PodTemplate]) -> list[K8sObject]:
    """The objects of a kind in the templates' namespaces, in the state's order (never a scan of every one)."""
    return state.in_namespaces(kind, (t.owner.namespace for t in templates))


def nimservice_ingresses(templates: Sequence[PodTemplate]) -> list[K8sObject]:
    """The Ingress the NIM Operator creates for a NIMService (named after it): from spec.expose.ingress
    (enabled + an IngressSpec) or spec.expose.router.ingress (ingressClass, tlsSecretName, hostDomainName)."""
    out = []
    for tpl in templates:
        if tpl.owner.kind != "NIMService":
            continue
        name, expose = tpl.owner.name, tpl.owner.spec.get("expose") or {}
        port = (expose.get("service") or {}).get("port", 8000)
        spec = None
        if (expose.get("ingress") or {}).get("enabled"):
            spec = expose["ingress"].get("spec") or {}
        router = expose.get("router") or {}
        if router.get("ingress"):
            host = f"{name}.{router['hostDomainName']}" if router.get("hostDomainName") else None
            backend = {"service": {"name": name, "port": {"number": port}}}
            spec = {"rules": [{**({"host": host} if host else {}), "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}
            if router["ingress"].get("tlsSecretName"):
                spec["tls"] = [{"hosts": [host] if host else [], "secretName": router["ingress"]["tlsSecretName"]}]
        if spec is not None:
            body = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": tpl.owner.namespace}, "spec": spec}
            out.append(K8sObject("Ingress", body["apiVersion"], tpl.owner.namespace, name, body, f"{tpl.ref} spec.expose",
                                 unit=tpl.owner.unit, twin=tpl.owner.twin))
    return out


class _Backends:
    """The Services that route to the workloads, and — failing closed — any backend Service named in a
    workload's namespace that the cluster state does not hold (a chart bug, or a Service made elsewhere:
    the route may well publish the workload, so it is judged with it)."""

    def __init__(self, state: ClusterState, templates: Sequence[PodTemplate]):
        self.names = {(s.namespace, s.name) for s in workload_services(state, templates)}
        # the operator names a NIMService's Service after the NIMService
        self.names |= {(t.owner.namespace, t.owner.name) for t in templates if t.owner.kind == "NIMService"}
        self.namespaces = {t.owner.namespace for t in templates}
        self.state = state

    def __contains__(self, key: tuple) -> bool:
        ns, name = key
        return key in self.names or bool(name and ns in self.namespaces and self.state.get("Service", ns, name) is None)


def routes(state: ClusterState, templates: Sequence[PodTemplate]) -> list[tuple[K8sObject, list[tuple[int, int, dict]]]]:
    """Ingresses/HTTPRoutes/Routes/IngressRoutes whose backends are the workloads' Services (or Services
    the state does not hold, in a workload's namespace), with the matching rule/path indexes."""
    names = _Backends(state, templates)
    # an Ingress, HTTPRoute or Route reaches Services of its own namespace: only the templates' namespaces hold candidates
    out = []
    for ing in _in_namespaces(state, "Ingress", templates) + nimservice_ingresses(templates):
        hits = []
        default = ((ing.spec.get("defaultBackend") or {}).get("service") or {}).get("name")
        if (ing.namespace, default) in names:
            hits.append((-1, -1, {"path": "/", "pathType": "Prefix"}))
        for r, rule in enumerate(ing.spec.get("rules") or ()):
            for p, path in enumerate(((rule.get("http") or {}).get("paths")) or ()):
                if (ing.namespace, ((path.get("backend") or {}).get("service") or {}).get("name")) in names:
                    hits.append((r, p, path))
        if hits:
            out.append((ing, hits))
    for route in _in_namespaces(state, "HTTPRoute", templates):
        hits = []
        for r, rule in enumerate(route.spec.get("rules") or ()):
            if any((route.namespace, b.get("name")) in names for b in rule.get("backendRefs") or ()):
                matches = rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]
                for m, match in enumerate(matches):
                    hits.append((r, m, {"path": (match.get("path") or {}).get("value", "/"), "pathType": (match.get("path") or {}).get("type", "PathPrefix")}))
        if hits:
            out.append((route, hits))
    for route in _in_namespaces(state, "Route", templates):
        if (route.namespace, (route.spec.get("to") or {}).get("name")) in names:
            out.append((route, [(0, 0, {"path": route.spec.get("path") or "/", "pathType": "Prefix"})]))
    for route in state.of_kind("IngressRoute"):
        hits = []
        for r, rule in enumerate(route.spec.get("routes") or ()):
            backends = [b for b in rule.get("services") or () if (b.get("kind") or "Service") == "Service"]
            if any((b.get("namespace") or route.namespace, b.get("name")) in names for b in backends):
                for m, path in enumerate(traefik_paths(str(rule.get("match") or ""))):
                    hits.append((r, m, {"path": path, "pathType": "PathPrefix"}))
        if hits:
            out.append((route, hits))
    return out


_TRAEFIK_PATH = re.compile(r"\b(PathPrefix|Path)\(\s*`([^`]*)`")


def traefik_paths(match: str) -> list[str]:
    """The paths a Traefik rule (``Host(`a`) && PathPrefix(`/v2`)``) serves; no Path matcher: all of them ("/")."""
    return [m.group(2) or "/" for m in _TRAEFIK_PATH.finditer(match)] or ["/"]


def gateway_listeners(state: ClusterState, route: K8sObject) -> tuple[list[tuple[K8sObject, int, dict]], list[str]]:
    """The Gateway listeners an HTTPRoute attaches to, and the parentRefs not in the cluster state."""
    found, missing = [], []
    for ref in route.spec.get("parentRefs") or ():
        if (ref.get("kind") or "Gateway") != "Gateway":
            continue
        gw = state.get("Gateway", ref.get("namespace") or route.namespace, ref.get("name"))
        if gw is None:
            missing.append(f"Gateway/{ref.get('namespace') or route.namespace}/{ref.get('name')}")
            continue
        for i, listener in enumerate(gw.spec.get("listeners") or ()):
            if ref.get("sectionName") in (None, listener.get("name")) and ref.get("port") in (None, listener.get("port")):
                found.append((gw, i, listener))
    return found, missing


def published_routes(state: ClusterState, templates: Sequence[PodTemplate]):
    """The routes that publish the workloads, or the Outcome to record instead: an error when Services or
    Ingresses could not be read, not applicable when nothing publishes them (TLS-K8SROUTE, GATEWAY-K8SROOT)."""
    from nimwarden.k8s.findings import needs
    from nimwarden.outcome import not_applicable

    blocked = needs(state, "Service", "Ingress")
    if blocked:
        return blocked
    found = routes(state, templates)
    if not found:
        return not_applicable("no Ingress or Route publishes the selected workloads", objects=[t.ref for t in templates])
    return found
