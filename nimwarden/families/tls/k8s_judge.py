"""TLS-K8SROUTE-001 from cluster state: every Ingress / Route that publishes the deployment's
workloads terminates TLS for each host it serves."""

from __future__ import annotations

from collections.abc import Sequence

from nimwarden.k8s.exposure import routes as _routes
from nimwarden.k8s.findings import Finding, needs, verdict_from
from nimwarden.k8s.model import ClusterState
from nimwarden.k8s.workloads import PodTemplate
from nimwarden.outcome import Outcome, not_applicable


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
