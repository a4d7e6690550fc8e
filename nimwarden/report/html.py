"""report.html: the self-contained compliance report a release manager reads and signs.

A pure function of summary.json (+ the catalog for titles, remediation and
sources), so ``nimwarden report <run dir>`` can regenerate it from the file
alone. One HTML file: CSS and JS inline, no network (a Content-Security-Policy
allows only this page's own script and style, by hash), prints well.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nimwarden.outcome import SEVERITIES
from nimwarden.report import baseline, charts, gating, grouped, overview
from nimwarden.report.evidence_html import e, evidence_html

ASSETS = Path(__file__).parent
STATUS_ORDER = ("fail", "error", "waived", "pass", "not_applicable", "skip")
VERDICT_CLASS = {
    gating.COMPLIANT: "ok",
    gating.CANARY_CAUGHT: "ok",
    gating.NONCOMPLIANT: "bad",
    gating.CANARY_PASSED: "bad",
    gating.UNEVALUATED: "unknown",
}


def _catalog() -> Mapping[str, Any]:
    try:
        from nimwarden.catalog import load_catalog

        return load_catalog()
    except Exception:  # noqa: BLE001 - a report from summary.json alone must still render
        return {}


def control_info(result: Mapping[str, Any], catalog: Mapping[str, Any]) -> dict[str, Any]:
    """What the report shows about a result's control: the result's own fields first, the catalog's second."""
    control = catalog.get(result.get("control", ""))

    def pick(key: str, default: Any = "") -> Any:
        return result.get(key) or (getattr(control, key, None) if control else None) or default

    return {
        "title": pick("title", result.get("control", "")),
        "severity": pick("severity", "info"),
        "family": pick("family", "unknown"),
        "remediation": pick("remediation"),
        "rationale": getattr(control, "rationale", "") if control else "",
        "sources": list(pick("sources", ())),
        "mitre": list(getattr(control, "mitre", ()) if control else ()),
    }


def _is_new(result: Mapping[str, Any]) -> bool:
    return result.get("baseline_state") == "new" and result.get("status") in ("fail", "error")


def _sort_key(result: Mapping[str, Any], info: Mapping[str, Any]) -> tuple:
    status = result.get("status", "error")
    sev = info["severity"]
    return (
        0 if _is_new(result) else 1,  # new findings first (against the baseline)
        STATUS_ORDER.index(status) if status in STATUS_ORDER else 0,
        SEVERITIES.index(sev) if sev in SEVERITIES else len(SEVERITIES),
        str(result.get("control", "")),
        str(result.get("deployment", "")),
        str(result.get("subject", "")),
    )


def _header(summary: Mapping[str, Any], status: int) -> str:
    words = {0: "every deployment met its expectation", 1: "compliance failure", 3: "could not evaluate everything"}
    gate = fail_on_of(summary)
    recorded = summary.get("exit_status")
    differs = isinstance(recorded, int) and recorded != status  # e.g. a usage error, or results edited since
    return (
        f'<header><h1>nimwarden compliance report <span class="target">{e(summary.get("target", "?"))}</span></h1>'
        f'<p class="overall exit-{status}">exit status {status}: {e(words.get(status, "see details"))}'
        f'{f" (gate: --fail-on {gate})" if gate else ""}'
        f'{" — run was interrupted" if summary.get("interrupted") else ""}'
        f'{f" (the run itself exited {recorded})" if differs else ""}</p>'
        f'<p class="muted">{e(summary.get("started_at", ""))} → {e(summary.get("finished_at", ""))}</p>'
        f'{_data_line(summary)}</header>'
    )


def _data_line(summary: Mapping[str, Any]) -> str:
    """The dated data the run judged against (each table's version, as_of and checked), and staleness warnings."""
    data = summary.get("data") or {}
    parts = []
    for d in data.values():
        parts.append(f"{d.get('name', '?')} {d.get('version', '?')}{_dates(d)}")
    line = f'<p class="muted data-versions">judged against: {e(" · ".join(parts))}</p>' if parts else ""
    warnings = "".join(f'<p class="warning stale-data">warning: {e(w)}</p>' for w in summary.get("warnings") or ())
    return line + warnings


def _dates(d: Mapping[str, Any]) -> str:
    """``, as of 2026-09-08, checked 2026-12-06 (0 days ago)`` — both dates of a dated table, as the stamp gives them."""
    out = f", as of {d['as_of']}" if d.get("as_of") else ""
    if d.get("checked"):
        out += f", checked {d['checked']} ({d.get('age_days')} days ago)"
    elif d.get("as_of"):
        out += f" ({d.get('age_days')} days)"
    return out


def _trend_list(items: Sequence[Mapping[str, Any]], limit: int = 50) -> str:
    if not items:
        return ""
    lis = "".join(
        f'<li><span class="badge st-{e(i.get("status"))}">{e(i.get("status"))}</span> <code>{e(i.get("control"))}</code> '
        f'{e(i.get("deployment"))} · {e(i.get("subject"))}</li>'
        for i in items[:limit]
    )
    more = f"<li>… and {len(items) - limit} more</li>" if len(items) > limit else ""
    return f"<ul>{lis}{more}</ul>"


def _trend(summary: Mapping[str, Any], history: Sequence[Mapping[str, Any]] | None) -> str:
    trend = summary.get("trend")
    chart = charts.trend_chart(history or [])
    if not trend and not chart:
        return ""
    parts = ['<section id="trend"><h2>Since the previous run</h2>']
    if trend:
        c = trend.get("counts", {})
        parts.append(
            f'<p>compared with <code>{e(trend.get("previous_run", ""))}</code> '
            f'({e(trend.get("previous_started_at", ""))}): '
            f'<span class="trend-new">{int(c.get("new", 0))} new</span> · '
            f'<span class="trend-fixed">{int(c.get("fixed", 0))} fixed</span> · '
            f'{int(c.get("unchanged", 0))} unchanged · {int(c.get("not_rechecked", 0))} not rechecked</p>'
        )
        for key, label in (("new", "New findings"), ("fixed", "Fixed")):
            if trend.get(key):
                parts.append(f'<div class="trend-block {key}"><h3>{label}</h3>{_trend_list(trend[key])}</div>')
        if trend.get("not_rechecked"):  # usually a narrower run: worth a look, not the headline
            parts.append(
                f'<details class="trend-block not-rechecked"><summary>Not rechecked this time '
                f'({len(trend["not_rechecked"])})</summary>{_trend_list(trend["not_rechecked"])}</details>'
            )
    else:
        parts.append("<p>first run of this target: nothing to compare with</p>")
    if chart:
        parts.append(f'<figure class="chart">{chart}<figcaption>failures and errors, last {len(history or [])} runs'
                     "</figcaption></figure>")
    parts.append("</section>")
    return "".join(parts)


def fail_on_of(summary: Mapping[str, Any]) -> str | None:
    """The --fail-on threshold the run used, from run.fail_on or its recorded options."""
    run = summary.get("run") or {}
    value = run.get("fail_on")
    options = [str(o) for o in run.get("options") or []]
    for i, opt in enumerate(options):
        if opt.startswith("--fail-on="):
            value = opt.split("=", 1)[1]
        elif opt == "--fail-on" and i + 1 < len(options):
            value = options[i + 1]
    return value if value in gating.FAIL_ON_CHOICES else None


def _verdicts(summary: Mapping[str, Any]) -> str:
    fail_on = fail_on_of(summary)
    kinds = {d.get("name"): d.get("kind", "") for d in summary.get("deployments") or []}
    banners = []
    for v in gating.deployment_verdicts(summary, fail_on):
        counts = " · ".join(f"{n} {s}" for s, n in sorted(v.counts.items(), key=lambda kv: _status_index(kv[0])))
        extra = ""
        if v.canaries_passed:
            extra = "<p>canary controls that passed (the harness may be blind):</p>" + _trend_list(
                [dict(r) for r in v.canaries_passed]
            )
        elif v.verdict == gating.CANARY_PASSED:
            extra = "<p>this deployment is expected to be non-compliant but no control failed on it</p>"
        below = v.counts.get("fail", 0) - len(v.failures)
        if fail_on and not v.is_canary and below > 0:
            extra += f"<p>{below} failure(s) below the gate (--fail-on {e(fail_on)}): reported, not counted</p>"
        if v.why:
            extra += f'<p class="why">{e(v.why)}</p>'
        expect = "canary, expected non-compliant" if v.is_canary else "expected compliant"
        banners.append(
            f'<div class="verdict {VERDICT_CLASS.get(v.verdict, "unknown")}" data-deployment="{e(v.name)}">'
            f'<h3>{e(deployment_label(v.name))} <span class="muted">{e(kinds.get(v.name, ""))}</span></h3>'
            f'<p class="word">{e(v.verdict)}</p><p class="muted">{e(expect)} · {e(counts)}</p>{extra}</div>'
        )
    return overview.cards(banners)


def _status_index(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else -1


def _waiver_findings(summary: Mapping[str, Any]) -> str:
    findings = summary.get("waiver_findings") or []
    if not findings:
        return ""
    rows = "".join(
        f'<tr class="waiver-{e(f.get("kind"))}"><td>{e(f.get("kind"))}</td><td><code>{e(f["waiver"].get("control"))}'
        f'</code></td><td>{e(f["waiver"].get("deployment"))}</td><td>{e(f["waiver"].get("owner"))}</td>'
        f'<td>{e(f["waiver"].get("ticket"))}</td><td>{e(f["waiver"].get("expires"))}</td><td>{e(f.get("reason"))}</td></tr>'
        for f in findings
        if isinstance(f.get("waiver"), Mapping)
    )
    return (
        '<section id="waiver-findings"><h2>Waiver problems</h2><table class="grid"><tr><th>kind</th><th>control</th>'
        f"<th>deployment</th><th>owner</th><th>ticket</th><th>expires</th><th>detail</th></tr>{rows}</table></section>"
    )


def _matrix(summary: Mapping[str, Any], infos: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> str:
    """Worst deployments first, then the full grid (deployments as rows; see nimwarden.report.overview)."""
    fail_on = fail_on_of(summary)
    return overview.worst_first(summary, infos, fail_on) + overview.matrix(summary, infos, fail_on)


def _status_index_worst(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else 0


def _filters(infos: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> str:
    dims = {
        "severity": sorted({i["severity"] for _, i in infos}, key=lambda s: SEVERITIES.index(s) if s in SEVERITIES else 9),
        "family": sorted({i["family"] for _, i in infos}),
        "status": sorted({r.get("status", "error") for r, _ in infos}, key=_status_index_worst),
        "deployment": sorted({str(r.get("deployment", "")) for r, _ in infos}),
    }
    groups = []
    for dim, values in dims.items():
        boxes = "".join(
            f'<label><input type="checkbox" data-filter="{dim}" value="{e(v)}" checked> '
            f"{e(deployment_label(v) if dim == 'deployment' else v)}</label>"
            for v in values
        )
        groups.append(f"<fieldset><legend>{dim}</legend>{boxes}</fieldset>")
    return (
        f'<form id="filters" class="no-print">{"".join(groups)}'
        '<fieldset><legend>text</legend><input type="search" id="filter-text" placeholder="control, subject, reason…">'
        '</fieldset><button type="button" id="filter-reset">show all</button>'
        '<p id="shown-count" aria-live="polite"></p></form>'
    )


def _list(items: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>" if items else ""


def deployment_label(name: Any) -> str:
    """Results not tied to one deployment carry "-": call it what it is."""
    return "target-wide" if name in ("-", "", None) else str(name)


def _result(index: int, result: Mapping[str, Any], info: Mapping[str, Any], canary: bool = False, brief: bool = False) -> str:
    """One result; ``brief`` (a large run): without the control's rationale, sources and ATT&CK techniques,
    which the catalog (``nimwarden catalog``) holds once per control."""
    status = result.get("status", "error")
    waiver = result.get("waiver")
    parts = [f'<p class="reason">{e(result.get("reason", ""))}</p>', evidence_html(result.get("evidence"))]
    if isinstance(waiver, Mapping):
        parts.append(
            f'<div class="waiver"><h4>Waiver</h4><p>accepted by {e(waiver.get("owner"))} until {e(waiver.get("expires"))} '
            f'(ticket {e(waiver.get("ticket"))}): {e(waiver.get("reason"))}</p></div>'
        )
    if info["remediation"] and status in ("fail", "error", "waived"):
        parts.append(f'<div class="remediation"><h4>Remediation</h4><p>{e(info["remediation"])}</p></div>')
    if info["rationale"] and not brief:
        parts.append(f'<div class="rationale"><h4>Why it matters</h4><p>{e(info["rationale"])}</p></div>')
    if info["sources"] and not brief:
        parts.append(f'<div class="sources"><h4>Source</h4>{_list(info["sources"])}</div>')
    if info["mitre"] and not brief:
        parts.append(f'<div class="mitre"><h4>MITRE ATT&amp;CK</h4>{_list(info["mitre"])}</div>')
    if result.get("duration_s") is not None:
        parts.append(f'<p class="muted">took {e(result.get("duration_s"))} s</p>')
    # open what needs a reader: failures where compliance was expected, and every error
    opened = " open" if status == "error" or (status == "fail" and not canary) else ""
    return (
        f'<details class="result st-{e(status)}" id="r{index}" data-severity="{e(info["severity"])}" '
        f'data-family="{e(info["family"])}" data-status="{e(status)}" data-deployment="{e(result.get("deployment", ""))}"'
        f"{opened}><summary>"
        + ('<span class="badge new">new</span> ' if _is_new(result) else "")
        + f'<span class="badge st-{e(status)}">{e(status)}</span> <span class="badge sev-{e(info["severity"])}">'
        f'{e(info["severity"])}</span> <code class="control">{e(result.get("control", ""))}</code> '
        f'<span class="title">{e(info["title"])}</span> <span class="where">{e(deployment_label(result.get("deployment")))} · '
        f'{e(result.get("subject", ""))}</span></summary><div class="body">{"".join(parts)}</div></details>'
    )


def _kubernetes_rows(inv: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """What the Kubernetes source held: never silently drop a kind no control judges."""
    if not inv:
        return []
    objects = inv.get("objects") or {}
    rows = [("kubernetes source", inv.get("source")),
            ("kubernetes objects", " · ".join(f"{k} {n}" for k, n in objects.items()) or "none")]
    not_judged = inv.get("not_judged") or {}
    rows.append(("not judged", ", ".join(f"{k} ({n})" for k, n in not_judged.items()) if not_judged else "(none: every kind read is judged)"))
    if inv.get("hooks"):
        rows.append(("Helm hooks, judged apart from the workload", ", ".join(inv["hooks"])))
    return rows


def _metadata(summary: Mapping[str, Any]) -> str:
    run = summary.get("run") or {}
    options = run.get("options") or []
    # the options as the run records them: "--intrusive=yes" / "--intrusive=no" (a bare flag from older runs)
    intrusive = any(str(o) in ("--intrusive", "--intrusive=yes") for o in options)
    rows = [
        ("target", summary.get("target")),
        ("tool version", summary.get("tool_version")),
        ("catalog version", run.get("catalog_version")),
        *((d.get("name", k), f"{d.get('version')}{_dates(d)}") for k, d in (summary.get("data") or {}).items()),
        ("started", summary.get("started_at")),
        ("finished", summary.get("finished_at")),
        ("ran by", f"{run.get('user', '?')} on {run.get('host', '?')}" if run else None),
        ("command", run.get("command")),
        ("options", " ".join(str(o) for o in options) if options else "(none)"),
        ("intrusive probes", "yes: probes that write to the target were allowed" if intrusive else "no"),
        ("interrupted", "yes" if summary.get("interrupted") else "no"),
        *_kubernetes_rows(summary.get("kubernetes") or {}),
        ("schema", summary.get("schema")),
    ]
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows if v not in (None, ""))
    totals = " · ".join(f"{n} {s}" for s, n in (summary.get("totals") or {}).items())
    return f'<section id="metadata"><h2>Run</h2><dl>{dl}<dt>totals</dt><dd>{e(totals)}</dd></dl></section>'


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def render_html(
    summary: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]] | None = None,
    catalog: Mapping[str, Any] | None = None,
) -> str:
    return "".join(html_parts(summary, history, catalog))


def html_parts(
    summary: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]] | None = None,
    catalog: Mapping[str, Any] | None = None,
) -> Iterator[str]:
    """report.html in pieces, in order (one per result shown): :func:`write_html` writes them as they are made,
    so that the report of 200,000 results is never one string in memory, nor its results' part another."""
    catalog = _catalog() if catalog is None else catalog
    css = (ASSETS / "report.css").read_text(encoding="utf-8")
    js = (ASSETS / "report.js").read_text(encoding="utf-8")
    known: dict[tuple, dict[str, Any]] = {}

    def info_of(r: Mapping[str, Any]) -> dict[str, Any]:  # one per control as the results give it, not one per result
        key = (r.get("control"), r.get("severity"))
        if key not in known:
            known[key] = control_info(r, catalog)
        return known[key]

    infos = [(r, info_of(r)) for r in summary.get("results") or []]
    infos.sort(key=lambda ri: _sort_key(*ri))
    status = baseline.exit_status(summary, fail_on_of(summary))
    canaries = {d.get("name") for d in summary.get("deployments") or [] if d.get("expect") == "noncompliant"}
    shown, counted = grouped.split(infos)
    brief = bool(counted)
    csp = f"default-src 'none'; img-src data:; style-src {_csp_hash(css)}; script-src {_csp_hash(js)}"
    title = f"nimwarden — {summary.get('target', '?')} — {summary.get('started_at', '')}"
    yield (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(title)}</title>'
        f"<style>{css}</style></head><body>"
        + _header(summary, status)
        + _trend(summary, history)
        + _verdicts(summary)
        + _waiver_findings(summary)
        + _matrix(summary, infos)
        + f'<section id="results"><h2>Results ({len(infos) if not counted else f"{len(shown)} of {len(infos)} one by one"})</h2>'
        f'{_filters(infos)}<div id="result-list">'
    )
    for i, (r, info) in enumerate(shown):
        yield _result(i, r, info, r.get("deployment") in canaries, brief)
    yield "</div></section>" + grouped.table(counted, len(infos)) + _metadata(summary) + f"<script>{js}</script></body></html>"


def write_html(run_dir: str | Path, summary: Mapping[str, Any], history: Sequence[Mapping[str, Any]] | None = None) -> Path:
    path = Path(run_dir) / "report.html"
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as out:
        for part in html_parts(summary, history):
            out.write(part)
    return path
