"""OSCAL assessment results validated against NIST's OSCAL 1.0.4 JSON schema (vendored in tests/fixtures/schemas)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from nimwarden.report.oscal import build_oscal, write_oscal
from tests.unit.report_samples import lab_summary, result, with_results

SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "schemas" / "oscal_assessment-results_schema.json"


def load_oscal_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    # OSCAL's token pattern uses ECMA-262 Unicode classes (\p{L}, \p{N}) that Python's re lacks;
    # translate them to their re equivalents (letters: [^\W\d_], digits: \d). Nothing else changes.
    token = schema["definitions"]["TokenDatatype"]
    token["pattern"] = token["pattern"].replace(r"\p{L}", r"[^\W\d_]").replace(r"\p{N}", r"\d")
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def validator():
    return load_oscal_validator()


def _errors(validator, doc):
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]


def _result(doc):
    (res,) = doc["assessment-results"]["results"]
    return res


def test_oscal_validates_against_the_official_schema(validator):
    assert _errors(validator, build_oscal(lab_summary())) == []


def test_the_schema_check_catches_a_broken_document(validator):
    doc = build_oscal(lab_summary())
    broken = copy.deepcopy(doc)
    _result(broken)["findings"][0]["target"]["status"]["state"] = "mostly-fine"
    assert _errors(validator, broken)
    broken = copy.deepcopy(doc)
    _result(broken)["observations"][0]["uuid"] = "not-a-uuid"
    assert _errors(validator, broken)
    broken = copy.deepcopy(doc)
    del broken["assessment-results"]["import-ap"]
    assert _errors(validator, broken)


def expected_observations(results) -> int:
    """One per judged result, one per deployment and family for what did not apply."""
    judged = sum(1 for r in results if r["status"] != "not_applicable")
    return judged + len({(r["deployment"], r["family"]) for r in results if r["status"] == "not_applicable"})


def test_one_observation_per_result_and_one_finding_per_control_and_deployment():
    summary = lab_summary()
    res = _result(build_oscal(summary))
    assert any(r["status"] == "not_applicable" for r in summary["results"])
    assert len(res["observations"]) == expected_observations(summary["results"])
    pairs = {(r["control"], r["deployment"]) for r in summary["results"] if r["status"] != "not_applicable"}
    assert len(res["findings"]) == len(pairs)
    states = {(f["target"]["target-id"], f["title"].split(" on ")[1]): f["target"]["status"] for f in res["findings"]}
    assert states[("TRITON-MODELCTL-001", "hardened")] == {"state": "satisfied"}
    assert states[("TRITON-MODELCTL-001", "exposed")] == {"state": "not-satisfied", "reason": "fail"}
    assert states[("HOST-UID-001", "exposed")] == {"state": "not-satisfied", "reason": "could-not-evaluate"}
    assert ("NIM-METADATA-001", "hardened") not in states  # not applicable: nothing evaluated, no finding
    observation_ids = {o["uuid"] for o in res["observations"]}
    for f in res["findings"]:
        assert {o["observation-uuid"] for o in f["related-observations"]} <= observation_ids
    included = {c["control-id"] for c in res["reviewed-controls"]["control-selections"][0]["include-controls"]}
    assert included == {r["control"] for r in summary["results"]}


def test_failures_and_waivers_are_risks(validator):
    waived = result(
        "TLS-VERSION-001", "tls", "high", "hardened", "h:443", "waived", "TLSv1",
        waiver={"owner": "alice", "reason": "legacy client", "ticket": "SEC-9", "expires": "2026-12-31"},
    )
    failed = result("TLS-VERSION-001", "tls", "high", "exposed", "e:443", "fail", "TLSv1")
    doc = build_oscal(with_results(lab_summary(), [waived, failed]))
    assert _errors(validator, doc) == []
    risks = {r["statement"].split(" on ")[1].split(" ")[0]: r for r in _result(doc)["risks"]}
    assert risks["hardened"]["status"] == "deviation-approved" and "SEC-9" in risks["hardened"]["description"]
    assert {"name": "waiver-ticket", "ns": "urn:nimwarden:oscal", "value": "SEC-9"} in risks["hardened"]["props"]
    assert risks["exposed"]["status"] == "open"


def test_same_summary_gives_the_same_document():
    assert build_oscal(lab_summary()) == build_oscal(lab_summary())
    other = build_oscal(lab_summary("2026-11-23T08:00:00Z"))
    assert other["assessment-results"]["uuid"] != build_oscal(lab_summary())["assessment-results"]["uuid"]


def test_multiline_and_padded_text_stays_valid(validator):
    odd = result("HOST-UID-001", "host", "medium", "hardened", "  p\n  ", "error", "line one\nline two")
    odd["severity"] = " medium \n"
    doc = build_oscal(with_results(lab_summary(), [odd]))
    assert _errors(validator, doc) == []


def test_empty_run_is_still_valid(validator):
    assert _errors(validator, build_oscal(with_results(lab_summary(), []))) == []


def test_write_oscal(tmp_path, validator):
    path = write_oscal(tmp_path, lab_summary())
    assert path.name == "oscal-assessment-results.json"
    assert _errors(validator, json.loads(path.read_text(encoding="utf-8"))) == []


def test_what_did_not_apply_is_one_observation_per_deployment_and_family(validator):
    na = [result(c, "nim-api", "medium", "hardened", "hardened", "not_applicable", why)
          for c, why in (("NIM-METADATA-001", "no nim endpoint"), ("NIM-LOGS-001", "no nim endpoint"), ("NIM-OTHER-001", "a NIM only"))]
    other = result("TRITON-MODELCTL-001", "triton-api", "critical", "hardened", "hardened", "not_applicable", "no triton endpoint")
    doc = build_oscal(with_results(lab_summary(), [*na, other]))
    assert _errors(validator, doc) == []
    res = _result(doc)
    assert len(res["observations"]) == 2
    (nim,) = [o for o in res["observations"] if o["title"].startswith("nim-api")]
    assert nim["title"] == "nim-api: 3 control(s) not applicable to hardened"
    assert nim["description"] == "NIM-METADATA-001, NIM-LOGS-001: no nim endpoint\nNIM-OTHER-001: a NIM only"
    assert "findings" not in res  # nothing applied, nothing evaluated: no finding claims a control is satisfied


def test_a_control_that_applied_to_some_subjects_relates_its_finding_to_both_observations(validator):
    na = result("RBAC-X-001", "rbac", "high", "hardened", "Role/a", "not_applicable", "no role bound")
    passed = result("RBAC-X-001", "rbac", "high", "hardened", "Role/b", "pass", "bound and narrow")
    doc = build_oscal(with_results(lab_summary(), [na, passed]))
    assert _errors(validator, doc) == []
    (finding,) = _result(doc)["findings"]
    assert finding["target"]["status"] == {"state": "satisfied"} and len(finding["related-observations"]) == 2
