"""GATEWAY-K8SROOT-001 from cluster state: routes that publish ``/`` (and with it metrics,
metadata and docs) instead of the inference paths only."""

from __future__ import annotations

from collections.abc import Sequence

from nimwarden.k8s.exposure import published_routes
from nimwarden.k8s.findings import Finding, verdict_from
from nimwarden.k8s.model import ClusterState
from nimwarden.k8s.workloads import PodTemplate
from nimwarden.outcome import Outcome


def root_path(state: ClusterState, templates: Sequence[PodTemplate]) -> Outcome:
    routes = published_routes(state, templates)
    if isinstance(routes, Outcome):
        return routes
    findings = []
    for obj, hits in routes:
        for r, p, path in hits:
            value = str(path.get("path") or "/")
            kind = path.get("pathType", "Prefix")
            if value in ("/", "") and kind in ("Prefix", "PathPrefix", "ImplementationSpecific", None):
                where = "spec.defaultBackend" if r < 0 else (f"spec.rules[{r}].http.paths[{p}].path" if obj.kind == "Ingress"
                                                            else f"spec.rules[{r}].matches[{p}].path" if obj.kind == "HTTPRoute"
                                                            else f"spec.routes[{r}].match" if obj.kind == "IngressRoute" else "spec.path")
                findings.append(Finding(obj.ref, "publishes / (metrics, metadata and docs with it)", where, severity="medium"))
    return verdict_from(findings, what="route publishes /", subjects=[o.ref for o, _ in routes],
                        ok="routes publish only specific API paths")
