"""SARIF 2.1.0 output validated against the official OASIS schema (vendored in tests/fixtures/schemas)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from nimwarden.catalog import load_catalog
from nimwarden.report.sarif import build_sarif, write_sarif
from tests.unit.report_samples import lab_summary, result, with_results

SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "schemas" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def _errors(validator, doc):
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_sarif_validates_against_the_official_schema(validator):
    assert _errors(validator, build_sarif(lab_summary())) == []


def test_the_schema_check_catches_a_broken_document(validator):
    doc = build_sarif(lab_summary())
    broken = copy.deepcopy(doc)
    broken["runs"][0]["results"][0]["level"] = "critical"
    assert _errors(validator, broken)
    broken = copy.deepcopy(doc)
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"] = {"region": {"startLine": 0}}
    assert _errors(validator, broken)


def test_every_failure_and_error_is_a_result_and_passes_are_not():
    summary = lab_summary()
    run = build_sarif(summary)["runs"][0]
    expected = sorted(
        (r["control"], r["deployment"], r["subject"]) for r in summary["results"] if r["status"] in ("fail", "error")
    )
    got = sorted((r["ruleId"], r["properties"]["deployment"], r["properties"]["subject"]) for r in run["results"])
    assert got == expected and len(got) == 7
    error = next(r for r in run["results"] if r["properties"]["status"] == "error")
    assert (error["kind"], error["level"]) == ("open", "none")
    assert error["message"]["text"].startswith("could not evaluate: ")
    critical = next(r for r in run["results"] if r["ruleId"] == "TRITON-MODELCTL-001")
    assert (critical["kind"], critical["level"]) == ("fail", "error")


def test_rules_come_from_the_catalog_with_security_severity():
    run = build_sarif(lab_summary())["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert set(load_catalog()) <= set(rules)
    rule = rules["TRITON-MODELCTL-001"]
    assert rule["properties"]["security-severity"] == "9.5"
    assert "--model-control-mode=none" in rule["help"]["text"]
    assert rule["shortDescription"]["text"] == load_catalog()["TRITON-MODELCTL-001"].title
    for r in run["results"]:
        assert run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"]


def test_manifest_findings_point_at_file_and_line_others_at_a_logical_location():
    run = build_sarif(lab_summary())["runs"][0]
    pod = next(r for r in run["results"] if r["ruleId"] == "POD-RUNASNONROOT-001")
    physical = pod["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "nimwarden/lab/manifests/exposed.yaml", "uriBaseId": "%SRCROOT%"}
    assert physical["region"] == {"startLine": 27}
    api = next(r for r in run["results"] if r["ruleId"] == "TRITON-MODELCTL-001")
    assert "physicalLocation" not in api["locations"][0]
    assert api["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "lab/exposed/http://127.0.0.1:18100"


def test_waived_failure_is_kept_as_an_accepted_suppression(validator):
    waived = result(
        "TLS-VERSION-001", "tls", "high", "hardened", "h:443", "waived", "TLSv1",
        waiver={"owner": "alice", "reason": "legacy client", "ticket": "SEC-9", "expires": "2026-12-31"},
    )
    doc = build_sarif(with_results(lab_summary(), [waived]))
    (r,) = doc["runs"][0]["results"]
    assert r["suppressions"][0]["kind"] == "external" and r["suppressions"][0]["state"] == "accepted"
    assert "SEC-9" in r["suppressions"][0]["justification"]
    assert _errors(validator, doc) == []


def test_waiver_problems_are_notifications(validator):
    summary = lab_summary()
    summary["waiver_findings"] = [
        {"kind": "expired", "reason": "waiver expired", "waiver": {"control": "PORTS-METRICS-001"}, "subjects": []}
    ]
    doc = build_sarif(summary)
    (note,) = doc["runs"][0]["invocations"][0]["toolConfigurationNotifications"]
    assert note["level"] == "error" and note["associatedRule"] == {"id": "PORTS-METRICS-001"}
    assert _errors(validator, doc) == []


def test_unknown_control_still_gets_a_rule_and_odd_paths_stay_valid(validator):
    odd = result(
        "CUSTOM-THING-001", "host", "low", "exposed", "x", "fail", "odd",
        {"file": "deploy/my manifests/app.yaml", "line": True},
    )
    doc = build_sarif(with_results(lab_summary(), [odd]))
    assert _errors(validator, doc) == []
    (r,) = doc["runs"][0]["results"]
    assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "deploy/my%20manifests/app.yaml"
    assert "region" not in r["locations"][0]["physicalLocation"]  # a bool is not a line number


def test_write_sarif(tmp_path, validator):
    path = write_sarif(tmp_path, lab_summary())
    assert path.name == "report.sarif"
    assert _errors(validator, json.loads(path.read_text(encoding="utf-8"))) == []


def test_the_file_written_a_result_at_a_time_is_the_documents_text(tmp_path):
    summary = lab_summary()
    summary["baseline"] = {"absent": [dict(summary["results"][0], status="fail", fingerprint="f" * 32)]}
    text = write_sarif(tmp_path, summary).read_text(encoding="utf-8")
    doc = build_sarif(summary)
    assert len(doc["runs"][0]["results"]) > 2  # failures, errors and one absent finding
    assert text == json.dumps(doc, separators=(",", ":"), default=str) + "\n"
    assert text.count("\n") == 1


def test_results_without_a_manifest_point_at_the_target_profile(validator):
    summary = lab_summary()
    summary["run"]["target_file"] = "/srv/checkout/targets/staging/lab.yaml"
    doc = build_sarif(summary)
    assert _errors(validator, doc) == []
    api = next(r for r in doc["runs"][0]["results"] if r["ruleId"] == "TRITON-MODELCTL-001")
    assert api["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "targets/staging/lab.yaml", "uriBaseId": "%SRCROOT%"}
    pod = next(r for r in doc["runs"][0]["results"] if r["ruleId"] == "POD-RUNASNONROOT-001")
    assert pod["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "nimwarden/lab/manifests/exposed.yaml"


def test_profile_uri_forms():
    from nimwarden.report.sarif import profile_uri

    assert profile_uri({"run": {"target_file": "/a/targets/x/targets/lab.yaml"}}) == "targets/lab.yaml"
    assert profile_uri({"run": {"target_file": "/etc/nimwarden/target.yaml"}}) == "target.yaml"
    assert profile_uri({"run": {}}) is None


def test_kubernetes_objects_become_logical_locations(validator):
    judged = result(
        "RBAC-EXEC-001", "rbac", "high", "hardened", "ServiceAccount/nim/llama", "fail", "exec",
        {"objects": ["Deployment/nim/llama", "ServiceAccount/nim/llama", 7], "findings": ["x"]},
    )
    doc = build_sarif(with_results(lab_summary(), [judged]))
    assert _errors(validator, doc) == []
    names = [loc["name"] for loc in doc["runs"][0]["results"][0]["locations"][0]["logicalLocations"]]
    assert names == ["ServiceAccount/nim/llama", "Deployment/nim/llama"]
