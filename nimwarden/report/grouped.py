"""report.html for a large run: results one by one only where a reader needs them.

A repository audit of thousands of workloads has a hundred thousand results; one ``<details>`` each
would make a report.html no browser opens (~1.5 kB a result). Above :data:`ONE_BY_ONE_UP_TO` results,
the failures, errors and waived results are still listed one by one (worst first, at most
:data:`SHOWN_MAX` of them), and every other result — and any failure beyond the cap — is counted in a
table grouped by control, status and reason, with a few of its subjects. summary.json holds every
result, always.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nimwarden.report.evidence_html import e

ONE_BY_ONE_UP_TO = 3000  # up to this many results, every result is listed one by one
SHOWN_MAX = 1500  # above it, at most this many failures / errors / waived results one by one (without the
# control's rationale and sources, which `nimwarden catalog` gives once per control)
EXAMPLES = 5
NEEDS_A_READER = ("fail", "error", "waived")


def split(infos: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> tuple[list, list]:
    """(results listed one by one, results counted in groups), from results sorted worst first."""
    if len(infos) <= ONE_BY_ONE_UP_TO:
        return list(infos), []
    shown, grouped = [], []
    for ri in infos:
        if ri[0].get("status") in NEEDS_A_READER and len(shown) < SHOWN_MAX:
            shown.append(ri)
        else:
            grouped.append(ri)
    return shown, grouped


def _reason_key(result: Mapping[str, Any]) -> str:
    # not applicable / skipped results of one control share their reason across deployments (once the
    # deployment's own name is taken out); a verdict's reason names its object, so passes and failures
    # are grouped per control and status alone
    if result.get("status") not in ("not_applicable", "skip"):
        return ""
    reason, deployment = str(result.get("reason", "")), str(result.get("deployment", ""))
    return reason.replace(f" {deployment} ", " … ") if len(deployment) > 1 else reason


def table(grouped: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], total: int) -> str:
    if not grouped:
        return ""
    groups: dict[tuple, list] = {}
    for r, info in grouped:
        key = (str(r.get("control", "")), str(r.get("status", "error")), _reason_key(r))
        entry = groups.setdefault(key, [info, 0, []])
        entry[1] += 1
        if len(entry[2]) < EXAMPLES:
            entry[2].append(f"{r.get('deployment', '')} · {r.get('subject', '')}")
    rows = "".join(
        f'<tr class="st-{e(status)}"><td><code>{e(control)}</code></td><td>{e(info["title"])}</td><td>{e(info["family"])}</td>'
        f'<td class="badge st-{e(status)}">{e(status)}</td><td class="num">{n}</td><td>{e(reason)}</td>'
        f'<td>{"<br>".join(e(x) for x in examples)}{" …" if n > len(examples) else ""}</td></tr>'
        for (control, status, reason), (info, n, examples) in groups.items()
    )
    return (
        f'<section id="grouped"><h2>Results counted by control ({len(grouped)} of {total})</h2>'
        f'<p class="muted">{total} results: the failures, errors and waived results are listed one by one above '
        f'(at most {SHOWN_MAX}); these are counted here by control, status and reason. summary.json lists every '
        'result.</p><div class="wide"><table class="grid"><tr><th>control</th><th>title</th><th>family</th><th>status</th>'
        f'<th>results</th><th>reason</th><th>for example</th></tr>{rows}</table></div></section>'
    )


def by_reason(results: Sequence[Mapping[str, Any]], missing: str = "") -> str:
    """The controls of ``results`` by reason, a line per reason: ``CTRL-1, CTRL-2: why`` (what a deployment's
    not-applicable controls of one family are, in allure-results/ and OSCAL); ``missing`` stands for no reason."""
    reasons: dict[str, list[str]] = {}
    for r in results:
        reasons.setdefault(str(r.get("reason") or missing), []).append(str(r.get("control")))
    return "\n".join(f"{', '.join(dict.fromkeys(controls))}: {reason}" for reason, controls in reasons.items())
