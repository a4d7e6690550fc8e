"""Gate on what is new: fingerprints that survive a port or pod change, --fail-on-new, SARIF baselineState.

Two recorded runs of a two-deployment target stand for "two runs of the lab": between them the lab
came up on other ephemeral ports, a pod was rescheduled, and one control broke on hardened.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest

from nimwarden.report import RunRecord, baseline, finish_run, gating
from nimwarden.report.fingerprint import fingerprints, normalize_subject
from nimwarden.report.sarif import build_sarif
from nimwarden.report.summary import utc_now
from tests.unit.report_samples import lab_summary, result, with_results

SARIF_SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "schemas" / "sarif-schema-2.1.0.json"


@pytest.mark.parametrize("before, after", [
    ("http://127.0.0.1:41235", "http://127.0.0.1:38811"),  # the lab's ephemeral ports
    ("exposed:127.0.0.1:30080", "exposed:127.0.0.1:31999"),  # a NodePort that moved
    ("Pod/nim/triton-7d9f8b6c5d-x2k4q", "Pod/nim/triton-5c6b7d8f9-9zq2w"),  # a new ReplicaSet's pod
    ("Pod/nim/node-agent-x2k4q → agent", "Pod/nim/node-agent-b7rtn → agent"),  # a DaemonSet's pod
    ("local:// pid 5335", "local:// pid 10189"),  # the host family's server, restarted
])
def test_fingerprint_ignores_assigned_ports_and_pod_suffixes(before, after):
    assert normalize_subject(before) == normalize_subject(after)
    a = result("TLS-PROTOCOL-001", "tls", "high", "exposed", before, "fail", "x")
    assert fingerprints([a]) == fingerprints([dict(a, subject=after)])


@pytest.mark.parametrize("one, other", [
    ("e:443", "e:8443"),  # a chosen service port is part of what the finding is about
    ("exposed:127.0.0.1", "exposed:127.0.0.2"),
    ("Pod/nim/redis-0", "Pod/nim/redis-1"),  # StatefulSet pods keep their identity
    ("Deployment/nim/svc-grpcs", "Deployment/nim/svc"),  # a name that merely looks generated
    ("local:// pid 5335", "ssh://gpu-1 pid 5335"),  # another host
])
def test_fingerprint_keeps_what_identifies_the_subject(one, other):
    assert normalize_subject(one) != normalize_subject(other)


def test_coinciding_keys_get_distinct_fingerprints():
    a = result("TLS-PROTOCOL-001", "tls", "high", "exposed", "127.0.0.1:40001", "fail", "x")
    b = dict(a, subject="127.0.0.1:40002")
    fa, fb = fingerprints([a, b])
    assert fa != fb and fingerprints([b, a]) == [fb, fa]


# ----------------------------------------------------------------------------------- two runs

def _run(ports: int, broken: bool, pod: str) -> list[dict]:
    """The results of one run: exposed fails two controls (a canary), hardened fails one low one."""
    out = [
        result("TRITON-MODELCTL-001", "triton-api", "critical", "exposed", f"http://127.0.0.1:{ports}", "fail", "200"),
        result("TRITON-MODELCTL-001", "triton-api", "critical", "hardened", f"http://127.0.0.1:{ports + 10}", "pass", "403"),
        result("POD-ROROOT-001", "pod-security", "medium", "exposed", f"Pod/nim-exposed/{pod} → tritonserver", "fail", "rw"),
        result("POD-ROROOT-001", "pod-security", "medium", "hardened", "Deployment/nim-hardened/triton → tritonserver", "pass", "ro"),
        result("TLS-EXPIRY-001", "tls", "low", "hardened", f"https://127.0.0.2:{ports + 20}", "fail", "expires in 20 days"),
        result("GATEWAY-AUTHN-001", "gateway", "high", "hardened", f"https://127.0.0.2:{ports + 20}",
               "fail" if broken else "pass", "answers without credentials" if broken else "401"),
    ]
    return out


def _target(tmp_path: Path):
    deps = (SimpleNamespace(name="hardened", kind="triton", expect="compliant", must_fail=()),
            SimpleNamespace(name="exposed", kind="triton", expect="noncompliant", must_fail=()))
    return SimpleNamespace(name="lab", path=tmp_path / "lab.yaml", deployments=deps)


def _finish(tmp_path, results, stamp, fail_on_new=False, baseline_file=None):
    reports = tmp_path / "reports"
    run_dir = reports / stamp
    run_dir.mkdir(parents=True)
    record = RunRecord(target=_target(tmp_path), started=utc_now(), options=[], fail_on=None, waivers=[], run_dir=run_dir,
                       reports_dir=reports, collected=[], interrupted=False, stopped_early=False, pytest_exit=1,
                       fail_on_new=fail_on_new, baseline=baseline_file)
    status, lines = finish_run(record, [dict(r, nodeid=f"n{i}") for i, r in enumerate(results)])
    return status, lines, json.loads((run_dir / "summary.json").read_text()), json.loads((run_dir / "report.sarif").read_text())


def test_fail_on_new_fails_only_on_the_control_broken_between_two_runs(tmp_path):
    first, _, _, _ = _finish(tmp_path, _run(41000, broken=False, pod="triton-7d9f8b6c5d-x2k4q"), "20261201T080000Z")
    assert first == 1  # the low TLS finding on hardened fails the plain gate
    status, lines, summary, sarif = _finish(tmp_path, _run(38000, broken=True, pod="triton-5c6b7d8f9-9zq2w"),
                                            "20261202T080000Z", fail_on_new=True)
    assert status == 1
    new = [r for r in summary["results"] if r.get("baseline_state") == "new"]
    assert [(r["control"], r["deployment"]) for r in new] == [("GATEWAY-AUTHN-001", "hardened")]
    assert summary["baseline"]["source"] == "20261201T080000Z" and summary["baseline"]["counts"] == {"new": 1, "unchanged": 3, "absent": 0, "not_rechecked": 0}
    assert any("1 new, 3 unchanged" in line and "--fail-on-new" in line for line in lines)
    states = {(r["ruleId"], r["properties"]["deployment"]): r["baselineState"] for r in sarif["runs"][0]["results"]}
    assert states == {("GATEWAY-AUTHN-001", "hardened"): "new", ("TRITON-MODELCTL-001", "exposed"): "unchanged",
                      ("POD-ROROOT-001", "exposed"): "unchanged", ("TLS-EXPIRY-001", "hardened"): "unchanged"}
    validator = jsonschema.Draft7Validator(json.loads(SARIF_SCHEMA.read_text()))
    assert not list(validator.iter_errors(sarif))


def test_without_anything_new_fail_on_new_passes_and_the_plain_gate_does_not(tmp_path):
    _finish(tmp_path, _run(41000, broken=True, pod="a-7d9f8b6c5d-x2k4q"), "20261201T080000Z")
    status, _, summary, _ = _finish(tmp_path, _run(38000, broken=True, pod="a-5c6b7d8f9-9zq2w"), "20261202T080000Z", fail_on_new=True)
    assert status == 0 and summary["exit_status"] == 0
    assert gating.exit_status(summary) == 1  # the same results, gated on everything
    assert {d["name"]: d["verdict"] for d in summary["deployments"]}["hardened"] == gating.NONCOMPLIANT  # still said


def test_a_canary_is_never_narrowed(tmp_path):
    """Unchanged failures on a canary are what shows the harness can see: setting them aside would call it blind."""
    _finish(tmp_path, _run(41000, broken=False, pod="p-x2k4q"), "20261201T080000Z")
    _, _, summary, _ = _finish(tmp_path, _run(38000, broken=False, pod="p-x2k4q"), "20261202T080000Z", fail_on_new=True)
    gated = baseline.gated(summary)
    assert [r["status"] for r in gated["results"] if r["deployment"] == "exposed" and r["status"] != "pass"] == ["fail", "fail"]
    assert baseline.exit_status(summary) == 0


def test_a_fixed_finding_is_absent_in_sarif_and_a_baseline_file_can_be_named(tmp_path):
    _, _, before, _ = _finish(tmp_path, _run(41000, broken=True, pod="p-x2k4q"), "20261201T080000Z")
    file = tmp_path / "nightly-summary.json"
    file.write_text(json.dumps(before))
    results = [r for r in _run(38000, broken=False, pod="p-x2k4q")]
    status, _, summary, sarif = _finish(tmp_path, results, "20261202T080000Z", fail_on_new=True, baseline_file=str(file))
    assert summary["baseline"]["source"] == str(file) and status == 0
    (gone,) = [r for r in sarif["runs"][0]["results"] if r["baselineState"] == "absent"]
    assert gone["ruleId"] == "GATEWAY-AUTHN-001" and gone["kind"] == "pass" and gone["level"] == "none"
    validator = jsonschema.Draft7Validator(json.loads(SARIF_SCHEMA.read_text()))
    assert not list(validator.iter_errors(sarif))


def test_first_run_everything_is_new(tmp_path):
    status, lines, summary, _ = _finish(tmp_path, _run(41000, broken=True, pod="p-x2k4q"), "20261201T080000Z", fail_on_new=True)
    assert status == 1 and summary["baseline"]["source"] is None
    schema = json.loads((SARIF_SCHEMA.parent / "nimwarden-summary-v1.schema.json").read_text())
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(summary))
    assert any("no baseline (first run: every finding is new)" in line for line in lines)


def test_sarif_fingerprints_are_stable_across_the_two_runs():
    one = with_results(lab_summary(), _run(41000, broken=True, pod="triton-7d9f8b6c5d-x2k4q"))
    two = with_results(lab_summary(), _run(38000, broken=True, pod="triton-5c6b7d8f9-9zq2w"))

    def prints(s):
        return sorted(r["partialFingerprints"]["nimwardenFinding/v2"] for r in build_sarif(s)["runs"][0]["results"])

    assert prints(one) == prints(two) and len(prints(one)) == 4


def test_unreadable_baseline_is_a_value_error_naming_the_file(tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="s.json: not a nimwarden summary.json"):
        baseline.read_baseline(bad)
    with pytest.raises(ValueError, match="cannot read the baseline"):
        baseline.read_baseline(tmp_path / "missing.json")


def test_audit_refuses_an_unreadable_baseline_before_anything_runs(tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    profile = tmp_path / "p.yaml"
    from nimwarden import cli

    assert cli.main(["discover", "--manifests", str(root / "tests/fixtures/discovery"), "--out", str(profile)]) == 0
    env = dict(os.environ, PYTHONPATH=str(root))
    env.pop("NIMWARDEN_RUN_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "audit", "--target", str(profile), "--reports-dir",
                           str(tmp_path / "r"), "--fail-on-new", "--baseline", str(tmp_path / "nope.json")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "cannot read the baseline" in proc.stdout + proc.stderr


def test_a_narrower_run_does_not_call_what_it_did_not_look_at_absent(tmp_path):
    _finish(tmp_path, _run(41000, broken=True, pod="p-x2k4q"), "20261201T080000Z")
    narrow = [r for r in _run(38000, broken=True, pod="p-x2k4q") if r["family"] == "triton-api"]  # a -k triton run
    _, lines, summary, sarif = _finish(tmp_path, narrow, "20261202T080000Z", baseline_file=None)
    assert summary["baseline"]["counts"]["absent"] == 0 and summary["baseline"]["counts"]["not_rechecked"] == 3
    assert not [r for r in sarif["runs"][0]["results"] if r["baselineState"] == "absent"]
    assert any("3 not rechecked" in line for line in lines)


def test_the_previous_run_is_read_once_for_the_baseline_and_the_trend(tmp_path, monkeypatch):
    """At repository scale the previous summary.json holds 100,000 results: the baseline and the trend compare
    with the same run, read once."""
    from nimwarden.report import trends

    _finish(tmp_path, _run(41000, broken=False, pod="p-x2k4q"), "20261201T080000Z")
    read = []
    real = trends.read_earlier
    monkeypatch.setattr(trends, "read_earlier", lambda path: read.append(path.parent.name) or real(path))
    monkeypatch.setattr(trends._runs, "__defaults__", (trends.read_earlier,))
    _, _, summary, _ = _finish(tmp_path, _run(38000, broken=True, pod="p-x2k4q"), "20261202T080000Z")
    assert read == ["20261201T080000Z"]
    assert summary["baseline"]["source"] == summary["trend"]["previous_run"] == "20261201T080000Z"
    assert summary["trend"]["counts"]["new"] == 1
