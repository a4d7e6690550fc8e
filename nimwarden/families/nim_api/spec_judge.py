"""NIM settings read from pod specs (family nim-api): TLS on the NIM itself, its CORS origins and its
request-queue bound, from the container's environment (NIM LLM 2.x and NeMo Retriever NIMs).

A NIM container is one a NIMService renders, or one whose image lives under ``nvcr.io/nim/``. A value
that comes from a Secret or ConfigMap (``valueFrom``) cannot be read from manifests: the finding says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nimwarden.k8s.findings import Finding, verdict_from
from nimwarden.k8s.workloads import PodTemplate
from nimwarden.outcome import Outcome, not_applicable

UNREADABLE = object()  # set through valueFrom: present, value not in the manifests


@dataclass(frozen=True)
class NimContainer:
    ref: str
    container: str
    path: str  # field path of its env
    env: Mapping[str, object]  # name → literal value, or UNREADABLE

    def value(self, name: str) -> object | None:
        return self.env.get(name)


def nim_containers(templates: Sequence[PodTemplate]) -> list[NimContainer]:
    out = []
    for tpl in templates:
        for path, c in tpl.containers():
            image = str(c.get("image") or "")
            if tpl.owner.kind != "NIMService" and not image.startswith("nvcr.io/nim/"):
                continue
            env = {str(e.get("name")): (e["value"] if "value" in e else UNREADABLE) for e in c.get("env") or () if e.get("name")}
            out.append(NimContainer(tpl.ref, str(c.get("name") or path), tpl.source_path(f"{path}.env"), env))
    return out


def _judge(templates, what: str, ok: str, check) -> Outcome:
    nims = nim_containers(templates)
    if not nims:
        return not_applicable("no NIM container in the selected workloads (a NIMService, or an nvcr.io/nim/ image)",
                              objects=[t.ref for t in templates])
    findings = [Finding(n.ref, problem, n.path, n.container, severity) for n in nims for problem, severity in check(n)]
    return verdict_from(findings, what=what, subjects=sorted({n.ref for n in nims}), ok=ok)


def ssl_mode(templates) -> Outcome:
    """NIM-SPEC-SSL: the NIM serves TLS itself (NIM_SSL_MODE=TLS or MTLS)."""
    def check(n: NimContainer):
        v = n.value("NIM_SSL_MODE")
        if v is UNREADABLE:
            yield "NIM_SSL_MODE comes from a Secret or ConfigMap: cannot be verified from manifests", "low"
        elif v is None or str(v).upper() not in ("TLS", "MTLS"):
            shown = "not set" if v is None else f"={v}"
            yield f"NIM_SSL_MODE {shown}: the NIM API is plain HTTP inside the cluster (TLS or MTLS expected)", "medium"
    return _judge(templates, "NIM without TLS", "every NIM serves TLS (NIM_SSL_MODE TLS or MTLS)", check)


def cors_origins(templates) -> Outcome:
    """NIM-SPEC-CORS: NIM_CORS_ALLOW_ORIGINS does not admit every origin."""
    def check(n: NimContainer):
        v = n.value("NIM_CORS_ALLOW_ORIGINS")
        if v is UNREADABLE:
            yield "NIM_CORS_ALLOW_ORIGINS comes from a Secret or ConfigMap: cannot be verified from manifests", "low"
        elif v is not None and any(o.strip() == "*" for o in str(v).split(",")):
            yield "NIM_CORS_ALLOW_ORIGINS admits every origin (*): any web page can call the NIM from a visitor's browser", "high"
    return _judge(templates, "NIM admits every origin", "no NIM admits every origin (NIM_CORS_ALLOW_ORIGINS unset or explicit origins)", check)


def queue_bound(templates) -> Outcome:
    """NIM-SPEC-QUEUE: the request queue is bounded explicitly (NIM_SERVER_MAX_QUEUE_SIZE)."""
    def check(n: NimContainer):
        v = n.value("NIM_SERVER_MAX_QUEUE_SIZE")
        if v is UNREADABLE:
            return
        if v is None:
            yield "NIM_SERVER_MAX_QUEUE_SIZE not set: the queue bound is whatever the image defaults to", "low"
            return
        try:
            ok = int(str(v)) > 0
        except ValueError:
            ok = False
        if not ok:
            yield f"NIM_SERVER_MAX_QUEUE_SIZE={v} is not a positive bound", "medium"
    return _judge(templates, "NIM request queue not bounded", "every NIM bounds its request queue (NIM_SERVER_MAX_QUEUE_SIZE)", check)
