"""OSCAL assessment results (NIST OSCAL 1.0.4 JSON) for auditors.

Mapping:
- one OSCAL *result* per run, its reviewed controls are the catalog controls
  that ran;
- one *observation* per summary result (method TEST, the tool as actor, the
  deployment as subject component, the evidence as relevant-evidence);
- one *finding* per control × deployment, targeting the control as an
  objective: ``satisfied`` when every result passed or did not apply,
  ``not-satisfied`` otherwise (an error is not-satisfied with reason
  ``could-not-evaluate``: fail closed);
- one *risk* per failed or waived result (status ``open`` or
  ``deviation-approved``, the waiver in its description and props).

UUIDs are name-based (uuid5) on the run and the result key, so the same
summary always gives the same document.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

OSCAL_VERSION = "1.0.4"
NS = "urn:nimwarden:oscal"
ROOT = uuid.UUID("6f6e7761-7264-5e6e-9000-6e696d776172")  # fixed namespace for nimwarden's uuid5s
EVIDENCE_LIMIT = 4000


def _catalog() -> Mapping[str, Any]:
    from nimwarden.catalog import load_catalog

    return load_catalog()


def _uuid(*parts: Any) -> str:
    return str(uuid.uuid5(ROOT, "|".join(str(p) for p in parts)))


def _string(value: Any) -> str:
    """OSCAL StringDatatype: non-empty, single line, no surrounding blanks."""
    text = re.sub(r"\s+", " ", str(value)).strip()
    return text or "-"


def _prop(name: str, value: Any) -> dict[str, Any]:
    return {"name": name, "ns": NS, "value": _string(value)}


def _state(statuses: list[str]) -> tuple[str, str | None]:
    if all(s in ("pass", "not_applicable") for s in statuses):
        return "satisfied", None
    if "fail" in statuses:
        return "not-satisfied", "fail"
    if "error" in statuses:
        return "not-satisfied", "could-not-evaluate"
    if "waived" in statuses:
        return "not-satisfied", "risk-accepted"
    return "not-satisfied", "not-evaluated"  # only skips: nothing shows the control is met


def build_oscal(summary: Mapping[str, Any], catalog: Mapping[str, Any] | None = None) -> dict[str, Any]:
    catalog = _catalog() if catalog is None else catalog
    started = summary.get("started_at") or summary.get("finished_at")
    if not started:
        raise ValueError("summary has no started_at: an OSCAL result needs a start time")
    finished = summary.get("finished_at") or started
    target = str(summary.get("target", "target"))
    run_key = (target, started)
    run = summary.get("run") or {}
    results = list(summary.get("results") or [])

    tool_uuid = _uuid(*run_key, "tool")
    components = [
        {
            "uuid": tool_uuid,
            "type": "software",
            "title": "nimwarden",
            "description": f"nimwarden {summary.get('tool_version', '')} compliance harness, catalog "
            f"{run.get('catalog_version', 'unknown')}",
            "status": {"state": "operational"},
        }
    ]
    deployment_uuid: dict[str, str] = {}
    kinds = {d.get("name"): d for d in summary.get("deployments") or []}
    for name in sorted({str(r.get("deployment", "")) for r in results} | {str(k) for k in kinds}):
        deployment_uuid[name] = _uuid(*run_key, "deployment", name)
        entry = kinds.get(name, {})
        components.append(
            {
                "uuid": deployment_uuid[name],
                "type": "service",
                "title": name or "unnamed deployment",
                "description": f"deployment {name} of target {target} ({entry.get('kind', 'unknown kind')}), "
                f"expected {entry.get('expect', 'compliant')}",
                "props": [_prop("expect", entry.get("expect", "compliant"))],
                "status": {"state": "operational"},
            }
        )

    observations, risks = [], []
    by_pair: dict[tuple[str, str], list[tuple[Mapping[str, Any], str, str | None]]] = {}
    for index, r in enumerate(results):
        control, deployment = str(r.get("control", "")), str(r.get("deployment", ""))
        status = str(r.get("status", "error"))
        obs_uuid = _uuid(*run_key, "observation", index, control, deployment, r.get("subject"))
        evidence = json.dumps(r.get("evidence") or {}, sort_keys=True, default=str)
        if len(evidence) > EVIDENCE_LIMIT:
            evidence = evidence[:EVIDENCE_LIMIT] + " … (truncated; full evidence in summary.json)"
        observations.append(
            {
                "uuid": obs_uuid,
                "title": f"{control} on {deployment}: {status}",
                "description": str(r.get("reason") or status),
                "props": [
                    _prop("control", control),
                    _prop("status", status),
                    _prop("severity", r.get("severity") or "info"),
                    _prop("family", r.get("family") or "unknown"),
                ],
                "methods": ["TEST"],
                "types": ["finding"],
                "origins": [{"actors": [{"type": "tool", "actor-uuid": tool_uuid}]}],
                "subjects": [
                    {
                        "subject-uuid": deployment_uuid[deployment],
                        "type": "component",
                        "title": str(r.get("subject") or deployment),
                    }
                ],
                "relevant-evidence": [{"href": "summary.json", "description": evidence}],
                "collected": finished,
            }
        )
        risk_uuid = None
        if status in ("fail", "waived"):
            risk_uuid = _uuid(*run_key, "risk", index, control, deployment, r.get("subject"))
            waiver = r.get("waiver") if isinstance(r.get("waiver"), Mapping) else None
            risk: dict[str, Any] = {
                "uuid": risk_uuid,
                "title": f"{control}: {r.get('title') or control}",
                "description": str(r.get("reason") or control),
                "statement": f"{r.get('subject', '')} on {deployment} fails {control} "
                f"(severity {r.get('severity') or 'info'})",
                "props": [_prop("severity", r.get("severity") or "info")],
                "status": "deviation-approved" if waiver else "open",
                "related-observations": [{"observation-uuid": obs_uuid}],
            }
            if waiver:  # OSCAL 1.0.4 risks have no remarks: the acceptance goes in the description and props
                risk["description"] += (
                    f" Risk accepted by {waiver.get('owner')} until {waiver.get('expires')} "
                    f"(ticket {waiver.get('ticket')}): {waiver.get('reason')}"
                )
                risk["props"] += [_prop(f"waiver-{k}", waiver.get(k) or "-") for k in ("owner", "ticket", "expires")]
            risks.append(risk)
        by_pair.setdefault((control, deployment), []).append((r, obs_uuid, risk_uuid))

    findings = []
    for (control, deployment), items in sorted(by_pair.items()):
        state, reason = _state([str(r.get("status", "error")) for r, _, _ in items])
        entry = catalog.get(control)
        title = getattr(entry, "title", None) or items[0][0].get("title") or control
        status: dict[str, Any] = {"state": state}
        if reason:
            status["reason"] = reason
        finding: dict[str, Any] = {
            "uuid": _uuid(*run_key, "finding", control, deployment),
            "title": f"{control} on {deployment}",
            "description": f"{title}: {state} on {deployment} ({len(items)} subject(s))",
            "props": [_prop("severity", getattr(entry, "severity", None) or items[0][0].get("severity") or "info")],
            "origins": [{"actors": [{"type": "tool", "actor-uuid": tool_uuid}]}],
            "target": {"type": "objective-id", "target-id": control, "title": title, "status": status},
            "related-observations": [{"observation-uuid": o} for _, o, _ in items],
        }
        related_risks = [{"risk-uuid": rk} for _, _, rk in items if rk]
        if related_risks:
            finding["related-risks"] = related_risks
        findings.append(finding)

    controls = sorted({str(r.get("control", "")) for r in results if r.get("control")})
    result: dict[str, Any] = {
        "uuid": _uuid(*run_key, "result"),
        "title": f"nimwarden audit of {target}",
        "description": f"Automated assessment of {target} against the nimwarden control catalog "
        f"{run.get('catalog_version', 'unknown')}" + (" (run interrupted)" if summary.get("interrupted") else ""),
        "start": started,
        "end": finished,
        "props": [_prop("target", target), _prop("interrupted", bool(summary.get("interrupted")))],
        "local-definitions": {"components": components},
        "reviewed-controls": {
            "control-selections": [
                {"include-controls": [{"control-id": c} for c in controls]} if controls else {"include-all": {}}
            ]
        },
    }
    for key, values in (("observations", observations), ("risks", risks), ("findings", findings)):
        if values:  # OSCAL arrays have minItems 1: leave out what is empty
            result[key] = values
    return {
        "assessment-results": {
            "uuid": _uuid(*run_key, "assessment-results"),
            "metadata": {
                "title": f"nimwarden assessment results: {target}",
                "last-modified": finished,
                "version": _string(summary.get("tool_version") or "0"),
                "oscal-version": OSCAL_VERSION,
                "props": [_prop("tool", "nimwarden")],
            },
            "import-ap": {
                "href": f"urn:nimwarden:catalog:{run.get('catalog_version', 'unknown')}",
                "remarks": "No separate OSCAL assessment plan: the plan is the nimwarden control catalog "
                "named here; the assessed controls are listed in reviewed-controls.",
            },
            "results": [result],
        }
    }


def write_oscal(run_dir: str | Path, summary: Mapping[str, Any]) -> Path:
    path = Path(run_dir) / "oscal-assessment-results.json"
    # one line, through json's C encoder: an OSCAL document is for tools, and indenting 2 MB of it in Python
    # took most of a manifests audit's report time
    path.write_text(json.dumps(build_oscal(summary), separators=(",", ":"), default=str) + "\n", encoding="utf-8")
    return path
