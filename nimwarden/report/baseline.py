"""Gate on what is new: compare a run's findings with a baseline summary.

The baseline is ``--baseline FILE`` (a summary.json) or, by default, the previous comparable run
of the same target (:func:`nimwarden.report.trends.previous_run`). Findings (``fail`` and
``error``) are matched by fingerprint (:mod:`nimwarden.report.fingerprint`), so a lab port or a pod
suffix that changed between the runs does not make a finding new.

Every reported result (fail, error, waived) gets ``baseline_state``: ``new`` or ``unchanged``;
baseline findings that were checked again and now pass (or no longer apply) are listed in
``summary["baseline"]["absent"]`` (SARIF's ``absent``); those this run did not look at (a ``-k``
run) are only counted, as ``not_rechecked``. With ``--fail-on-new`` the exit status counts only new findings: unchanged
ones are set aside before :func:`nimwarden.report.gating.exit_status` runs. A canary is never
narrowed: its failures are what proves the harness can see.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nimwarden.report import gating, trends
from nimwarden.report.fingerprint import fingerprints

FINDINGS = ("fail", "error")
REPORTED = ("fail", "error", "waived")
SOLVED = ("pass", "not_applicable")


def read_baseline(path: str | Path) -> dict[str, Any]:
    """A summary.json to compare with, read as a comparison reads an earlier run (:func:`trends.read_earlier`: its
    findings and waived results, and what it evaluated); ValueError naming the file when it is not one."""
    file = Path(path)
    if file.is_dir():
        file = file / "summary.json"
    data = trends.read_earlier(file)
    if data is not None:
        return data
    if file.exists() and trends.regular_file(file) is None:
        raise ValueError(f"{file}: not a regular file (a summary.json written by nimwarden is one)")
    try:  # why not (the file read whole only here, to say so)
        json.loads(file.read_bytes())
    except OSError as exc:
        raise ValueError(f"{file}: cannot read the baseline ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ValueError(f"{file}: the baseline is not valid JSON ({exc})") from None
    raise ValueError(f"{file}: not a nimwarden summary.json (schema nimwarden/summary/v1)")


def _brief(result: Mapping[str, Any], fingerprint: str) -> dict[str, Any]:
    keys = ("control", "deployment", "subject", "status", "severity", "title", "family", "reason")
    return {k: result.get(k) for k in keys} | {"fingerprint": fingerprint}


def attach(summary: dict[str, Any], previous: Mapping[str, Any] | None, source: str | None, fail_on_new: bool) -> dict[str, Any]:
    """Mark every reported result new/unchanged against ``previous`` and store ``summary["baseline"]``."""
    results = summary.get("results") or []
    for r, fp in zip(results, fingerprints(results)):
        r["fingerprint"] = fp
    before = list((previous or {}).get("results") or [])
    before_fps = fingerprints(before)
    findings = {fp: r for r, fp in zip(before, before_fps) if r.get("status") in FINDINGS}
    reported = {fp for r, fp in zip(before, before_fps) if r.get("status") in REPORTED}
    counts = {"new": 0, "unchanged": 0, "absent": 0, "not_rechecked": 0}
    now_findings = set()
    solved = {fp for r, fp in zip(results, (r["fingerprint"] for r in results)) if r.get("status") in SOLVED}
    for r in results:
        status = r.get("status")
        if status not in REPORTED:
            r.pop("baseline_state", None)
            continue
        known = findings if status in FINDINGS else reported
        r["baseline_state"] = "unchanged" if previous is not None and r["fingerprint"] in known else "new"
        counts[r["baseline_state"]] += 1
        if status in FINDINGS:
            now_findings.add(r["fingerprint"])
    # absent: looked at again and no longer a finding; a narrower run (-k) that did not look is not "absent"
    absent = [_brief(r, fp) for fp, r in sorted(findings.items()) if fp not in now_findings and fp in solved]
    counts["absent"] = len(absent)
    counts["not_rechecked"] = sum(1 for fp in findings if fp not in now_findings and fp not in solved)
    summary["baseline"] = {"source": source, "started_at": (previous or {}).get("started_at"),
                           "fail_on_new": bool(fail_on_new), "counts": counts, "absent": absent}
    return summary["baseline"]


def gated(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary the ``--fail-on-new`` gate judges: unchanged findings of non-canary deployments set aside."""
    canaries = {d.get("name") for d in summary.get("deployments") or [] if d.get("expect") == "noncompliant"}
    out = copy.deepcopy(dict(summary))
    for r in out.get("results") or []:
        if r.get("status") in FINDINGS and r.get("baseline_state") == "unchanged" and r.get("deployment") not in canaries:
            r["status"] = "baselined"
    return out


def fail_on_new(summary: Mapping[str, Any]) -> bool:
    return bool((summary.get("baseline") or {}).get("fail_on_new"))


def exit_status(summary: Mapping[str, Any], fail_on: str | None = None) -> int:
    """The exit status of the run as it was gated: new findings only under --fail-on-new."""
    return gating.exit_status(gated(summary) if fail_on_new(summary) else summary, fail_on)


def explain(summary: Mapping[str, Any]) -> list[str]:
    b = summary.get("baseline")
    if not b:
        return []
    c = b.get("counts") or {}
    against = f"baseline {b['source']}" if b.get("source") else "no baseline (first run: every finding is new)"
    line = f"{against}: {c.get('new', 0)} new, {c.get('unchanged', 0)} unchanged, {c.get('absent', 0)} gone"
    if c.get("not_rechecked"):
        line += f", {c['not_rechecked']} not rechecked"
    if b.get("fail_on_new"):
        line += " (--fail-on-new: only new findings count)"
    return [line]
