"""The sign-off page: one printable HTML page a release manager signs (print to PDF from any browser).

It states what was audited and by whom, the verdict per deployment, the
totals, every accepted risk (open waivers) and every waiver problem, and the
SHA-256 digest of the exact summary.json it was made from, so a signed PDF can
be matched to its run later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nimwarden.report import gating
from nimwarden.report.evidence_html import e
from nimwarden.report.html import VERDICT_CLASS, deployment_label, fail_on_of

CSS = """
body{font:12pt/1.4 Georgia,'DejaVu Serif',serif;max-width:50rem;margin:2rem auto;color:#111}
h1{font-size:1.5rem;margin:0}h2{font-size:1.1rem;border-bottom:1px solid #999;margin-top:1.4rem}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:.25rem .4rem;text-align:left;
vertical-align:top;font-size:10.5pt}code{font-family:'DejaVu Sans Mono',monospace;font-size:9.5pt;word-break:break-all}
td.control code{white-space:nowrap;word-break:normal}
.ok{color:#2e7d32;font-weight:bold}.bad{color:#c62828;font-weight:bold}.unknown{color:#ef6c00;font-weight:bold}
.sign{margin-top:2.5rem;display:grid;grid-template-columns:1fr 1fr;gap:2rem}
.line{border-top:1px solid #111;padding-top:.2rem;font-size:10pt}
@page{size:A4;margin:18mm}@media print{body{margin:0;max-width:none}}
"""

def summary_digest(summary_path: str | Path) -> str:
    return hashlib.sha256(Path(summary_path).read_bytes()).hexdigest()


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in pairs if v not in (None, ""))


def render_sign_off(summary: Mapping[str, Any], digest: str, fail_on: str | None = None) -> str:
    run = summary.get("run") or {}
    status = gating.exit_status(summary, fail_on)
    identity = _rows(
        [
            ("target", summary.get("target")),
            ("started", summary.get("started_at")),
            ("finished", summary.get("finished_at")),
            ("tool version", summary.get("tool_version")),
            ("catalog version", run.get("catalog_version")),
            ("ran by", f"{run.get('user', '?')} on {run.get('host', '?')}"),
            ("command", run.get("command")),
            ("options", " ".join(str(o) for o in run.get("options") or []) or "(none)"),
            ("gate", f"--fail-on {fail_on}" if fail_on else "every failure counts"),
            ("interrupted", "yes" if summary.get("interrupted") else "no"),
        ]
    )
    verdicts = "".join(
        f'<tr><td>{e(deployment_label(v.name))}</td><td>{e(v.expect)}</td><td class="{VERDICT_CLASS.get(v.verdict, "unknown")}">'
        f"{e(v.verdict)}</td><td>{e(', '.join(f'{n} {s}' for s, n in sorted(v.counts.items())))}</td></tr>"
        for v in gating.deployment_verdicts(summary, fail_on)
    )
    totals = " · ".join(f"{n} {s}" for s, n in (summary.get("totals") or {}).items())
    waived = [r for r in summary.get("results") or [] if r.get("status") == "waived" and r.get("waiver")]
    waiver_rows = "".join(
        f"<tr><td class=\"control\"><code>{e(r.get('control'))}</code></td>"
        f"<td>{e(deployment_label(r.get('deployment')))} · {e(r.get('subject'))}</td>"
        f"<td>{e(r['waiver'].get('owner'))}</td><td>{e(r['waiver'].get('ticket'))}</td>"
        f"<td>{e(r['waiver'].get('expires'))}</td><td>{e(r['waiver'].get('reason'))}</td></tr>"
        for r in waived
    ) or '<tr><td colspan="6">none</td></tr>'
    problems = "".join(
        f"<li><strong>{e(f.get('kind'))}</strong>: {e(f.get('reason'))}</li>" for f in summary.get("waiver_findings") or []
    )
    failures: list[Mapping[str, Any]] = []
    for v in gating.deployment_verdicts(summary, fail_on):
        # a canary's failures are expected; what blocks is a canary control that passed, or any error
        failures += [*v.canaries_passed, *v.errors] if v.is_canary else [*v.failures, *v.errors]
    failure_rows = "".join(
        f"<tr><td class=\"control\"><code>{e(r.get('control'))}</code></td><td>{e(r.get('severity'))}</td>"
        f"<td>{e(r.get('status'))}</td><td>{e(deployment_label(r.get('deployment')))} · {e(r.get('subject'))}</td>"
        f"<td>{e(r.get('reason'))}</td></tr>"
        for r in failures
    )
    words = {0: "every deployment met its expectation", 1: "compliance failure", 3: "could not evaluate everything"}
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>Sign-off — {e(summary.get('target', '?'))} — {e(summary.get('started_at', ''))}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>Security compliance sign-off: {e(summary.get('target', '?'))}</h1>"
        f'<p>Outcome: <strong class="{"ok" if status == 0 else "bad" if status == 1 else "unknown"}">'
        f"exit status {status} — {e(words.get(status, ''))}</strong></p>"
        f"<h2>Run identity</h2><table>{identity}"
        f"<tr><th>summary.json SHA-256</th><td><code>{e(digest)}</code></td></tr></table>"
        f"<h2>Verdicts</h2><table><tr><th>deployment</th><th>expected</th><th>verdict</th><th>results</th></tr>"
        f"{verdicts}</table><p>Totals: {e(totals)}</p>"
        + (
            "<h2>Open items that block sign-off</h2><table><tr><th>control</th><th>severity</th><th>status</th>"
            f"<th>where</th><th>reason</th></tr>{failure_rows}</table>"
            if failure_rows
            else ""
        )
        + "<h2>Accepted risks (open waivers)</h2><table><tr><th>control</th><th>where</th><th>owner</th>"
        f"<th>ticket</th><th>expires</th><th>reason</th></tr>{waiver_rows}</table>"
        + (f"<h2>Waiver problems</h2><ul>{problems}</ul>" if problems else "")
        + '<div class="sign"><div class="line">Release manager (name, signature)</div>'
        '<div class="line">Date</div><div class="line">Security reviewer (name, signature)</div>'
        '<div class="line">Date</div></div></body></html>'
    )


def write_sign_off(run_dir: str | Path, summary: Mapping[str, Any], fail_on: str | None = None) -> Path:
    """Write sign-off.html next to the summary.json whose digest it carries."""
    run_dir = Path(run_dir)
    fail_on = fail_on or fail_on_of(summary)  # sign against the gate the run itself used
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path}: the sign-off page needs the summary.json it certifies")
    path = run_dir / "sign-off.html"
    path.write_text(render_sign_off(summary, summary_digest(summary_path), fail_on), encoding="utf-8")
    return path
