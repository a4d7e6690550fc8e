"""allure-results/ of the in-process runner: a file per judged result, one per deployment and family for
what did not apply (each control named with its reason), valid and unique uuids."""

from __future__ import annotations

import json
import uuid

from nimwarden.report.junit import write_allure_results, write_junit
from tests.unit.report_samples import result


def _summary():
    rows = [
        result("POD-ROOT-001", "pod-security", "high", "d1", "Deployment/a/d1", "fail", "runs as root"),
        result("POD-PRIV-001", "pod-security", "critical", "d1", "Deployment/a/d1", "pass", "not privileged"),
        result("TLS-PROTOCOL-001", "tls", "high", "d1", "-", "not_applicable", "deployment d1 declares no endpoints"),
        result("TLS-CIPHERS-001", "tls", "high", "d1", "-", "not_applicable", "deployment d1 declares no endpoints"),
        result("TLS-MTLS-001", "tls", "medium", "d1", "-", "not_applicable", "no gateway"),
        result("TLS-PROTOCOL-001", "tls", "high", "d2", "-", "not_applicable", "deployment d2 declares no endpoints"),
    ]
    for r in rows:
        r["nodeid"] = f"suites/test_x.py::test_{r['control']}[{r['deployment']}]"
    return {"results": rows}


def _docs(tmp_path):
    write_allure_results(tmp_path, _summary())
    files = sorted((tmp_path / "allure-results").glob("*-result.json"))
    docs = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    for f, doc in zip(files, docs):
        assert f.name == f"{doc['uuid']}-result.json" and uuid.UUID(doc["uuid"]).version == 4
    return docs


def test_each_judged_result_has_its_file_and_what_did_not_apply_one_per_deployment_and_family(tmp_path):
    docs = _docs(tmp_path)
    assert len(docs) == 4 and len({d["uuid"] for d in docs}) == 4
    judged = {d["fullName"]: d for d in docs if not d["fullName"].startswith("not-applicable::")}
    assert {d["status"] for d in judged.values()} == {"failed", "passed"}
    assert judged["suites/test_x.py::test_POD-ROOT-001[d1]"]["statusDetails"]["message"] == "runs as root"
    skipped = {d["fullName"]: d for d in docs if d["fullName"].startswith("not-applicable::")}
    d1 = skipped["not-applicable::tls::d1"]
    assert d1["status"] == "skipped" and d1["name"] == "tls: 3 control(s) not applicable to d1"
    assert d1["statusDetails"]["message"].splitlines() == [
        "TLS-PROTOCOL-001, TLS-CIPHERS-001: deployment d1 declares no endpoints", "TLS-MTLS-001: no gateway"]
    assert {lab["value"] for lab in d1["labels"] if lab["name"] == "tag"} == {"TLS-PROTOCOL-001", "TLS-CIPHERS-001", "TLS-MTLS-001"}
    assert {(lab["name"], lab["value"]) for lab in d1["labels"]} >= {("epic", "tls"), ("story", "d1")}
    assert skipped["not-applicable::tls::d2"]["statusDetails"]["message"] == "TLS-PROTOCOL-001: deployment d2 declares no endpoints"


def test_junit_still_holds_every_result(tmp_path):
    text = write_junit(tmp_path, _summary()).read_text(encoding="utf-8")
    assert 'tests="6"' in text and 'skipped="4"' in text and text.count("<testcase ") == 6


def test_junit_written_in_parts_holds_every_result_once_in_order(tmp_path):
    import xml.etree.ElementTree as ET

    many = {"results": [dict(r, nodeid=f"suites/test_x.py::test_{i}[d]") for i in range(2503) for r in _summary()["results"][:1]]}
    cases = ET.parse(write_junit(tmp_path, many)).getroot().iter("testcase")
    assert [c.get("name") for c in cases] == [f"test_{i}[d]" for i in range(2503)]
