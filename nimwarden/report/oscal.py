"""OSCAL assessment results (NIST OSCAL 1.0.4 JSON) for auditors.

Mapping:
- one OSCAL *result* per run, its reviewed controls are the catalog controls
  that ran;
- one *observation* per judged result (method TEST, the tool as actor, the
  deployment as subject component, the evidence as relevant-evidence), and one per
  deployment and family for the controls that did not apply, naming each control and why
  (as the Allure results do: a manifests-only repository audit has two not-applicable
  results for each judged one, and an observation each was two-thirds of the document and of
  its making); summary.json keeps every result;
- one *finding* per control × deployment where the control applied, targeting
  the control as an objective: ``satisfied`` when every result passed (or did not
  apply), ``not-satisfied`` otherwise (an error is not-satisfied with reason
  ``could-not-evaluate``: fail closed). A control that did not apply to a
  deployment at all has no finding there: OSCAL's states are satisfied and
  not-satisfied, and nothing was evaluated to call it satisfied (its observation says
  why it did not apply);
- one *risk* per failed or waived result (status ``open`` or
  ``deviation-approved``, the waiver in its description and props).

UUIDs are name-based (uuid5) on the run and the result key, so the same
summary always gives the same document.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import uuid
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from nimwarden.report.grouped import by_reason

OSCAL_VERSION = "1.0.4"
NS = "urn:nimwarden:oscal"
ROOT = uuid.UUID("6f6e7761-7264-5e6e-9000-6e696d776172")  # fixed namespace for nimwarden's uuid5s
EVIDENCE_LIMIT = 4000


def _catalog() -> Mapping[str, Any]:
    from nimwarden.catalog import load_catalog

    return load_catalog()


_ROOT_BYTES = ROOT.bytes


_SHA1_ROOT = hashlib.sha1(_ROOT_BYTES)  # noqa: S324 - RFC 4122 name-based ids (uuid5), not security


def _uuid(*parts: Any) -> str:
    """``str(uuid.uuid5(ROOT, "|".join(parts)))``, without the UUID object (one per observation of 100,000)."""
    h = _SHA1_ROOT.copy()
    h.update("|".join(map(str, parts)).encode("utf-8"))
    digest = bytearray(h.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_strings: dict[str, str] = {}


def _string(value: Any) -> str:
    """OSCAL StringDatatype: non-empty, single line, no surrounding blanks."""
    raw = str(value)
    text = _strings.get(raw)
    if text is None:
        text = re.sub(r"\s+", " ", raw).strip() or "-"
        if len(_strings) < 10_000:
            _strings[raw] = text
    return text


def _prop(name: str, value: Any) -> dict[str, Any]:
    return {"name": name, "ns": NS, "value": _string(value)}


_ENCODE = json.JSONEncoder(separators=(",", ":"), default=str).encode  # the document's encoder: one line, no blanks
_q = encode_basestring_ascii  # a JSON string, as that encoder writes it (C, ensure_ascii)
_props: dict[tuple, str] = {}


def _observation_props(control: str, status: str, severity: str, family: str) -> str:
    """An observation's props, as JSON text: the same few combinations for 100,000 observations, made once each."""
    key = (control, status, severity, family)
    props = _props.get(key)
    if props is None:
        props = _ENCODE([_prop("control", control), _prop("status", status), _prop("severity", severity), _prop("family", family)])
        if len(_props) < 10_000:
            _props[key] = props
    return props


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


def build_oscal(summary: Mapping[str, Any], catalog: Mapping[str, Any] | None = None, stream: Any = None) -> dict[str, Any]:
    """The OSCAL assessment-results document. ``stream`` (a text file's ``write``): the document is written
    there as it is made, an observation at a time, and the dict returned holds no observations, risks
    or findings (a run of 100,000 results would otherwise hold them all, and the whole text, at once)."""
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

    risks: list[dict[str, Any]] = []
    by_pair: dict[tuple[str, str], list[tuple[Mapping[str, Any], str, str | None]]] = {}
    judged, not_applicable = [], {}
    for index, r in enumerate(results):
        if r.get("status") == "not_applicable":
            not_applicable.setdefault((str(r.get("deployment", "")), str(r.get("family") or "unknown")), []).append(r)
        else:
            judged.append((index, r))
    observations = itertools.chain(
        (_observation(index, r, run_key, tool_uuid, deployment_uuid, finished, by_pair, risks) for index, r in judged),
        (_not_applicable(deployment, family, items, run_key, tool_uuid, deployment_uuid, finished, by_pair)
         for (deployment, family), items in not_applicable.items()))

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
    doc = {
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
    made = {"observations": lambda: observations, "risks": lambda: risks,
            "findings": lambda: _findings(by_pair, catalog, run_key, tool_uuid)}
    # OSCAL arrays have minItems 1: leave out what is empty (known before anything is made)
    applied = any(r.get("status") != "not_applicable" for r in results)
    present = [key for key, there in (("observations", bool(results)), ("findings", applied),
                                      ("risks", any(r.get("status") in ("fail", "waived") for r in results))) if there]
    present.sort(key=("observations", "risks", "findings").index)
    if stream is None:
        for key in present:
            result[key] = [json.loads(item) if isinstance(item, str) else item for item in made[key]()]
        return doc
    encode = _ENCODE
    for key in present:
        result[key] = _HOLE.format(key)
    rest = encode(doc)
    for key in present:  # observations first: making them makes the risks and the findings' pairs
        before, rest = rest.split(encode(_HOLE.format(key)), 1)
        stream(before + "[")
        for i, item in enumerate(made[key]()):
            stream(("," if i else "") + (item if isinstance(item, str) else encode(item)))  # observations and findings come as text
        stream("]")
        del result[key]
    stream(rest)
    return doc


_HOLE = "\x00nimwarden-oscal-{}\x00"  # where a streamed array goes in the document's text


_evidence_text = json.JSONEncoder(sort_keys=True, default=str).encode  # json.dumps(…, sort_keys=True, default=str)


def _observation(index: int, r: Mapping[str, Any], run_key: tuple, tool_uuid: str, deployment_uuid: Mapping[str, str],
                 finished: str, by_pair: dict, risks: list) -> str:
    """One result's observation, as the JSON text json's encoder would write for it (made from a template:
    100,000 of them went through the encoder as dicts in more time than judging them took); its risk (a
    failure, a waived one) goes to ``risks``, its pair to ``by_pair``."""
    control, deployment = str(r.get("control", "")), str(r.get("deployment", ""))
    status = str(r.get("status", "error"))
    obs_uuid = _uuid(*run_key, "observation", index, control, deployment, r.get("subject"))
    evidence = _evidence_text(r["evidence"]) if r.get("evidence") else "{}"
    if len(evidence) > EVIDENCE_LIMIT:
        evidence = evidence[:EVIDENCE_LIMIT] + " … (truncated; full evidence in summary.json)"
    observation = (
        f'{{"uuid":"{obs_uuid}","title":{_q(f"{control} on {deployment}: {status}")},'
        f'"description":{_q(str(r.get("reason") or status))},'
        f'"props":{_observation_props(control, status, r.get("severity") or "info", r.get("family") or "unknown")},'
        f'"methods":["TEST"],"types":["finding"],"origins":[{{"actors":[{{"type":"tool","actor-uuid":"{tool_uuid}"}}]}}],'
        f'"subjects":[{{"subject-uuid":"{deployment_uuid[deployment]}","type":"component","title":{_q(str(r.get("subject") or deployment))}}}],'
        f'"relevant-evidence":[{{"href":"summary.json","description":{_q(evidence)}}}],"collected":{_q(finished)}}}'
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
    return observation


def _not_applicable(deployment: str, family: str, items: list, run_key: tuple, tool_uuid: str,
                    deployment_uuid: Mapping[str, str], finished: str, by_pair: dict) -> str:
    """The observation of a deployment's controls of one family that did not apply: each control, by reason (the
    findings of those controls refer to it)."""
    obs_uuid = _uuid(*run_key, "not-applicable", deployment, family)
    for r in items:
        by_pair.setdefault((str(r.get("control", "")), deployment), []).append((r, obs_uuid, None))
    reasons = by_reason(items, "not applicable")
    return (
        f'{{"uuid":"{obs_uuid}","title":{_q(f"{family}: {len(items)} control(s) not applicable to {deployment}")},'
        f'"description":{_q(reasons)},'
        f'"props":{_ENCODE([_prop("status", "not_applicable"), _prop("family", family), _prop("results", len(items))])},'
        f'"methods":["TEST"],"types":["control-objective"],"origins":[{{"actors":[{{"type":"tool","actor-uuid":"{tool_uuid}"}}]}}],'
        f'"subjects":[{{"subject-uuid":"{deployment_uuid[deployment]}","type":"component","title":{_q(deployment or "unnamed deployment")}}}],'
        f'"relevant-evidence":[{{"href":"summary.json","description":"each control\'s result, one by one, in summary.json"}}],'
        f'"collected":{_q(finished)}}}'
    )


def _findings(by_pair: Mapping[tuple[str, str], list], catalog: Mapping[str, Any], run_key: tuple, tool_uuid: str):
    """One finding per control and deployment, made one at a time (a streamed document holds none at once),
    each as the JSON text json's encoder would write for it."""
    severities: dict[str, str] = {}
    for (control, deployment), items in sorted(by_pair.items()):
        if all(r.get("status") == "not_applicable" for r, _, _ in items):
            continue  # nothing evaluated: no finding (its observation says why it did not apply)
        state, reason = _state([str(r.get("status", "error")) for r, _, _ in items])
        entry = catalog.get(control)
        title = getattr(entry, "title", None) or items[0][0].get("title") or control
        severity = getattr(entry, "severity", None) or items[0][0].get("severity") or "info"
        props = severities.get(severity)
        if props is None:
            props = severities[severity] = _ENCODE([_prop("severity", severity)])
        status = f'{{"state":"{state}"' + (f',"reason":"{reason}"}}' if reason else "}")
        observations = ",".join(f'{{"observation-uuid":"{o}"}}' for _, o, _ in items)
        related_risks = ",".join(f'{{"risk-uuid":"{rk}"}}' for _, _, rk in items if rk)
        yield (
            f'{{"uuid":"{_uuid(*run_key, "finding", control, deployment)}","title":{_q(f"{control} on {deployment}")},'
            f'"description":{_q(f"{title}: {state} on {deployment} ({len(items)} subject(s))")},"props":{props},'
            f'"origins":[{{"actors":[{{"type":"tool","actor-uuid":"{tool_uuid}"}}]}}],'
            f'"target":{{"type":"objective-id","target-id":{_q(str(control))},"title":{_q(str(title))},"status":{status}}},'
            f'"related-observations":[{observations}]' + (f',"related-risks":[{related_risks}]}}' if related_risks else "}")
        )


def write_oscal(run_dir: str | Path, summary: Mapping[str, Any]) -> Path:
    """One line, through json's C encoder, written as it is made (an OSCAL document is for tools; indenting
    it in Python, or holding 100,000 observations and their text at once, cost more than judging them)."""
    path = Path(run_dir) / "oscal-assessment-results.json"
    with open(path, "w", encoding="utf-8") as out:
        build_oscal(summary, stream=out.write)
        out.write("\n")
    return path
