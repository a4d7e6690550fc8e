"""The sign-off page: run identity, digest of the exact summary.json, verdicts, open waivers, blockers."""

from __future__ import annotations

import hashlib
import json

import pytest

from nimwarden.report.sign_off import write_sign_off
from tests.unit.report_samples import HOSTILE, lab_summary, result, with_results


def _run_dir(tmp_path, summary):
    (tmp_path / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return tmp_path


def test_sign_off_carries_the_sha256_of_the_summary_file(tmp_path):
    run_dir = _run_dir(tmp_path, lab_summary())
    page = write_sign_off(run_dir, lab_summary()).read_text(encoding="utf-8")
    digest = hashlib.sha256((run_dir / "summary.json").read_bytes()).hexdigest()
    assert f"<code>{digest}</code>" in page
    (run_dir / "summary.json").write_text(json.dumps(lab_summary()) + " ", encoding="utf-8")
    assert digest not in write_sign_off(run_dir, lab_summary()).read_text(encoding="utf-8")


def test_sign_off_shows_identity_verdicts_and_print_layout(tmp_path):
    page = write_sign_off(_run_dir(tmp_path, lab_summary()), lab_summary()).read_text(encoding="utf-8")
    assert "<th>ran by</th><td>nightly on ci-runner-7</td>" in page
    assert "<th>catalog version</th><td>2026.11.1</td>" in page
    assert '<td class="ok">compliant</td>' in page and '<td class="ok">non-compliant as expected</td>' in page
    assert "Release manager (name, signature)" in page
    assert "@page{size:A4" in page and "@media print" in page
    assert "exit status 3" in page
    # the canary's failures are expected; its error (exit 3) blocks
    blockers = page.split("Open items that block sign-off")[1].split("Accepted risks")[0]
    assert "HOST-UID-001" in blockers and "TRITON-MODELCTL-001" not in blockers


def test_open_waivers_and_blockers_are_listed_and_text_is_escaped(tmp_path):
    summary = with_results(
        lab_summary(),
        [
            result(
                "TLS-VERSION-001", "tls", "high", "hardened", "h:443", "waived", "TLSv1",
                waiver={"owner": "alice", "reason": HOSTILE, "ticket": "SEC-9", "expires": "2026-12-31"},
            ),
            result("PORTS-METRICS-001", "ports", "medium", "hardened", "h:8002", "fail", "metrics open"),
            result("TLS-VERSION-001", "tls", "high", "exposed", "e:443", "fail", "expected on the canary"),
        ],
    )
    summary["waiver_findings"] = [{"kind": "stale", "reason": "matches nothing", "waiver": {}}]
    page = write_sign_off(_run_dir(tmp_path, summary), summary).read_text(encoding="utf-8")
    waivers = page.split("Accepted risks (open waivers)")[1]
    assert "SEC-9" in waivers and "2026-12-31" in waivers and "alice" in waivers
    blockers = page.split("Open items that block sign-off")[1].split("Accepted risks")[0]
    assert "PORTS-METRICS-001" in blockers and "expected on the canary" not in blockers
    assert "<strong>stale</strong>: matches nothing" in page
    assert HOSTILE not in page
    assert "exit status 1" in page


def test_sign_off_uses_the_gate_the_run_used(tmp_path):
    summary = with_results(
        lab_summary(),
        [
            result("PORTS-METRICS-001", "ports", "medium", "hardened", "h:8002", "fail", "metrics open"),
            result("TLS-VERSION-001", "tls", "high", "exposed", "e:443", "fail", "TLSv1"),
        ],
    )
    summary["run"]["options"] = ["--fail-on=high"]
    page = write_sign_off(_run_dir(tmp_path, summary), summary).read_text(encoding="utf-8")
    assert "<th>gate</th><td>--fail-on high</td>" in page and "exit status 0" in page


def test_sign_off_needs_the_summary_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="summary.json"):
        write_sign_off(tmp_path, lab_summary())
