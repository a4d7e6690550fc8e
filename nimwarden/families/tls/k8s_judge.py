"""TLS-K8SROUTE-001 from cluster state: every Ingress / Route / Traefik IngressRoute / HTTPRoute
that publishes the deployment's workloads terminates TLS for each host it serves (an HTTPRoute
through the listeners of its parent Gateway; a Gateway not in the cluster state cannot be judged)."""

from __future__ import annotations

from collections.abc import Sequence

from nimwarden.k8s.exposure import gateway_listeners, published_routes
from nimwarden.k8s.findings import Finding, verdict_from
from nimwarden.k8s.model import ClusterState
from nimwarden.k8s.workloads import PodTemplate
from nimwarden.outcome import Outcome, errored


def ingress_tls(state: ClusterState, templates: Sequence[PodTemplate]) -> Outcome:
    routes = published_routes(state, templates)
    if isinstance(routes, Outcome):
        return routes
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
        elif obj.kind == "IngressRoute":
            if not obj.spec.get("tls"):
                entry = ", ".join(map(str, obj.spec.get("entryPoints") or ())) or "every entry point"
                scheme = {str(b.get("scheme")) for r, _m, _p in hits for b in (obj.spec.get("routes") or [{}])[r].get("services") or ()}
                plain = " (h2c: gRPC in clear text)" if "h2c" in scheme else ""
                findings.append(Finding(obj.ref, f"served without TLS on {entry}{plain}", "spec.tls", severity="high"))
        else:  # HTTPRoute: TLS is the parent Gateway listener's
            listeners, missing = gateway_listeners(state, obj)
            if missing:
                return errored(f"{obj.ref} attaches to {', '.join(missing)}, not in the cluster state: its TLS cannot be verified "
                               "from these manifests (add the Gateway, or audit a snapshot/live source)", source=state.source)
            for gw, i, listener in listeners:
                if str(listener.get("protocol", "")).upper() not in ("HTTPS", "TLS"):
                    findings.append(Finding(gw.ref, f"listener {listener.get('name')} serves {obj.ref} over {listener.get('protocol')}",
                                            f"spec.listeners[{i}].protocol", severity="high"))
            notes.append(f"{obj.ref}: TLS judged on its parent Gateway listener(s)")
    return verdict_from(findings, what="route without TLS", subjects=[o.ref for o, _ in routes],
                        ok="every Ingress/Route publishing the workloads terminates TLS", notes=notes)
