"""report.html that scales: worst deployments first, the grid with deployments as rows, new findings first."""

from __future__ import annotations

import re

from nimwarden.report.html import render_html
from tests.unit.report_samples import lab_summary, many_deployments, result, with_results


def test_worst_first_orders_by_verdict_then_severity():
    page = render_html(many_deployments(20))
    rows = re.findall(r'<tr class="dep-row (\w+)" data-deployment="([^"]+)"', page)
    assert len(rows) == 20
    classes = [c for c, _ in rows]
    assert classes == sorted(classes, key=["bad", "unknown", "ok"].index)  # failed expectation, then unevaluated, then fine
    assert rows[0][1] in ("chart-04-llama", "chart-09-triton", "chart-19-rerank")  # the ones failing in 4 severities


def test_matrix_has_deployments_as_rows_and_hides_behind_a_toggle_when_many():
    few, many = render_html(lab_summary()), render_html(many_deployments(20))
    assert '<section id="matrix"><details class="toggle" open>' in few
    assert '<section id="matrix"><details class="toggle">' in many
    header = re.search(r'<table class="grid matrix"><tr><th>deployment</th>(.*?)</tr>', many).group(1)
    assert header.count("<th>") == 11  # one column per family, however many deployments
    assert '<section id="verdicts"><details class="toggle"><summary><h2>Verdict per deployment (20 cards)' in many
    assert '<section id="verdicts"><h2>Verdict per deployment</h2>' in few


def test_new_findings_come_first_with_a_badge():
    old = result("TLS-PROTOCOL-001", "tls", "critical", "exposed", "e:443", "fail", "TLSv1.0", baseline_state="unchanged")
    new = result("GATEWAY-AUTHN-001", "gateway", "low", "hardened", "g", "fail", "open", baseline_state="new")
    summary = with_results(lab_summary(), [old, new])
    summary["baseline"] = {"source": "20261201T080000Z", "fail_on_new": True, "counts": {"new": 1, "unchanged": 1, "absent": 0},
                           "absent": []}
    page = render_html(summary)
    first = re.search(r'<details class="result[^>]*>(.*?)</summary>', page).group(1)
    assert '<span class="badge new">new</span>' in first and "GATEWAY-AUTHN-001" in first  # a low new one before a critical old one
    assert page.count('<span class="badge new">new</span>') == 1
    assert "exit status 1" in page  # the gate the run used: the new failure on hardened counts
    summary["results"][1]["baseline_state"] = "unchanged"
    assert "exit status 0" in render_html(summary)
