"""PORTS-K8SEXPOSE-001 from cluster state: Services of type LoadBalancer/NodePort (or with
externalIPs) that publish NIM/Triton/NeMo/database/metrics ports of the deployment's workloads (the
Services the NIM Operator creates for its NeMo resources among them), and NIMServices that ask the
operator for such a Service. A named targetPort is resolved to the container port it names."""

from __future__ import annotations

from collections.abc import Sequence

from nimwarden.k8s.exposure import workload_services
from nimwarden.k8s.findings import Finding, needs, verdict_from
from nimwarden.k8s.model import ClusterState
from nimwarden.k8s.workloads import PodTemplate
from nimwarden.outcome import Outcome, not_applicable

# NIM/Triton API, gRPC and metrics; NeMo databases and the OpenTelemetry collector (seed port tables).
SENSITIVE_PORTS = {
    8000: "NIM/Triton HTTP API", 8001: "Triton gRPC", 8002: "Triton metrics", 50051: "NIM gRPC", 9090: "metrics",
    5432: "PostgreSQL", 19530: "Milvus", 9091: "Milvus metrics", 4317: "OTLP gRPC", 4318: "OTLP HTTP",
    9411: "Zipkin", 14250: "Jaeger gRPC", 14268: "Jaeger HTTP", 6831: "Jaeger agent",
    # NeMo microservices (seed port table; NIM Operator constants) and the NeMo Platform's single API port
    3000: "NeMo Data Store API", 7331: "NeMo Evaluator/Guardrails API", 9009: "NeMo Customizer callback",
    8080: "NeMo Platform API (Triton SageMaker)", 2746: "Argo Workflows server (NeMo Evaluator)",
}


def _port_number(port: dict, key: str):
    value = port.get(key)
    return value if isinstance(value, int) else None


def _named_ports(templates: Sequence[PodTemplate]) -> dict[str, int]:
    """Container port names of the workloads → their numbers (a Service's ``targetPort: api``)."""
    return {str(p["name"]): p["containerPort"] for t in templates for _, c in t.containers()
            for p in c.get("ports") or () if p.get("name") and isinstance(p.get("containerPort"), int)}


def services(state: ClusterState, templates: Sequence[PodTemplate]) -> Outcome:
    blocked = needs(state, "Service")
    if blocked:
        return blocked
    named = _named_ports(templates)
    findings, judged = [], []
    for svc in workload_services(state, templates):
        judged.append(svc.ref)
        kind = svc.spec.get("type", "ClusterIP")
        external = kind in ("LoadBalancer", "NodePort") or bool(svc.spec.get("externalIPs"))
        if not external:
            continue
        how = kind if kind != "ClusterIP" else "externalIPs"
        for i, p in enumerate(svc.spec.get("ports") or ()):
            nums = {_port_number(p, "port"), _port_number(p, "targetPort"), named.get(str(p.get("targetPort")))} - {None}
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
