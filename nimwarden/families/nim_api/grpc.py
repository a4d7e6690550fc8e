"""NIM-GRPC-001: a NIM's gRPC API is its own way in. NIMs serve gRPC only when ``NIM_SERVER_GRPC_BIND_ADDR``
is set (NeMo Retriever NIMs; NIM_GRPC_API_PORT, 50051 by default), and the NIM Operator turns it on with
``spec.expose.service.grpcPort``, publishing it on the NIMService's Service with that Service's type. The
HTTP API's gateway does not front it: whoever reaches the gRPC port reaches the model without the gateway's
authentication and rate limits.

Two observations, one verdict:
- live, when the profile declares a ``nim_grpc`` endpoint: a TCP connect from the probe position (nothing
  is sent). From outside the cluster, a port that accepts fails unless the profile's exposure names it;
  refused passes; a timeout cannot be told from a filtered port (error).
- from the deployment's workloads, when cluster state is available: every NIM container with gRPC on, and
  whether a Service of type LoadBalancer / NodePort (or with externalIPs) publishes its port.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from nimwarden.k8s.exposure import workload_services
from nimwarden.k8s.findings import Finding, verdict_from
from nimwarden.outcome import Attempt, Outcome, errored, failed, not_applicable, passed

GRPC_ENDPOINT = "nim_grpc"
BIND_ENV = "NIM_SERVER_GRPC_BIND_ADDR"
PORT_ENVS = ("NIM_GRPC_API_PORT", "NIM_TRITON_GRPC_PORT")
DEFAULT_PORT = 50051


def _env(container: Mapping[str, Any]) -> dict[str, str]:
    return {str(e.get("name")): str(e.get("value")) for e in container.get("env") or () if isinstance(e, Mapping) and "value" in e}


def _is_nim(template: Any, container: Mapping[str, Any]) -> bool:
    return template.owner.kind == "NIMService" or "/nim/" in str(container.get("image") or "") or any(
        k.startswith("NIM_") for k in _env(container))


def grpc_port(container: Mapping[str, Any]) -> tuple[int, str] | None:
    """(port, why) when the NIM container serves gRPC, else None."""
    env = _env(container)
    bind = env.get(BIND_ENV, "").strip()
    if bind:
        host, _, port = bind.rpartition(":")
        return (int(port) if port.isdigit() else DEFAULT_PORT), f"{BIND_ENV}={bind}"
    for name in PORT_ENVS:
        if env.get(name, "").isdigit():
            return int(env[name]), f"{name}={env[name]}"
    return None


def _published(state: Any, template: Any, port: int) -> list[tuple[str, str, str]]:
    """Services outside the cluster that reach ``port`` of the template's pods: (object, field, how)."""
    out = []
    owner = template.owner
    if owner.kind == "NIMService":  # the operator renders the Service from spec.expose.service
        svc = ((owner.spec.get("expose") or {}).get("service") or {})
        kind = svc.get("type", "ClusterIP")
        if svc.get("grpcPort") and kind in ("LoadBalancer", "NodePort"):
            out.append((owner.ref, "spec.expose.service", f"the operator's {kind} Service publishes grpcPort {svc['grpcPort']}"))
        return out
    for s in workload_services(state, [template]):
        kind = s.spec.get("type", "ClusterIP")
        if kind not in ("LoadBalancer", "NodePort") and not s.spec.get("externalIPs"):
            continue
        for i, p in enumerate(s.spec.get("ports") or ()):
            if port in (p.get("port"), p.get("targetPort")) or str(p.get("targetPort") or p.get("name") or "") == "grpc":
                out.append((s.ref, f"spec.ports[{i}]", f"{kind} Service {s.name} publishes port {p.get('port')}"))
    return out


def grpc_in_workloads(state: Any, templates: Sequence[Any]) -> Outcome:
    """The spec half of NIM-GRPC-001."""
    findings, on, nims = [], [], 0
    for t in templates:
        for path, c in t.containers():
            if not _is_nim(t, c):
                continue
            nims += 1
            got = grpc_port(c)
            if got is None:
                continue
            port, why = got
            on.append(f"{t.container_ref(path, c)} ({why})")
            for obj, field, how in _published(state, t, port):
                findings.append(Finding(obj, f"the NIM's gRPC API ({why}, port {port}) is published outside the cluster: {how}; "
                                        "it bypasses the HTTP gateway's authentication and rate limits", field, severity="high"))
    if not nims:
        return not_applicable("no NIM container among the deployment's workloads")
    ok = (f"gRPC is on ({'; '.join(on)}) but no Service publishes it outside the cluster" if on
          else f"gRPC is off in every NIM container ({BIND_ENV} unset)")
    return verdict_from(findings, what="NIM gRPC API published outside the cluster", subjects=[t.ref for t in templates], ok=ok,
                        grpc_on=on)


def grpc_live(connect: Attempt[str], external: bool, allowed: bool) -> Outcome:
    """The live half of NIM-GRPC-001: a TCP connect to the declared ``nim_grpc`` endpoint."""
    if not connect.completed:
        return errored(f"{connect.request}: {connect.error} — a port that does not answer cannot be told from a filtered one",
                       **connect.evidence())
    where = connect.request.removeprefix("TCP connect ")
    if connect.observation == "closed":
        return passed(f"the NIM gRPC port {where} refuses connections from the probe position", **connect.evidence())
    if external and not allowed:
        return failed(f"the NIM gRPC API accepts connections from outside the cluster at {where}: it bypasses the HTTP gateway's "
                      "authentication and rate limits; keep it ClusterIP, or leave it off", severity="high", **connect.evidence())
    return passed(f"the NIM gRPC port {where} answers, as the profile's position and exposure allow", **connect.evidence())


def grpc_verdict(live: Outcome | None, spec: Outcome | None) -> Outcome:
    """Both halves into one verdict: a failure of either fails, then an error errors, then a pass passes."""
    parts = [o for o in (live, spec) if o is not None]
    judged = [o for o in parts if o.status.value != "not_applicable"]
    if not judged:
        return parts[0] if parts else not_applicable(f"no {GRPC_ENDPOINT} endpoint and no cluster state")
    evidence = {"live": dict(live.evidence) if live else None, "workloads": dict(spec.evidence) if spec else None}
    for status in ("fail", "error"):
        hit = [o for o in judged if o.status.value == status]
        if hit:
            return replace(hit[0], reason=" | ".join(o.reason for o in hit), evidence=evidence)
    return replace(judged[0], reason=" | ".join(o.reason for o in judged), evidence=evidence)


def live_half(target: Any, deployment: Any, connect: Any) -> Outcome | None:
    """The live half for a deployment: None when the profile declares no ``nim_grpc`` endpoint."""
    if deployment.endpoint(GRPC_ENDPOINT) is None:
        return None
    return grpc_live(connect(target, deployment), target.probe_position == "external", GRPC_ENDPOINT in deployment.exposure)


def workload_half(target: Any, deployment: Any) -> Outcome | None:
    """The workload half for a deployment: None when its workloads cannot be read from cluster state."""
    from nimwarden.k8s import source as k8s

    if k8s.unavailable(target, deployment):
        return None
    return k8s.judge_workloads(target, deployment, grpc_in_workloads, state=True)
