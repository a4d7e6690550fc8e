"""RAY-VERSION-001: the Ray head's version (its dashboard's ``GET /api/version``) against Ray's own
advisories and security releases (``ray.yaml``, dated data). A version match is "likely vulnerable"
(backports are not detected); a version that cannot be read is an error, never a pass."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from nimwarden.catalog import SAFE_LOADER
from nimwarden.dated import Dates, parse_dates
from nimwarden.dated import rows as dated_rows
from nimwarden.outcome import Attempt, Outcome, errored, fail_closed, failed, passed

TABLE_FILE = Path(__file__).resolve().parent / "ray.yaml"
SEVERITIES = ("critical", "high", "medium", "low")


def parse_version(text: str) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.(\d+))?\S*\s*", str(text))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def _text(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v))


@dataclass(frozen=True)
class Advisory:
    id: str
    severity: str
    cvss: float | None
    title: str
    fixed: tuple[int, int, int]  # the first fixed release (or the next minor after the branch fixes)
    url: str
    branches: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)  # "2.57" → (2, 57, 2)

    def fix_for(self, v: tuple[int, int, int]) -> tuple[int, int, int] | None:
        """The fix that applies to ``v``'s branch, or None when ``v`` is not in range."""
        branch = self.branches.get(f"{v[0]}.{v[1]}")
        if branch is not None:
            return branch if v < branch else None
        return self.fixed if v < self.fixed else None


@dataclass(frozen=True)
class RayTable:
    version: str
    dates: Dates
    advisories: tuple[Advisory, ...]

    def stamp(self, today: dt.date | None = None) -> dict[str, Any]:
        return self.dates.stamp("Ray advisories", self.version, "nimwarden/families/gpu_platform/ray.yaml", len(self.advisories), today)


def parse_table(data: Mapping[str, Any], where: str = "ray.yaml") -> RayTable:
    rows = []
    for row, a in dated_rows(data, "advisories", where, ("id", "severity", "title", "fixed", "url")):
        if a["severity"] not in SEVERITIES:
            raise ValueError(f"{row}: severity {a['severity']!r} is not one of {', '.join(SEVERITIES)}")
        fixed = parse_version(str(a["fixed"]))
        branches = {str(b): parse_version(str(v)) for b, v in (a.get("fixed_branches") or {}).items()}
        if fixed is None or None in branches.values():
            raise ValueError(f"{row}: a fixed version is not x.y.z")
        rows.append(Advisory(str(a["id"]), str(a["severity"]), float(a["cvss"]) if a.get("cvss") is not None else None,
                             str(a["title"]), fixed, str(a["url"]), branches))
    return RayTable(str(data["version"]), parse_dates(data, where), tuple(rows))


@lru_cache(maxsize=1)
def load_table() -> RayTable:
    return parse_table(yaml.load(TABLE_FILE.read_text(encoding="utf-8"), Loader=SAFE_LOADER), "nimwarden/families/gpu_platform/ray.yaml")


@fail_closed
def ray_version(answer: Attempt, table: RayTable | None = None) -> Outcome:
    """RAY-VERSION-001: the version the Ray dashboard reports is past every advisory of the table."""
    table = table or load_table()
    evidence: dict[str, Any] = {"version": answer.evidence(), "ray_advisories": table.stamp()}
    status = answer.observation.status
    if status in (401, 403):
        return errored(f"the Ray dashboard refused GET /api/version (HTTP {status}): give the profile a `ray` credential "
                       "(credentials.ray: the head's RAY_AUTH_TOKEN) so its version can be read", **evidence)
    if status != 200:
        return errored(f"the Ray dashboard answered GET /api/version with HTTP {status}: no version to judge", **evidence)
    try:
        body = answer.observation.json()
        reported = str(body.get("ray_version") or "")
    except (ValueError, AttributeError):
        return errored("GET /api/version did not answer JSON: not a Ray dashboard, or a proxy in the way", **evidence)
    v = parse_version(reported)
    if v is None:
        return errored(f"GET /api/version carries no parsable ray_version ({reported!r})", **evidence)
    evidence["ray_version"] = reported
    hits = [(a, fix) for a in table.advisories if (fix := a.fix_for(v)) is not None]
    if not hits:
        return passed(f"Ray {reported} is past every advisory in the Ray table {table.version} ({table.dates.words()})", **evidence)
    hits.sort(key=lambda h: SEVERITIES.index(h[0].severity))
    evidence["advisories"] = [{"id": a.id, "severity": a.severity, "cvss": a.cvss, "fixed_in": _text(fix), "url": a.url}
                              for a, fix in hits]
    names = "; ".join(f"{a.id} (fixed in {_text(fix)}{f', CVSS {a.cvss:g}' if a.cvss else ''})" for a, fix in hits)
    return failed(f"Ray {reported} is likely vulnerable (version match; backports not detected): {names}",
                  severity=hits[0][0].severity, **evidence)
