"""Shared shape of Kubernetes findings: which object, which container, which field, what is wrong.

A finding always names the owning object (``Deployment/ns/name``), the
container where one applies, and the field path in the object the user wrote,
so a failure reads ``Deployment/nim/llama → nim: spec.template.spec.containers[0]
.securityContext.privileged — privileged container``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from nimwarden.k8s.model import ClusterState
from nimwarden.k8s.workloads import PodTemplate
from nimwarden.outcome import SEVERITIES, Outcome, errored, failed, passed


@dataclass(frozen=True)
class Finding:
    ref: str  # Deployment/ns/name
    problem: str
    path: str = ""  # field path in that object
    container: str | None = None
    severity: str | None = None

    def location(self) -> dict:
        """One object per finding: the object, its field, what is wrong (file and line added by the source)."""
        out = {"object": self.ref, "path": self.path, "problem": self.problem}
        if self.container:
            out["container"] = self.container
        if self.severity:
            out["severity"] = self.severity
        return out

    def __str__(self) -> str:
        who = f"{self.ref} → {self.container}" if self.container else self.ref
        # " — " rather than ":" before free text, so that a path ending in a secret-ish key
        # (data.NGC_API_KEY) is not read as "key: value" by the report redactor.
        return f"{who}: {self.path} — {self.problem}" if self.path else f"{who} — {self.problem}"


def worst(severities: Iterable[str | None]) -> str | None:
    present = [s for s in severities if s]
    return min(present, key=SEVERITIES.index) if present else None


def verdict_from(findings: Sequence[Finding], *, what: str, subjects: Sequence[str], ok: str,
                 **evidence) -> Outcome:
    """Fail listing every finding (with the worst severity any of them carries), else pass."""
    if findings:
        first = str(findings[0])
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        return failed(f"{what} — {first}{more}", severity=worst(f.severity for f in findings),
                      findings=[str(f) for f in findings], objects=list(subjects),
                      locations=[f.location() for f in findings], **evidence)
    return passed(ok, objects=list(subjects), **evidence)


def needs(state: ClusterState, *kinds: str) -> Outcome | None:
    """An error outcome when a kind this control depends on could not be read (e.g. RBAC 403)."""
    reason = state.unreadable(*kinds)
    if reason:
        return errored(f"cannot evaluate: {reason}", source=state.source)
    return None


def container_name(tpl: PodTemplate, path: str, container: Mapping) -> str:
    return str(container.get("name") or path)


def effective(tpl: PodTemplate, container: Mapping, key: str):
    """A securityContext field as the kubelet applies it: the container's value, else the pod's."""
    value = (container.get("securityContext") or {}).get(key)
    if value is None:
        value = (tpl.spec.get("securityContext") or {}).get(key)
    return value


def effective_path(tpl: PodTemplate, cpath: str, container: Mapping, key: str) -> str:
    if (container.get("securityContext") or {}).get(key) is not None:
        return tpl.source_path(f"{cpath}.securityContext.{key}")
    if (tpl.spec.get("securityContext") or {}).get(key) is not None:
        return tpl.source_path(f"{tpl.spec_path}.securityContext.{key}")
    return tpl.source_path(f"{cpath}.securityContext.{key}")
