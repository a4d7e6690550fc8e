"""What a summary.json must hold for the writers to read it, declared once (pydantic, strict types).

`nimwarden report RUN_DIR` writes every report again from a summary.json a user hands back — one edited by hand,
or cut short by a full disk. A value of the wrong type there (a result replaced by a list, ``totals.fail: null``)
was a writer's TypeError deep in report.html or OSCAL, reported as a bug of nimwarden (exit 70). Checked first, it
is one line naming the field (exit 2). Only what the writers read is declared; anything else a file holds is kept
as it is (``extra="allow"``), and a field may be absent or null where the writers have a default.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nimwarden.outcome import STATUSES

Status = Literal[STATUSES]  # type: ignore[valid-type]


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class Result(_Part):
    status: Status
    control: str | None = None
    deployment: str | None = None
    subject: str | None = None
    reason: str | None = None
    family: str | None = None
    severity: str | None = None
    title: str | None = None
    remediation: str | None = None
    evidence: dict[str, Any] | None = None
    sources: list[str] | None = None
    duration_s: float | None = None
    waiver: dict[str, Any] | None = None
    baseline_state: str | None = None
    expected: str | None = None
    nodeid: str | None = None
    fingerprint: str | None = None


class Deployment(_Part):
    name: str | None = None
    kind: str | None = None
    expect: str | None = None
    verdict: str | None = None
    why: str | None = None
    must_fail: list[str] | None = None


class Run(_Part):
    options: list[str] | None = None
    fail_on: str | None = None
    user: str | None = None
    host: str | None = None
    command: str | None = None
    catalog_version: str | None = None


class DataStamp(_Part):
    name: str | None = None
    version: str | None = None
    as_of: str | None = None
    checked: str | None = None
    age_days: int | None = None


class WaiverFinding(_Part):
    kind: str | None = None
    reason: str | None = None
    waiver: dict[str, Any] | None = None


class Trend(_Part):
    counts: dict[str, int] | None = None
    previous_run: str | None = None
    previous_started_at: str | None = None
    new: list[dict[str, Any]] | None = None
    fixed: list[dict[str, Any]] | None = None
    unchanged: list[dict[str, Any]] | None = None
    not_rechecked: list[dict[str, Any]] | None = None


class Kubernetes(_Part):
    source: str | None = None
    objects: dict[str, int] | None = None
    not_judged: dict[str, int] | None = None
    hooks: list[str] | None = None


class Summary(_Part):
    results: list[Result]
    schema_: str | None = Field(default=None, alias="schema")  # "schema" is a BaseModel attribute's name
    tool_version: str | None = None
    target: str | None = None
    started_at: str = Field(min_length=1)  # every run has one; OSCAL's result needs a start time
    finished_at: str | None = None
    interrupted: bool | None = None
    exit_status: int | None = None
    totals: dict[str, int] | None = None
    fail_by_severity: dict[str, int] | None = None
    deployments: list[Deployment] | None = None
    run: Run | None = None
    data: dict[str, DataStamp] | None = None
    warnings: list[str] | None = None
    waiver_findings: list[WaiverFinding] | None = None
    baseline: dict[str, Any] | None = None
    trend: Trend | None = None
    kubernetes: Kubernetes | None = None
    timings: dict[str, Any] | None = None


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the document"


def shape_problem(summary: Any) -> str | None:
    """Why ``summary`` is not a summary.json the writers can read (``results[3].status: …``), or None."""
    if not isinstance(summary, dict):
        return f"the document is a {type(summary).__name__}, not an object"
    try:
        Summary.model_validate(summary)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]  # located by the file's own names (the alias)
        where = _where(first["loc"])
        got = first.get("input")
        shown = type(got).__name__ if isinstance(got, dict | list) else repr(got)[:60]
        return f"{where}: {first['msg'].lower()}" + ("" if first["type"] == "missing" else f" (found {shown})")
    return None
