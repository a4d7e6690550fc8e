"""Build and write a run's ``summary.json`` (docs/architecture.md, Contracts: reports) and the run directory.

``reports/<UTC stamp>/`` holds summary.json, report.html, junit.xml and
allure-results/; ``reports/latest`` points at the newest run.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import platform
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nimwarden import __version__
from nimwarden.catalog import CATALOG_VERSION
from nimwarden.outcome import STATUSES
from nimwarden.redact import redact

SCHEMA = "nimwarden/summary/v1"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_dir(reports_dir: Path, started: dt.datetime) -> Path:
    """reports/<UTC stamp>/, unique even when two runs start in the same second."""
    base = started.strftime("%Y%m%dT%H%M%SZ")
    reports_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        candidate = reports_dir / (base if n == 0 else f"{base}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run directory under {reports_dir}")


def totals(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    out = {s: 0 for s in STATUSES}
    for r in results:
        out[r["status"]] = out.get(r["status"], 0) + 1
    return out


def fail_by_severity(results: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        if r.get("status") == "fail":
            sev = r.get("severity") or "unknown"
            out[sev] = out.get(sev, 0) + 1
    return out


def build_summary(
    *,
    target: Any,
    results: list[dict[str, Any]],
    started: dt.datetime,
    finished: dt.datetime,
    interrupted: bool,
    not_run: list[str],
    options: list[str],
    waiver_findings: list[dict[str, Any]] | None = None,
    data: dict[str, dict[str, Any]] | None = None,
    results_redacted: bool = False,
) -> dict[str, Any]:
    """The summary, redacted. ``results_redacted``: every result was redacted already, with every secret
    this process knows (``make_result`` during a run in which no secret was learnt): only what was added
    to a result since (a waiver) and the rest of the summary pass through the redactor again."""
    ordered = sorted(results, key=lambda r: (r["deployment"], r["family"], r["control"], r["subject"]))
    summary: dict[str, Any] = {
        "schema": SCHEMA,
        "tool_version": __version__,
        "target": target.name if target else "",
        "started_at": iso(started),
        "finished_at": iso(finished),
        "interrupted": interrupted,
        "results": ordered,
        "totals": totals(ordered),
        # Additions beyond the contract's minimum; readers must ignore keys they do not know.
        # Failures per severity: what a later run's trend chart reads of this one, from the head of the file.
        "fail_by_severity": fail_by_severity(ordered),
        "deployments": [
            {"name": d.name, "kind": d.kind, "expect": d.expect, "must_fail": list(d.must_fail)} for d in (target.deployments if target else ())
        ],
        "not_run": not_run,
        "waiver_findings": waiver_findings or [],
        # The dated data the families judged against (CVE tables, release maps, port tables): name, version,
        # as_of (the newest entry held) and checked (the day the sources were last read); age_days counts from checked.
        "data": data or {},
        "warnings": data_warnings(data or {}),
        "run": {
            "catalog_version": CATALOG_VERSION,
            "target_file": str(target.path) if target else "",
            "options": options,
            "host": platform.node(),
            "user": _user(),
            "python": sys.version.split()[0],
            "command": " ".join(sys.argv),
        },
    }
    if not results_redacted:
        return redact(summary)
    summary["results"] = None
    clean = redact(summary)
    clean["results"] = [redact(r) if "waiver" in r else r for r in ordered]
    return clean


def data_warnings(data: dict[str, dict[str, Any]]) -> list[str]:
    """A warning (never a failure) for every dated table whose sources were last checked too long ago
    (``checked``; a table that records only ``as_of`` is aged from that)."""
    out = []
    for key, d in sorted(data.items()):
        if not d.get("stale"):
            continue
        when = (f"its sources were checked {d.get('age_days')} days ago (on {d['checked']}; newest entry held {d.get('as_of')})"
                if d.get("checked") else f"it is {d.get('age_days')} days old (as of {d.get('as_of')})")
        out.append(f"{d.get('name', key)} {d.get('version', '')}: {when}: newer advisories may be missing; re-check the sources "
                   f"and update {d.get('source', 'the table')}")
    return out


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def write_summary(run_dir: Path, summary: Mapping[str, Any], results_redacted: bool = False) -> Path:
    """summary.json: indented, each result on a line of its own (json's C encoder writes those; an
    indented dump of 100,000 results would go through its Python encoder, ten times slower), every key
    before the results (:mod:`nimwarden.report.trends` reads a run's head without its results). Everything
    passes through the redactor again, the results too unless ``results_redacted`` (see build_summary)."""
    return finish_summary(run_dir, summary, write_results(run_dir, summary, results_redacted))


def results_path(run_dir: Path) -> Path:
    """Where :func:`write_results` writes the results' part of summary.json."""
    return Path(run_dir) / ".summary-results.tmp"


def write_results(run_dir: Path, summary: Mapping[str, Any], results_redacted: bool = False) -> Path | None:
    """The results' part of summary.json, to a file beside it, for :func:`finish_summary`: the slow part of
    the summary, written while the other writers finish and before the rest of it (its timings) is known.
    None when the summary has no results list. Written a line at a time: the text of 100,000 results is
    never one string in memory."""
    results = summary.get("results")
    if results is None:
        return None
    if not results_redacted:
        results = redact(results)
    body = results_path(run_dir)
    encode = json.JSONEncoder(default=str).encode
    with open(body, "w", encoding="utf-8") as out:
        for i, r in enumerate(results):
            out.write(("\n    " if i == 0 else ",\n    ") + encode(r))
        if results:
            out.write("\n  ")
    return body


def finish_summary(run_dir: Path, summary: Mapping[str, Any], body: Path | None) -> Path:
    """summary.json from every key but the results (redacted here) and the results :func:`write_results` wrote
    (``body``, removed once copied; None: the summary has no results list)."""
    path = Path(run_dir) / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    clean = redact({k: v for k, v in summary.items() if k != "results"})
    text = json.dumps(clean, indent=2, sort_keys=False, default=str)
    with open(tmp, "wb") as out:
        if body is None:
            out.write(text.encode("utf-8"))
        else:
            out.write(((text[:-2] + ",\n  " if clean else "{\n  ") + '"results": [').encode("utf-8"))
            with open(body, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
            out.write(b"]\n}")
        out.write(b"\n")
    if body is not None:
        body.unlink()
    tmp.replace(path)
    return path


def point_latest(reports_dir: Path, run_dir: Path) -> None:
    link = reports_dir / "latest"
    tmp = reports_dir / f".latest-{os.getpid()}"
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    tmp.symlink_to(run_dir.name)
    tmp.replace(link)
