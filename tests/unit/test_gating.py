"""Exit status of an audit (docs/architecture.md, Contracts) and --fail-on, from hand-built summaries."""

from __future__ import annotations

import pytest

from nimwarden.report import gating
from tests.unit.report_samples import lab_summary, result, with_results


def _lab(*results):
    return with_results(lab_summary(), list(results))


HARD_PASS = result("TRITON-MODELCTL-001", "triton-api", "critical", "hardened", "h", "pass", "403")
EXPOSED_FAIL = result("TRITON-MODELCTL-001", "triton-api", "critical", "exposed", "e", "fail", "200", expected="fail")


def test_every_deployment_meets_its_expectation_exits_0():
    summary = _lab(HARD_PASS, EXPOSED_FAIL)
    assert gating.exit_status(summary) == 0
    verdicts = {v.name: v.verdict for v in gating.deployment_verdicts(summary)}
    assert verdicts == {"hardened": gating.COMPLIANT, "exposed": gating.CANARY_CAUGHT}


def test_failure_on_a_compliant_deployment_exits_1():
    bad = result("TLS-VERSION-001", "tls", "high", "hardened", "h:443", "fail", "TLSv1 accepted")
    summary = _lab(HARD_PASS, bad, EXPOSED_FAIL)
    assert gating.exit_status(summary) == 1
    (hardened,) = [v for v in gating.deployment_verdicts(summary) if v.name == "hardened"]
    assert hardened.verdict == gating.NONCOMPLIANT and hardened.failures[0]["control"] == "TLS-VERSION-001"


def test_canary_passing_a_control_it_must_fail_exits_1():
    blind = dict(EXPOSED_FAIL, status="pass", reason="403")
    other = result("TLS-VERSION-001", "tls", "high", "exposed", "e:443", "fail", "TLSv1 accepted")
    summary = _lab(HARD_PASS, blind, other)
    assert gating.exit_status(summary) == 1
    (exposed,) = [v for v in gating.deployment_verdicts(summary) if v.name == "exposed"]
    assert exposed.verdict == gating.CANARY_PASSED
    assert [r["control"] for r in exposed.canaries_passed] == ["TRITON-MODELCTL-001"]


def test_canary_with_no_failure_at_all_is_blind():
    summary = _lab(HARD_PASS, result("TLS-VERSION-001", "tls", "high", "exposed", "e", "pass", "ok"))
    assert gating.exit_status(summary) == 1


def test_error_without_failure_exits_3_and_failure_wins_over_error():
    err = result("HOST-UID-001", "host", "medium", "hardened", "p", "error", "permission denied")
    assert gating.exit_status(_lab(HARD_PASS, err, EXPOSED_FAIL)) == 3
    bad = result("TLS-VERSION-001", "tls", "high", "hardened", "h", "fail", "TLSv1")
    assert gating.exit_status(_lab(HARD_PASS, err, bad, EXPOSED_FAIL)) == 1


def test_interrupted_run_without_failure_exits_3():
    summary = _lab(HARD_PASS, EXPOSED_FAIL)
    summary["interrupted"] = True
    assert gating.exit_status(summary) == 3


def test_deployment_with_no_results_is_not_called_compliant():
    summary = _lab(EXPOSED_FAIL)
    (hardened,) = [v for v in gating.deployment_verdicts(summary) if v.name == "hardened"]
    assert hardened.verdict == gating.UNEVALUATED
    assert gating.exit_status(summary) == 3


def test_waived_failure_does_not_count():
    waived = result("TLS-VERSION-001", "tls", "high", "hardened", "h", "waived", "TLSv1", waiver={"owner": "a"})
    assert gating.exit_status(_lab(HARD_PASS, waived, EXPOSED_FAIL)) == 0


@pytest.mark.parametrize(
    ("fail_on", "expected"),
    [(None, 1), ("low", 1), ("medium", 1), ("high", 0), ("critical", 0)],
)
def test_fail_on_counts_only_failures_at_or_above_the_threshold(fail_on, expected):
    medium = result("PORTS-METRICS-001", "ports", "medium", "hardened", "h:8002", "fail", "metrics open")
    assert gating.exit_status(_lab(HARD_PASS, medium, EXPOSED_FAIL), fail_on) == expected


def test_fail_on_critical_still_fails_on_a_critical_failure():
    crit = result("TRITON-MODELCTL-001", "triton-api", "critical", "hardened", "h2", "fail", "200")
    assert gating.exit_status(_lab(HARD_PASS, crit, EXPOSED_FAIL), "critical") == 1


def test_fail_on_also_narrows_errors_but_never_canaries():
    low_error = result("PERF-LATENCY-001", "performance", "low", "hardened", "m", "error", "timeout")
    assert gating.exit_status(_lab(HARD_PASS, low_error, EXPOSED_FAIL)) == 3
    assert gating.exit_status(_lab(HARD_PASS, low_error, EXPOSED_FAIL), "high") == 0
    blind = dict(EXPOSED_FAIL, status="pass", severity="low")
    other = result("TLS-VERSION-001", "tls", "high", "exposed", "e:443", "fail", "TLSv1")
    assert gating.exit_status(_lab(HARD_PASS, blind, other), "critical") == 1


def test_unknown_fail_on_is_refused():
    with pytest.raises(ValueError, match="--fail-on"):
        gating.exit_status(_lab(HARD_PASS), "urgent")


def test_explain_names_each_deployment_and_the_exit_status():
    text = gating.explain(_lab(HARD_PASS, EXPOSED_FAIL), "high")
    assert "hardened (expect compliant): compliant" in text
    assert "exposed (expect noncompliant): non-compliant as expected" in text
    assert text.splitlines()[-1] == "exit status 0 (--fail-on high)"


def test_canary_with_only_errors_is_unevaluated_not_blind():
    err = result("TRITON-MODELCTL-001", "triton-api", "critical", "exposed", "e", "error", "refused", expected="fail")
    summary = _lab(HARD_PASS, err)
    (exposed,) = [v for v in gating.deployment_verdicts(summary) if v.name == "exposed"]
    assert exposed.verdict == gating.UNEVALUATED and exposed.errors[0]["reason"] == "refused"
    assert gating.exit_status(summary) == 3


def test_canary_must_fail_list_is_honoured_without_the_result_marker():
    summary = _lab(HARD_PASS, dict(EXPOSED_FAIL, status="pass", expected=None),
                   result("TLS-VERSION-001", "tls", "high", "exposed", "e", "fail", "TLSv1"))
    assert gating.exit_status(summary) == 0  # nothing says the passing control was one it must fail
    summary["deployments"][1]["must_fail"] = ["TRITON-MODELCTL-001"]
    assert gating.exit_status(summary) == 1
