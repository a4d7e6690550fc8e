"""The part of report.html that scales with the number of deployments: worst first.

- :func:`worst_first`: one row per deployment, sorted so the deployments that failed their
  expectation come first, and among them the ones with the most severe failures; each row counts
  new findings (against the baseline), failures per severity and errors, and names the families
  that failed. A release manager reads the top rows and stops.
- :func:`matrix`: the full families × deployments grid with deployments as *rows* (in the same
  order), so 20 deployments grow the page downwards, not sideways; behind a toggle once there are
  more than :data:`OPEN_UP_TO` deployments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nimwarden.report import gating
from nimwarden.report.evidence_html import e

OPEN_UP_TO = 4  # up to this many deployments, the verdict cards and the matrix show at once
SEVERITY_COLUMNS = ("critical", "high", "medium", "low")
STATUS_ORDER = ("fail", "error", "waived", "pass", "not_applicable", "skip")
VERDICT_RANK = {gating.CANARY_PASSED: 0, gating.NONCOMPLIANT: 1, gating.UNEVALUATED: 2, gating.CANARY_CAUGHT: 3, gating.COMPLIANT: 4}
VERDICT_CLASS = {gating.COMPLIANT: "ok", gating.CANARY_CAUGHT: "ok", gating.NONCOMPLIANT: "bad", gating.CANARY_PASSED: "bad",
                 gating.UNEVALUATED: "unknown"}

Infos = Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]


def label(name: Any) -> str:
    return "target-wide" if name in ("-", "", None) else str(name)


_last_rows: list = []  # (summary, infos, fail_on, rows): the table and the matrix of one render rank alike


def _rows(summary: Mapping[str, Any], infos: Infos, fail_on: str | None) -> list[dict[str, Any]]:
    if _last_rows and _last_rows[0][0] is summary and _last_rows[0][1] is infos and _last_rows[0][2] == fail_on:
        return _last_rows[0][3]
    rows = _ranked(summary, infos, fail_on)
    _last_rows[:] = [(summary, infos, fail_on, rows)]
    return rows


def _ranked(summary: Mapping[str, Any], infos: Infos, fail_on: str | None) -> list[dict[str, Any]]:
    rows = []
    by_deployment: dict[Any, list] = {}
    for r, i in infos:
        by_deployment.setdefault(r.get("deployment"), []).append((r, i))
    for v in gating.deployment_verdicts(summary, fail_on):
        mine = by_deployment.get(v.name, [])
        fails = [(r, i) for r, i in mine if r.get("status") == "fail"]
        by_sev = {s: sum(1 for _, i in fails if i["severity"] == s) for s in SEVERITY_COLUMNS}
        families: dict[str, int] = {}
        for _, i in fails:
            families[i["family"]] = families.get(i["family"], 0) + 1
        rows.append({
            "name": v.name, "verdict": v.verdict, "canary": v.is_canary,
            "sev": by_sev, "errors": sum(1 for r, _ in mine if r.get("status") == "error"),
            "new": sum(1 for r, _ in mine if r.get("baseline_state") == "new" and r.get("status") in ("fail", "error")),
            "families": sorted(families.items(), key=lambda kv: (-kv[1], kv[0])),
        })
    rows.sort(key=lambda r: (VERDICT_RANK.get(r["verdict"], 2), *(-r["sev"][s] for s in SEVERITY_COLUMNS), -r["errors"],
                             label(r["name"])))
    return rows


def order(summary: Mapping[str, Any], infos: Infos, fail_on: str | None = None) -> list[str]:
    """Deployment names, worst first."""
    return [r["name"] for r in _rows(summary, infos, fail_on)]


def worst_first(summary: Mapping[str, Any], infos: Infos, fail_on: str | None = None) -> str:
    rows = _rows(summary, infos, fail_on)
    if len(rows) < 2:
        return ""  # one deployment: its verdict card says it all
    kinds = {d.get("name"): d.get("kind", "") for d in summary.get("deployments") or []}
    has_new = summary.get("baseline") is not None
    head = ("<tr><th>deployment</th><th>kind</th><th>verdict</th>" + ("<th>new</th>" if has_new else "")
            + "".join(f"<th>{s}</th>" for s in SEVERITY_COLUMNS) + "<th>errors</th><th>failing families</th></tr>")
    body = []
    for r in rows:
        cls = VERDICT_CLASS.get(r["verdict"], "unknown")
        sev = "".join(f'<td class="num{" hot" if r["sev"][s] else ""}">{r["sev"][s] or ""}</td>' for s in SEVERITY_COLUMNS)
        fams = ", ".join(f"{e(f)} ({n})" for f, n in r["families"][:4]) + (" …" if len(r["families"]) > 4 else "")
        new = f'<td class="num{" hot" if r["new"] else ""}">{r["new"] or ""}</td>' if has_new else ""
        body.append(
            f'<tr class="dep-row {cls}" data-deployment="{e(r["name"])}">'
            f'<td class="dep-link" data-deployment="{e(r["name"])}" title="show its results">{e(label(r["name"]))}</td>'
            f'<td>{e(kinds.get(r["name"], ""))}</td><td class="vword {cls}">{e(r["verdict"])}'
            f'{" <span class=muted>(canary)</span>" if r["canary"] else ""}</td>{new}{sev}'
            f'<td class="num{" hot" if r["errors"] else ""}">{r["errors"] or ""}</td><td>{fams or "—"}</td></tr>'
        )
    bad = sum(1 for r in rows if VERDICT_CLASS.get(r["verdict"]) == "bad")
    return (
        f'<section id="worst"><h2>Deployments, worst first ({len(rows)}; {bad} failed their expectation)</h2>'
        f'<div class="wide"><table class="grid worst">{head}{"".join(body)}</table></div></section>'
    )


def _status_index(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else -1


def _worst_status(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else 0


def matrix(summary: Mapping[str, Any], infos: Infos, fail_on: str | None = None) -> str:
    deployments = order(summary, infos, fail_on)
    families = sorted({i["family"] for _, i in infos})
    if not deployments or not families:
        return ""
    cells: dict[tuple[str, Any], dict[str, int]] = {}
    for r, i in infos:
        bucket = cells.setdefault((i["family"], r.get("deployment")), {})
        bucket[r.get("status", "error")] = bucket.get(r.get("status", "error"), 0) + 1
    head = "".join(f"<th>{e(f)}</th>" for f in families)
    body = []
    evaluated = gating.family_verdicts(summary)
    for d in deployments:
        tds = []
        for fam in families:
            counts = cells.get((fam, d), {})
            worst = min(counts, key=_worst_status) if counts else "none"
            text = " · ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: _status_index(kv[0]))) or "—"
            if evaluated.get((str(d), fam)) == "not evaluated":
                text = f"not evaluated ({text})"
            tds.append(f'<td class="cell st-{e(worst)}" data-family="{e(fam)}" data-deployment="{e(d)}" '
                       f'title="show these results">{e(text)}</td>')
        body.append(f"<tr><th>{e(label(d))}</th>{''.join(tds)}</tr>")
    opened = " open" if len(deployments) <= OPEN_UP_TO else ""
    return (
        f'<section id="matrix"><details class="toggle"{opened}><summary><h2>Deployments × families '
        f'({len(deployments)} × {len(families)})</h2></summary><div class="wide"><table class="grid matrix">'
        f'<tr><th>deployment</th>{head}</tr>{"".join(body)}</table></div></details></section>'
    )


def cards(banners: Sequence[str]) -> str:
    """The verdict cards in the profile's order; behind a toggle when there are many (the table above ranks them)."""
    inner = f'<div class="banners">{"".join(banners)}</div>'
    if len(banners) <= OPEN_UP_TO:
        return f'<section id="verdicts"><h2>Verdict per deployment</h2>{inner}</section>'
    return (f'<section id="verdicts"><details class="toggle"><summary><h2>Verdict per deployment '
            f'({len(banners)} cards)</h2></summary>{inner}</details></section>')
