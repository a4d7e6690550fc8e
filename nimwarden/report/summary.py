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
) -> dict[str, Any]:
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
    return redact(summary)


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


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    path = run_dir / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(redact(summary), indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
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
