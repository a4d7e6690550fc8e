"""One result record of summary.json, from what a compliance test recorded (shared by the pytest
plugin and the in-process runner, so both write the same records)."""

from __future__ import annotations

from typing import Any

from nimwarden import catalog
from nimwarden.redact import generation, redact, redact_once, redact_text, redact_tree


def make_result(control: catalog.Control, params: dict, recorded: tuple | None, unrecorded: tuple[str, str] | None,
                duration: float, nodeid: str) -> dict[str, Any]:
    """One result of summary.json: the control, the deployment, and the Outcome the test recorded
    (``recorded``: (outcome, subject)) or why it recorded none (``unrecorded``: (status, reason)).
    """
    dep = params.get("deployment")
    default_subject = dep.name if dep is not None else "-"
    if "protocol" in params and dep is not None:
        ep = dep.endpoint(params["protocol"])
        default_subject = ep.url if ep else f"{dep.name}/{params['protocol']}"
    if recorded is not None:
        outcome, subject = recorded
        status, reason, evidence, severity = outcome.status.value, outcome.reason, dict(outcome.evidence), outcome.severity
    else:
        subject, severity, evidence = None, None, {}
        status, reason = unrecorded
    fixed = _control_fields(control)
    result = {
        "control": fixed["control"],
        "family": fixed["family"],
        "severity": redact_text(str(severity)) if severity else fixed["severity"],
        "title": fixed["title"],
        "deployment": redact_text(dep.name) if dep is not None else "-",
        "subject": redact(subject or default_subject),
        "status": status,
        "reason": redact(reason),
        "evidence": redact_tree(evidence),
        "sources": list(fixed["sources"]),
        "remediation": fixed["remediation"],
        "duration_s": round(duration, 3),
        "nodeid": redact_once(nodeid),
    }
    if dep is not None and control.id in dep.must_fail:
        result["expected"] = "fail"
    return result


_fixed: dict[tuple[str, int], dict[str, Any]] = {}


def _control_fields(control: catalog.Control) -> dict[str, Any]:
    """What every result of a control repeats (its id, family, title, sources, remediation), redacted once
    per control for as long as no new secret is known, instead of once per result."""
    key = (control.id, generation())
    fixed = _fixed.get(key)
    if fixed is None:
        fixed = _fixed[key] = redact({"control": control.id, "family": control.family, "severity": control.severity,
                                      "title": control.title, "sources": list(control.sources), "remediation": control.remediation})
    return fixed
