"""report.html rendered from hand-built summaries: content, escaping, self-containment, pictures."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

from nimwarden.report import charts
from nimwarden.report.html import render_html, write_html
from tests.unit.report_samples import HOSTILE, lab_summary, result, with_results


class _Collector(HTMLParser):
    """Parses the page with the standard library: every tag, every attribute, every script/style body."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self.styles, self._in = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)


def _parse(page):
    c = _Collector()
    c.feed(page)
    return c


def test_hostile_text_from_the_target_is_escaped():
    page = render_html(lab_summary())
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    parsed = _parse(page)
    assert len(parsed.scripts) == 1  # only the report's own script
    assert not [t for t, a in parsed.tags if t == "img" and "onerror" in a]


def test_page_is_self_contained_and_its_csp_allows_only_its_own_script_and_style():
    page = render_html(lab_summary())
    parsed = _parse(page)
    for tag, attrs in parsed.tags:
        for key in ("src", "href"):
            value = attrs.get(key)
            assert value is None or value.startswith(("data:", "#")), (tag, key, value)
    assert not [t for t, a in parsed.tags if t == "link"]
    (csp,) = [a["content"] for t, a in parsed.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]

    def sha(text):
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert f"script-src {sha(parsed.scripts[0])}" in csp
    assert f"style-src {sha(parsed.styles[0])}" in csp
    assert "default-src 'none'" in csp


def test_every_result_is_a_filterable_row_with_its_dimensions():
    summary = lab_summary()
    parsed = _parse(render_html(summary))
    rows = [a for t, a in parsed.tags if t == "details" and "result" in a.get("class", "")]
    assert len(rows) == len(summary["results"])
    assert {r["data-status"] for r in rows} == {"pass", "fail", "error", "not_applicable"}
    assert {"critical", "high", "medium", "low"} <= {r["data-severity"] for r in rows}
    filters = {(a["data-filter"], a["value"]) for t, a in parsed.tags if t == "input" and "data-filter" in a}
    assert ("family", "network-policy") in filters and ("deployment", "exposed") in filters
    # failures first, so a reader sees them without scrolling
    assert rows[0]["data-status"] == "fail" and rows[0]["data-severity"] == "critical"


def test_verdict_banners_matrix_and_metadata():
    page = render_html(lab_summary())
    assert re.search(r'data-deployment="hardened">.*?<p class="word">compliant</p>', page)
    assert re.search(r'data-deployment="exposed">.*?<p class="word">non-compliant as expected</p>', page)
    assert "exit status 3: could not evaluate everything" in page
    assert '<td class="cell st-fail" data-family="triton-api" data-deployment="exposed" title="show these results">1 fail</td>' in page
    assert '<td class="cell st-error" data-family="host" data-deployment="exposed" title="show these results">1 error</td>' in page
    assert "<dt>ran by</dt><dd>nightly on ci-runner-7</dd>" in page
    assert "<dt>catalog version</dt><dd>2026.11.1</dd>" in page


def test_metadata_says_whether_intrusive_probes_were_allowed():
    """A clean-clone lab audit's report said "yes: probes that write to the target were allowed" for a run
    with --intrusive=no: the word itself was matched, not its value."""
    for options, said in ((["--intrusive=no"], "no"), (["--intrusive=yes"], "yes: probes that write"), ([], "no")):
        summary = lab_summary()
        summary["run"] = {**summary["run"], "options": options}
        assert re.search(rf"<dt>intrusive probes</dt><dd>{said}", render_html(summary)), options


def test_canary_that_passed_is_called_out():
    summary = lab_summary()
    for r in summary["results"]:
        if r["deployment"] == "exposed" and r["control"] == "TRITON-MODELCTL-001":
            r.update(status="pass", expected="fail", reason="403")
    page = render_html(summary)
    assert "canary passed: harness blind" in page
    assert "canary controls that passed" in page
    assert "exit status 1" in page


def test_evidence_shows_request_response_object_path_and_observed_vs_expected():
    page = render_html(lab_summary())
    assert "<h4>Request</h4>" in page and "POST http://127.0.0.1:18100/v2/repository/index" in page
    assert "<h4>Response</h4>" in page
    assert (
        'Deployment/lab/triton-exposed <span class="path">› '
        "spec.template.spec.containers[0].securityContext.runAsNonRoot</span>"
    ) in page
    assert "(nimwarden/lab/manifests/exposed.yaml:27)" in page
    assert '<th class="observed">observed</th><td><code>200</code></td>' in page


def test_remediation_and_sources_come_from_the_result_or_the_catalog():
    summary = with_results(
        lab_summary(),
        [result("TRITON-MODELCTL-001", "triton-api", "critical", "exposed", "e", "fail", "200", sources=[])],
    )
    page = render_html(summary)
    assert "--model-control-mode=none" in page  # catalog remediation
    assert "Secure Deployment Considerations: Restrict or disable access" in page  # catalog source
    assert "T1190 Exploit Public-Facing Application" in page  # catalog MITRE mapping


def test_pictures_latency_matrix_and_probe_svg_as_image():
    page = render_html(lab_summary())
    assert 'aria-label="latency distribution"' in page
    assert 'aria-label="network reachability matrix"' in page
    assert 'src="data:image/svg+xml;base64,' in page
    assert "ns/ingress-nginx → triton:8002: reachable" in page


def test_trend_section_at_the_top_with_chart():
    summary = lab_summary()
    summary["trend"] = {
        "previous_run": "20261121T080000Z",
        "previous_started_at": "2026-11-21T08:00:00Z",
        "counts": {"new": 1, "fixed": 2, "unchanged": 3, "not_rechecked": 0},
        "new": [{"control": "TLS-VERSION-001", "deployment": "exposed", "subject": "e", "status": "fail"}],
        "fixed": [],
        "unchanged": [],
        "not_rechecked": [],
    }
    history = [{"run": "20261121T080000Z", "fail": 7, "error": 0}, {"run": "20261122T080000Z", "fail": 6, "error": 1}]
    page = render_html(summary, history)
    assert page.index('id="trend"') < page.index('id="verdicts"')
    assert '<span class="trend-new">1 new</span>' in page and '<span class="trend-fixed">2 fixed</span>' in page
    assert 'aria-label="findings per run"' in page
    assert "20261121T080000Z: 7 fail" in page


def test_write_html_writes_report_html(tmp_path):
    path = write_html(tmp_path, lab_summary())
    assert path == tmp_path / "report.html"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_latency_histogram_from_samples_and_from_ready_buckets():
    edges, counts, pct = charts.latency_histogram_data({"latencies_ms": [1, 2, 3, 4, 100]})
    assert sum(counts) == 5 and edges[0] == 1 and edges[-1] == 100
    assert pct["p50"] == 3
    edges, counts, pct = charts.latency_histogram_data(
        {"latency_histogram": {"bounds_ms": [0, 1, 2], "counts": [5, 7], "percentiles_ms": {"p99": 1.9}}}
    )
    assert (edges, counts, pct) == ([0.0, 1.0, 2.0], [5, 7], {"p99": 1.9})
    assert charts.latency_histogram_data({"latencies_ms": ["fast"]}) is None
    assert charts.latency_histogram_data({"latency_histogram": {"bounds_ms": [0, 1], "counts": [1, 2]}}) is None


def test_reachability_matrix_marks_mismatches_against_expectation():
    svg = charts.reachability_matrix(
        {"matrix": {"rows": ["a"], "cols": ["x", "y"], "cells": [[True, None]], "expected": [[False, False]]}}
    )
    assert "a → x: reachable, expected blocked" in svg and 'fill="#c62828"' in svg
    assert "a → y: unknown" in svg
    assert charts.reachability_matrix({"matrix": {"rows": ["a"], "cols": ["x"], "cells": [[1, 2]]}}) == ""
    assert "&lt;b&gt;" in charts.reachability_matrix({"reachability": {"<b>": {"x": False}}})


def test_lists_of_flat_records_render_as_tables_and_hostile_cells_are_escaped():
    evidence = {"responses": [{"request": "GET /v2/logging", "without_credentials": 200}, {"request": HOSTILE}]}
    summary = with_results(
        lab_summary(), [result("GATEWAY-AUTHN-001", "gateway", "critical", "hardened", "g", "fail", "open", evidence)]
    )
    page = render_html(summary)
    assert '<table class="records"><tr><th>request</th><th>without_credentials</th></tr>' in page
    assert "<td>GET /v2/logging</td><td>200</td>" in page and "<td>null</td>" in page
    assert HOSTILE not in page


def test_only_unexpected_failures_and_errors_are_open_by_default():
    parsed = _parse(render_html(lab_summary()))
    rows = [a for t, a in parsed.tags if t == "details" and "result" in a.get("class", "")]
    opened = {(r["data-deployment"], r["data-status"]) for r in rows if "open" in r}
    assert opened == {("exposed", "error")}  # the canary's failures are expected: closed until asked for
    summary = with_results(lab_summary(), [result("TLS-VERSION-001", "tls", "high", "hardened", "h", "fail", "TLSv1")])
    assert ' data-deployment="hardened" open>' in render_html(summary)


def test_results_tied_to_no_deployment_are_labelled_target_wide():
    summary = with_results(lab_summary(), [result("NETPOL-ENFORCED-001", "network-policy", "high", "-", "cluster", "pass", "ok")])
    page = render_html(summary)
    assert "<h3>target-wide " in page and 'value="-" checked> target-wide</label>' in page


def test_performance_evidence_is_drawn_per_part():
    """The perf suite's shape: a combined verdict whose parts carry latency_us, windows and baseline ratios."""
    windows = [{"index": i, "duration_s": 5.0, "completed": 900 + i, "errors": 0, "throughput": 180.0 + i,
                "avg_us": 4100.0, "p99_us": 6100.0 + 50 * i} for i in range(4)]
    part = {"endpoint": "grpc://127.0.0.1:18001", "model": "add", "load": "closed", "stable": True,
            "latency_us": {"count": 3600, "avg_us": 4100.0, "p50_us": 3900.0, "p90_us": 5200.0,
                           "p95_us": 5600.0, "p99_us": 6200.0},
            "windows": windows,
            "throughput_ratio": {"estimate": 0.97, "low": 0.94, "high": 1.01, "confidence": 0.95},
            "p99_ratio": {"estimate": 1.02, "low": 0.99, "high": 1.06, "confidence": 0.95}}
    evidence = {"parts": [{"subject": "add closed", "status": "pass", "reason": "ok", "evidence": part}]}
    summary = with_results(
        lab_summary(), [result("PERF-REGRESSION-001", "performance", "medium", "hardened", "add", "pass", "ok", evidence)]
    )
    page = render_html(summary)
    assert "<figcaption>add closed</figcaption>" in page
    assert 'aria-label="latency percentiles"' in page and "6.20 ms" in page and "3600 requests" in page
    assert 'aria-label="measurement windows"' in page and "window 3: p99 6.25 ms" in page
    assert 'aria-label="change against baseline"' in page and "p99 latency: 1.020 (CI 0.990 to 1.060)" in page
    assert charts.windows_chart([{"throughput": "fast"}, {"throughput": 1}]) == ""
    assert charts.percentiles_chart({"p99_us": None}) == ""


def test_interrupted_run_with_no_results_still_renders_and_says_so():
    summary = with_results(lab_summary(), [])
    summary["interrupted"] = True
    page = render_html(summary)
    assert "exit status 3: could not evaluate everything — run was interrupted" in page
    assert page.count('<p class="word">could not evaluate</p>') == 2
    assert "<h2>Results (0)</h2>" in page


def test_header_mentions_a_recorded_exit_status_that_differs():
    summary = lab_summary()  # computed 3; the sample records 3
    assert "the run itself exited" not in render_html(summary)
    summary["exit_status"] = 2
    assert "exit status 3: could not evaluate everything (the run itself exited 2)" in render_html(summary)


def test_trend_keeps_not_rechecked_collapsed_and_runs_get_short_labels():
    summary = lab_summary()
    item = {"control": "POD-CAPS-001", "deployment": "exposed", "subject": "Deployment/x", "status": "absent"}
    summary["trend"] = {"previous_run": "20261121T080000Z", "counts": {"not_rechecked": 1},
                        "new": [], "fixed": [], "unchanged": [], "not_rechecked": [item]}
    page = render_html(summary)
    assert '<details class="trend-block not-rechecked"><summary>Not rechecked this time (1)</summary>' in page
    assert charts.run_label("20261122T084658Z") == "11-22 08:46"
    assert charts.run_label("20261122T084658Z-2") == "11-22 08:46-2"
    assert charts.run_label("manual") == "manual"


def test_header_names_the_gate_the_run_used():
    summary = lab_summary()
    summary["run"]["options"] = ["--fail-on=critical"]
    page = render_html(summary)
    assert "(gate: --fail-on critical)" in page
    assert "failure(s) below the gate" not in page  # hardened has no failure in the sample
    summary["results"].append(result("TLS-VERSION-001", "tls", "high", "hardened", "h2", "fail", "TLSv1"))
    assert "1 failure(s) below the gate (--fail-on critical): reported, not counted" in render_html(summary)


def test_probe_svg_replaces_the_generic_matrix_of_the_same_data():
    grid = {"rows": ["ns/a"], "cols": ["svc:80"], "cells": [[True]], "expected": [[False]]}
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><title>declared vs observed</title></svg>'
    both = result("NETPOL-ENFORCED-001", "network-policy", "high", "hardened", "ns", "fail", "open",
                  {"matrix": grid, "svg": svg})
    only_grid = dict(both, subject="ns2", evidence={"matrix": grid})
    page = render_html(with_results(lab_summary(), [both, only_grid]))
    assert page.count('aria-label="network reachability matrix"') == 1
    assert page.count('src="data:image/svg+xml;base64,') == 1
