"""One result record of summary.json, from what a compliance test recorded (shared by the pytest
plugin and the in-process runner, so both write the same records)."""

from __future__ import annotations

from typing import Any

from nimwarden import catalog
from nimwarden.redact import redact


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
    result = {
        "control": control.id,
        "family": control.family,
        "severity": severity or control.severity,
        "title": control.title,
        "deployment": dep.name if dep is not None else "-",
        "subject": subject or default_subject,
        "status": status,
        "reason": reason,
        "evidence": evidence,
        "sources": list(control.sources),
        "remediation": control.remediation,
        "duration_s": round(duration, 3),
        "nodeid": nodeid,
    }
    if dep is not None and control.id in dep.must_fail:
        result["expected"] = "fail"
    return redact(result)
