"""Exposure judges: Services of type LoadBalancer/NodePort on NIM/Triton/database/metrics ports,
Ingress/Route objects without TLS, and routes that publish ``/`` (and with it metrics, metadata
and docs) instead of the inference paths only.

Only objects that route to the selected workloads count: Services whose selector matches the pod
labels, and Ingress/HTTPRoute/Route objects whose backends are those Services.
"""

from __future__ import annotations

from collections.abc import Sequence

from nimwarden.judges.k8s_common import Finding, needs, verdict_from
from nimwarden.k8s.model import ClusterState, K8sObject
from nimwarden.k8s.workloads import PodTemplate
from nimwarden.outcome import Outcome, not_applicable

# NIM/Triton API, gRPC and metrics; NeMo databases and the OpenTelemetry collector (seed port tables).
SENSITIVE_PORTS = {
    8000: "NIM/Triton HTTP API", 8001: "Triton gRPC", 8002: "Triton metrics", 50051: "NIM gRPC", 9090: "metrics",
    5432: "PostgreSQL", 19530: "Milvus", 9091: "Milvus metrics", 4317: "OTLP gRPC", 4318: "OTLP HTTP",
    9411: "Zipkin", 14250: "Jaeger gRPC", 14268: "Jaeger HTTP", 6831: "Jaeger agent",
}


def _selects(service: K8sObject, tpl: PodTemplate) -> bool:
    selector = service.spec.get("selector") or {}
    return bool(selector) and service.namespace == tpl.owner.namespace and all(tpl.labels.get(k) == v for k, v in selector.items())


def workload_services(state: ClusterState, templates: Sequence[PodTemplate]) -> list[K8sObject]:
    return [s for s in state.of_kind("Service") if any(_selects(s, t) for t in templates)]


def _port_number(port: dict, key: str):
    value = port.get(key)
    return value if isinstance(value, int) else None


def services(state: ClusterState, templates: Sequence[PodTemplate]) -> Outcome:
    blocked = needs(state, "Service")
    if blocked:
        return blocked
    findings, judged = [], []
    for svc in workload_services(state, templates):
        judged.append(svc.ref)
        kind = svc.spec.get("type", "ClusterIP")
        external = kind in ("LoadBalancer", "NodePort") or bool(svc.spec.get("externalIPs"))
        if not external:
            continue
        how = kind if kind != "ClusterIP" else "externalIPs"
        for i, p in enumerate(svc.spec.get("ports") or ()):
            nums = {_port_number(p, "port"), _port_number(p, "targetPort")} - {None}
            hit = sorted(n for n in nums if n in SENSITIVE_PORTS)
            if hit:
                sev = "high" if hit[0] != 8000 else "medium"
                findings.append(Finding(svc.ref, f"{how} publishes port {p.get('port')} ({SENSITIVE_PORTS[hit[0]]}) outside the cluster",
                                        f"spec.ports[{i}]", severity=sev))
    for tpl in templates:
        if tpl.owner.kind == "NIMService":
            svc_spec = (tpl.owner.spec.get("expose") or {}).get("service") or {}
            if svc_spec.get("type") in ("LoadBalancer", "NodePort"):
                judged.append(tpl.ref)
                findings.append(Finding(tpl.ref, f"operator will create a {svc_spec['type']} Service on port {svc_spec.get('port', 8000)}",
                                        "spec.expose.service.type", severity="medium"))
    if not judged:
        return not_applicable("no Service routes to the selected workloads", objects=[t.ref for t in templates])
    return verdict_from(findings, what="NIM/Triton port published outside the cluster", subjects=judged,
                        ok="Services that route to the workloads are cluster-internal")


def _nimservice_ingresses(templates: Sequence[PodTemplate]) -> list[K8sObject]:
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
            out.append(K8sObject("Ingress", body["apiVersion"], tpl.owner.namespace, name, body, f"{tpl.ref} spec.expose"))
    return out


def _routes(state: ClusterState, templates: Sequence[PodTemplate]) -> list[tuple[K8sObject, list[tuple[int, int, dict]]]]:
    """Ingresses/HTTPRoutes/Routes whose backends are the workloads' Services, with the matching rule/path indexes."""
    names = {(s.namespace, s.name) for s in workload_services(state, templates)}
    # the operator names a NIMService's Service after the NIMService
    names |= {(t.owner.namespace, t.owner.name) for t in templates if t.owner.kind == "NIMService"}
    out = []
    for ing in state.of_kind("Ingress") + _nimservice_ingresses(templates):
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
    for route in state.of_kind("HTTPRoute"):
        hits = []
        for r, rule in enumerate(route.spec.get("rules") or ()):
            if any((route.namespace, b.get("name")) in names for b in rule.get("backendRefs") or ()):
                matches = rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]
                for m, match in enumerate(matches):
                    hits.append((r, m, {"path": (match.get("path") or {}).get("value", "/"), "pathType": (match.get("path") or {}).get("type", "PathPrefix")}))
        if hits:
            out.append((route, hits))
    for route in state.of_kind("Route"):
        if (route.namespace, (route.spec.get("to") or {}).get("name")) in names:
            out.append((route, [(0, 0, {"path": route.spec.get("path") or "/", "pathType": "Prefix"})]))
    return out


def ingress_tls(state: ClusterState, templates: Sequence[PodTemplate]) -> Outcome:
    blocked = needs(state, "Service", "Ingress")
    if blocked:
        return blocked
    routes = _routes(state, templates)
    if not routes:
        return not_applicable("no Ingress or Route publishes the selected workloads", objects=[t.ref for t in templates])
    findings, notes = [], []
    for obj, hits in routes:
        if obj.kind == "Ingress":
            covered = {h for t in obj.spec.get("tls") or () for h in t.get("hosts") or ["*"]}
            for r, _p, _path in hits:
                host = ((obj.spec.get("rules") or [{}])[r].get("host") if r >= 0 else None) or "*"
                if not covered or (host not in covered and "*" not in covered):
                    findings.append(Finding(obj.ref, f"host {host} served without TLS", "spec.tls", severity="high"))
                    break
        elif obj.kind == "Route":
            if not obj.spec.get("tls"):
                findings.append(Finding(obj.ref, "route without TLS termination", "spec.tls", severity="high"))
        else:
            notes.append(f"{obj.ref}: TLS is set on the parent Gateway listener, not judged here")
    return verdict_from(findings, what="route without TLS", subjects=[o.ref for o, _ in routes],
                        ok="every Ingress/Route publishing the workloads terminates TLS", notes=notes)


def root_path(state: ClusterState, templates: Sequence[PodTemplate]) -> Outcome:
    blocked = needs(state, "Service", "Ingress")
    if blocked:
        return blocked
    routes = _routes(state, templates)
    if not routes:
        return not_applicable("no Ingress or Route publishes the selected workloads", objects=[t.ref for t in templates])
    findings = []
    for obj, hits in routes:
        for r, p, path in hits:
            value = str(path.get("path") or "/")
            kind = path.get("pathType", "Prefix")
            if value in ("/", "") and kind in ("Prefix", "PathPrefix", "ImplementationSpecific", None):
                where = "spec.defaultBackend" if r < 0 else (f"spec.rules[{r}].http.paths[{p}].path" if obj.kind == "Ingress"
                                                            else f"spec.rules[{r}].matches[{p}].path" if obj.kind == "HTTPRoute" else "spec.path")
                findings.append(Finding(obj.ref, "publishes / (metrics, metadata and docs with it)", where, severity="medium"))
    return verdict_from(findings, what="route publishes /", subjects=[o.ref for o, _ in routes],
                        ok="routes publish only specific API paths")
