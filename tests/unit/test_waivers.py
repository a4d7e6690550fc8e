"""Waivers: validation with one-line errors, application, expiry and staleness."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from nimwarden.errors import ConfigError
from nimwarden.report import gating
from nimwarden.waivers import apply_waivers, load_waivers, parse_waivers, recount
from tests.unit.report_samples import lab_summary, result, with_results

TODAY = dt.date(2026, 11, 22)
GOOD = """
waivers:
  - control: PORTS-METRICS-001
    deployment: exposed
    subject: "127.0.0.1:*"
    owner: alice@example.com
    reason: metrics stay open until the gateway lands
    ticket: SEC-1234
    expires: 2026-12-31
"""


def _write(tmp_path, text):
    path = tmp_path / "waivers.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_load_valid_file(tmp_path):
    (w,) = load_waivers(_write(tmp_path, GOOD), known_controls={"PORTS-METRICS-001"})
    assert (w.control, w.deployment, w.subject, w.ticket) == ("PORTS-METRICS-001", "exposed", "127.0.0.1:*", "SEC-1234")
    assert w.expires == dt.date(2026, 12, 31)
    assert w.source == "waivers.yaml:waivers[0]"


@pytest.mark.parametrize(
    ("edit", "field", "problem"),
    [
        (lambda t: t.replace("    ticket: SEC-1234\n", ""), "waivers[0].ticket", "required field missing"),
        (lambda t: t.replace("2026-12-31", "end of year"), "waivers[0].expires", "must be a date"),
        (lambda t: t.replace("    owner:", "    approver: x\n    owner:"), "waivers[0].approver", "unknown field"),
        (lambda t: t.replace("PORTS-METRICS-001", "NOPE-NOPE-001"), "waivers[0].control", "unknown control"),
        (lambda t: "waivers: {a: 1}\n", "waivers", "must be a list"),
        (lambda t: "exemptions: []\n", "exemptions", "unknown top-level key"),
    ],
)
def test_invalid_files_give_one_line_located_errors(tmp_path, edit, field, problem):
    path = _write(tmp_path, edit(textwrap.dedent(GOOD)))
    with pytest.raises(ConfigError) as info:
        load_waivers(path, known_controls={"PORTS-METRICS-001"})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}: ")
    assert problem in message


def test_broken_yaml_names_the_line(tmp_path):
    path = _write(tmp_path, "waivers:\n  - control: [unclosed\n")
    with pytest.raises(ConfigError, match=r"waivers.yaml: line \d+: not valid YAML"):
        load_waivers(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read waivers"):
        load_waivers(tmp_path / "absent.yaml")


def _waivers(**overrides):
    entry = {
        "control": "PORTS-METRICS-001",
        "deployment": "exposed",
        "subject": "127.0.0.1:*",
        "owner": "alice",
        "reason": "accepted",
        "ticket": "SEC-1",
        "expires": "2026-12-31",
    }
    entry.update(overrides)
    return parse_waivers({"waivers": [entry]}, "w.yaml")


def test_matching_failure_becomes_waived_with_the_record():
    results = lab_summary()["results"]
    out, findings = apply_waivers(results, _waivers(), TODAY)
    (waived,) = [r for r in out if r["status"] == "waived"]
    assert waived["control"] == "PORTS-METRICS-001" and waived["deployment"] == "exposed"
    assert waived["waiver"]["owner"] == "alice" and waived["waiver"]["ticket"] == "SEC-1"
    assert waived["waived_status"] == "fail"
    assert waived["reason"] == "metrics port answers without authentication"  # nothing lost
    assert findings == []
    assert recount(out)["waived"] == 1
    assert results[6]["status"] == "fail"  # the input is not mutated


def test_waiver_on_one_exposed_finding_changes_the_gate():
    """Acceptance: a waiver turns an `exposed` finding into `waived`; here on a compliant deployment."""
    summary = with_results(
        lab_summary(),
        [
            result("PORTS-METRICS-001", "ports", "medium", "hardened", "127.0.0.1:18002", "fail", "open"),
            result("TLS-VERSION-001", "tls", "high", "hardened", "127.0.0.1:18443", "pass", "ok"),
            result("TLS-VERSION-001", "tls", "high", "exposed", "127.0.0.1:18543", "fail", "TLSv1"),
        ],
    )
    assert gating.exit_status(summary) == 1
    summary["results"], _ = apply_waivers(summary["results"], _waivers(deployment="hardened"), TODAY)
    assert gating.exit_status(summary) == 0


def test_expired_waiver_does_not_apply_and_is_a_finding():
    out, findings = apply_waivers(lab_summary()["results"], _waivers(expires="2026-11-21"), TODAY)
    assert not [r for r in out if r["status"] == "waived"]
    (finding,) = findings
    assert finding["kind"] == "expired"
    assert finding["subjects"] == ["127.0.0.1:18102"]
    assert "expired on 2026-11-21" in finding["reason"] and "1 failure(s)" in finding["reason"]


def test_waiver_is_valid_through_its_expiry_day():
    out, findings = apply_waivers(lab_summary()["results"], _waivers(expires="2026-11-22"), TODAY)
    assert [r["status"] for r in out if r["control"] == "PORTS-METRICS-001"] == ["waived"]
    assert findings == []


def test_waiver_matching_nothing_is_stale():
    out, findings = apply_waivers(lab_summary()["results"], _waivers(subject="10.0.0.*"), TODAY)
    assert not [r for r in out if r["status"] == "waived"]
    assert [f["kind"] for f in findings] == ["stale"]


def test_errors_and_passes_are_never_waived():
    waivers = _waivers(control="HOST-UID-001", subject="*")
    out, findings = apply_waivers(lab_summary()["results"], waivers, TODAY)
    assert [r["status"] for r in out if r["control"] == "HOST-UID-001"] == ["error"]
    assert [f["kind"] for f in findings] == ["stale"]


def test_annotations_on_the_target_cannot_waive():
    """Waivers only come from the file: evidence that claims an exemption changes nothing."""
    claimed = result(
        "POD-RUNASNONROOT-001", "pod-security", "high", "hardened", "Deployment/lab/x", "fail", "root",
        {"object": "Deployment/lab/x", "annotations": {"nimwarden.io/waive": "POD-RUNASNONROOT-001"}},
    )
    out, findings = apply_waivers([claimed], [], TODAY)
    assert out[0]["status"] == "fail" and findings == []
