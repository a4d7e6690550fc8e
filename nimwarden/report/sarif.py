"""SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps).

Rules come from the catalog; every ``fail`` and ``error`` becomes a result
(a file with no results for a failing run is the complaint users have about
peer tools). A waived failure is kept as a result with an external, accepted
suppression, so the dashboard shows the risk as accepted instead of losing it.

Locations: one object per result. A Kubernetes judge lists its findings in
``evidence.locations`` (object, field path and, for manifest sources, the file
and the line of that field); each becomes its own SARIF result whose
``physicalLocation`` is that file and ``region.startLine``, so code scanning
annotates the line of the chart's pull request. Without a file (live and
snapshot sources) a result keeps its logical location (the object) and points
at the target profile that declares the deployment (dashboards need a file).
Every result also carries logical locations: ``<target>/<deployment>/<subject>``
and the Kubernetes objects the judge named.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
REPORTED = ("fail", "error", "waived")
# GitHub code scanning ranks alerts by this numeric property (CVSS-like scale).
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}


def _catalog() -> Mapping[str, Any]:
    from nimwarden.catalog import load_catalog

    return load_catalog()


def _rule(control_id: str, control: Any, fallback: Mapping[str, Any]) -> dict[str, Any]:
    title = getattr(control, "title", None) or fallback.get("title") or control_id
    severity = getattr(control, "severity", None) or fallback.get("severity") or "info"
    family = getattr(control, "family", None) or fallback.get("family") or "unknown"
    remediation = getattr(control, "remediation", None) or fallback.get("remediation") or ""
    sources = list(getattr(control, "sources", None) or fallback.get("sources") or [])
    mitre = list(getattr(control, "mitre", ()) or ())
    help_lines = [f"Remediation: {remediation}"] if remediation else []
    help_lines += [f"Source: {s}" for s in sources]
    help_md = "\n".join([f"**Remediation:** {remediation}"] if remediation else []) + "".join(
        f"\n- {s}" for s in sources
    )
    return {
        "id": control_id,
        "name": "".join(part.capitalize() for part in control_id.split("-")),
        "shortDescription": {"text": title},
        "fullDescription": {"text": getattr(control, "rationale", None) or title},
        "help": {"text": "\n".join(help_lines) or title, "markdown": help_md or title},
        "defaultConfiguration": {"level": LEVEL.get(severity, "warning")},
        "properties": {
            "tags": ["security", "compliance", family] + [m.split(" ")[0] for m in mitre],
            "security-severity": SECURITY_SEVERITY.get(severity, "0.0"),
            "precision": "high",
            "severity": severity,
            "family": family,
            "sources": sources,
            "mitre": mitre,
        },
    }


def _uri(path: str) -> str:
    """A relative URI for a manifest path; absolute paths become file:// URIs (once per path: a large run
    names one file in thousands of findings)."""
    path = str(path)
    uri = _uris.get(path)
    if uri is None:
        p = PurePosixPath(path.replace("\\", "/"))
        uri = Path(str(p)).as_uri() if p.is_absolute() else quote(str(p), safe="/")
        if len(_uris) < 50_000:
            _uris[path] = uri
    return uri


_uris: dict[str, str] = {}


def profile_uri(summary: Mapping[str, Any]) -> str | None:
    """The target profile as a repository-relative path (profiles live under targets/ by convention)."""
    path = str((summary.get("run") or {}).get("target_file") or "")
    if not path:
        return None
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if "targets" in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("targets"):])
    return parts[-1]


def _locations(result: Mapping[str, Any], target: str, fallback_file: str | None) -> list[dict[str, Any]]:
    evidence = result.get("evidence") if isinstance(result.get("evidence"), Mapping) else {}
    deployment, subject = str(result.get("deployment", "")), str(result.get("subject", ""))
    logical = [{"name": subject or deployment or target, "fullyQualifiedName": f"{target}/{deployment}/{subject}",
                "kind": "resource"}]
    objects = evidence.get("objects")
    if isinstance(objects, list):  # Kubernetes judges name every object they judged
        logical += [{"name": str(o), "fullyQualifiedName": f"{target}/{o}", "kind": "resource"}
                    for o in objects[:9] if isinstance(o, str) and o and o != subject]
    location: dict[str, Any] = {"logicalLocations": logical}
    file = evidence.get("file")
    if isinstance(file, str) and file:
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(file)}}
        if not PurePosixPath(file).is_absolute():
            physical["artifactLocation"]["uriBaseId"] = "%SRCROOT%"
        line = evidence.get("line")
        if isinstance(line, int) and not isinstance(line, bool) and line >= 1:
            physical["region"] = {"startLine": line}
        location["physicalLocation"] = physical
    elif fallback_file:
        # Dashboards such as GitHub code scanning need a file: point at the profile that declares the target.
        location["physicalLocation"] = {"artifactLocation": {"uri": _uri(fallback_file), "uriBaseId": "%SRCROOT%"}}
    return [location]


def _fingerprint(result: Mapping[str, Any], target: str) -> str:
    """Control + deployment + normalised subject (no ports, no pod suffixes): stable across runs; with the
    offending object's field when a result is split into one SARIF result per finding."""
    if result.get("fingerprint"):
        base = str(result["fingerprint"])
    else:
        from nimwarden.report.fingerprint import fingerprints

        base = fingerprints([result])[0]
    where = result.get("_location")
    if isinstance(where, Mapping):
        return hashlib.sha256(f"{base}|{where.get('object', '')}|{where.get('path', '')}|{where.get('container', '')}".encode()).hexdigest()
    return base


def _absent(item: Mapping[str, Any], rule_index: Mapping[str, int], target: str, fallback_file: str | None) -> dict[str, Any]:
    """A baseline finding no longer found (SARIF baselineState ``absent``)."""
    where = f"{item.get('deployment', '')} {item.get('subject', '')}".strip()
    return {
        "ruleId": item.get("control"), "ruleIndex": rule_index[item.get("control")], "kind": "pass", "level": "none",
        "baselineState": "absent", "message": {"text": f"no longer found: {where} (was {item.get('status')})"},
        "locations": _locations(item, target, fallback_file),
        "partialFingerprints": {"nimwardenFinding/v2": _fingerprint(item, target)},
        "properties": {"deployment": item.get("deployment"), "subject": item.get("subject"), "status": "absent",
                       "was": item.get("status"), "severity": item.get("severity") or "info", "family": item.get("family")},
    }


def _per_location(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A failed result with several findings: one result per finding, each naming its object, field and line."""
    evidence = result.get("evidence") if isinstance(result.get("evidence"), Mapping) else {}
    locations = evidence.get("locations")
    if result.get("status") == "error" or not isinstance(locations, list) or not locations:
        return [result]
    out = []
    for loc in locations:
        if not isinstance(loc, Mapping):
            continue
        who = f"{loc.get('object')} → {loc['container']}" if loc.get("container") else str(loc.get("object"))
        text = f"{who}: {loc.get('path')} — {loc.get('problem')}" if loc.get("path") else f"{who} — {loc.get('problem')}"
        ev = {k: v for k, v in evidence.items() if k not in ("file", "line", "locations", "findings")}
        ev.update({k: loc[k] for k in ("file", "line") if loc.get(k) is not None})
        ev["objects"] = [str(loc.get("object"))]
        out.append({**result, "subject": str(loc.get("object")), "reason": text, "evidence": ev, "_location": loc,
                    "severity": loc.get("severity") or result.get("severity")})
    return out or [result]


def _result(
    result: Mapping[str, Any], rule_index: Mapping[str, int], target: str, fallback_file: str | None = None
) -> dict[str, Any]:
    status = result.get("status")
    severity = result.get("severity") or "info"
    where = f"{result.get('deployment', '')} {result.get('subject', '')}".strip()
    prefix = "could not evaluate: " if status == "error" else ""
    out: dict[str, Any] = {
        "ruleId": result.get("control"),
        "ruleIndex": rule_index[result.get("control")],
        # "open": the tool could not decide (SARIF §3.27.9); the spec then requires level "none".
        "kind": "open" if status == "error" else "fail",
        "level": "none" if status == "error" else LEVEL.get(severity, "warning"),
        "message": {"text": f"{prefix}{where}: {result.get('reason', '')}"},
        "locations": _locations(result, target, fallback_file),
        "partialFingerprints": {"nimwardenFinding/v2": _fingerprint(result, target)},
        "properties": {
            "deployment": result.get("deployment"),
            "subject": result.get("subject"),
            "status": status,
            "severity": severity,
            "family": result.get("family"),
            "evidence": result.get("evidence") or {},
        },
    }
    if result.get("baseline_state") in ("new", "unchanged"):
        out["baselineState"] = result["baseline_state"]
    waiver = result.get("waiver")
    if status == "waived" and isinstance(waiver, Mapping):
        out["suppressions"] = [
            {
                "kind": "external",
                "state": "accepted",
                "justification": f"{waiver.get('reason', '')} (owner {waiver.get('owner', '?')}, "
                f"ticket {waiver.get('ticket', '?')}, expires {waiver.get('expires', '?')})",
            }
        ]
    return out


def _notifications(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    notes = []
    for finding in summary.get("waiver_findings") or []:
        waiver = finding.get("waiver") or {}
        notes.append(
            {
                "level": "error" if finding.get("kind") == "expired" else "warning",
                "message": {"text": str(finding.get("reason", ""))},
                "associatedRule": {"id": str(waiver.get("control", ""))},
                "properties": {"kind": finding.get("kind"), "waiver": waiver},
            }
        )
    return notes


def build_sarif(summary: Mapping[str, Any], catalog: Mapping[str, Any] | None = None) -> dict[str, Any]:
    doc, results = _document(summary, catalog)
    doc["runs"][0]["results"] = list(results)
    return doc


def _document(summary: Mapping[str, Any], catalog: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], Iterator]:
    """(the SARIF document, its run's results left out; the results, made one at a time as they are iterated)."""
    catalog = _catalog() if catalog is None else catalog
    target = str(summary.get("target", "target"))
    results = list(summary.get("results") or [])
    rules, rule_index = [], {}
    for control_id, control in sorted(catalog.items()):
        if getattr(control, "retired", False):
            continue
        rule_index[control_id] = len(rules)
        rules.append(_rule(control_id, control, {}))
    absent = list((summary.get("baseline") or {}).get("absent") or [])
    for r in results + absent:  # results for controls the installed catalog does not know still need a rule
        cid = r.get("control")
        if cid not in rule_index:
            rule_index[cid] = len(rules)
            rules.append(_rule(str(cid), None, r))
    run = summary.get("run") or {}
    invocation: dict[str, Any] = {
        "executionSuccessful": not summary.get("interrupted", False),
        "toolConfigurationNotifications": _notifications(summary),
    }
    if summary.get("started_at"):
        invocation["startTimeUtc"] = summary["started_at"]
    if summary.get("finished_at"):
        invocation["endTimeUtc"] = summary["finished_at"]
    if isinstance(summary.get("exit_status"), int):
        invocation["exitCode"] = summary["exit_status"]
    if run.get("command"):
        invocation["commandLine"] = str(run["command"])
    for key, field in (("host", "machine"), ("user", "account")):
        if run.get(key):
            invocation[field] = str(run[key])
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "nimwarden",
                        "version": str(summary.get("tool_version", "")),
                        "semanticVersion": str(summary.get("tool_version", "")),
                        "rules": rules,
                        "properties": {"catalog_version": run.get("catalog_version")},
                    }
                },
                "automationDetails": {"id": f"nimwarden/{target}/{summary.get('started_at', '')}"},
                "invocations": [invocation],
                "results": None,
                "properties": {"target": target, "totals": summary.get("totals") or {}},
            }
        ],
    }, _results(results, absent, rule_index, target, profile_uri(summary))


def _results(results: list, absent: list, rule_index: dict, target: str, uri: Any) -> Iterator:
    for r in results:
        if r.get("status") in REPORTED:
            for one in _per_location(r):
                yield _result(one, rule_index, target, uri)
    for a in absent:
        yield _absent(a, rule_index, target, uri)


_HOLE = "\x00nimwarden-sarif-results\x00"  # where the results go in the document's text


def write_sarif(run_dir: str | Path, summary: Mapping[str, Any]) -> Path:
    """One line, through json's C encoder (code-scanning tools read it; indenting it in Python is slow): the text of
    ``json.dumps(build_sarif(summary), separators=(",", ":"), default=str)``, its results made and written one at a
    time (a repository audit reports tens of thousands: their dicts and the whole text at once were most of this
    writer's memory)."""
    path = Path(run_dir) / "report.sarif"
    doc, results = _document(summary)
    doc["runs"][0]["results"] = _HOLE
    encode = json.JSONEncoder(separators=(",", ":"), default=str).encode
    head, tail = encode(doc).split(encode(_HOLE), 1)
    with open(path, "w", encoding="utf-8") as out:
        out.write(head + "[")
        for i, item in enumerate(results):
            out.write(("," if i else "") + encode(item))
        out.write("]" + tail + "\n")
    return path
