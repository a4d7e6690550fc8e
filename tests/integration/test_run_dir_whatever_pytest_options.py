"""The run directory holds every artifact the contract names (summary.json, report.html, junit.xml,
allure-results/) whatever pytest options the user adds: a --junitxml path (on nimwarden's command line, or in
PYTEST_ADDOPTS as CI jobs set it) gets a copy of the run's junit.xml; an --alluredir elsewhere, or pytest's junitxml
or allure-pytest plugin turned off, and nimwarden writes what is missing from the results, as its in-process runner
does. Against a real HTTP server (a Triton version answer), through pytest as a user's audit runs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import yaml

from tests.conftest import ROOT, run_audit
from tests.integration.test_cve_versions import version_server

CASE = "test_no_version_only_vulnerability[staging]"


def _audit(tmp_path, *args, env=None):
    server = version_server("2.71.0")
    tmp_path.mkdir(parents=True, exist_ok=True)
    profile = tmp_path / "target.yaml"
    profile.write_text(yaml.safe_dump({"name": "junit", "scope": ["127.0.0.1"], "deployments": [
        {"name": "staging", "kind": "triton", "expect": "compliant",
         "endpoints": {"http": f"http://127.0.0.1:{server.server_address[1]}"}}]}))
    try:
        proc, summary = run_audit(profile, tmp_path / "reports", "suites/test_triton_api.py", "-k",
                                  "test_no_version_only_vulnerability", *args, env=env)
    finally:
        server.shutdown()
    assert summary is not None, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run_dir = (tmp_path / "reports" / "latest").resolve()
    assert {"summary.json", "report.html", "junit.xml", "allure-results"} <= {p.name for p in run_dir.iterdir()}
    return proc, summary, run_dir


def _controls_in_allure(folder):
    return {label["value"].split()[0] for f in folder.glob("*-result.json") for label in json.loads(f.read_text())["labels"]
            if label["name"] == "feature"}


def test_pytest_addopts_junitxml_gets_a_copy_and_the_run_keeps_its_own(tmp_path):
    elsewhere = tmp_path / "ci" / "junit-for-the-ci.xml"
    _, _, run_dir = _audit(tmp_path, env={"PYTEST_ADDOPTS": f"--junitxml={elsewhere}"})
    own = run_dir / "junit.xml"
    assert CASE in own.read_text()
    assert elsewhere.read_bytes() == own.read_bytes()


def test_an_unwritable_junitxml_path_is_one_line_and_the_run_stands(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    proc, _, _ = _audit(tmp_path, f"--junitxml={blocked / 'junit.xml'}")
    [line] = [x for x in proc.stderr.splitlines() if "could not copy the run's junit.xml" in x]
    assert str(blocked / "junit.xml") in line and "Traceback" not in proc.stderr


def test_without_pytests_junitxml_plugin_nimwarden_writes_junit_xml(tmp_path):
    _, summary, run_dir = _audit(tmp_path, "-p", "no:junitxml")
    cases = list(ET.parse(run_dir / "junit.xml").getroot().iter("testcase"))
    assert len(cases) == len(summary["results"]) == 1 and cases[0].get("name") == CASE, [c.attrib for c in cases]


def test_an_alluredir_elsewhere_and_no_allure_plugin_still_leave_allure_results_in_the_run(tmp_path):
    elsewhere = tmp_path / "allure-for-the-ci"
    _, _, run_dir = _audit(tmp_path / "a", env={"PYTEST_ADDOPTS": f"--alluredir={elsewhere}"})
    assert "TRITON-CVE-002" in _controls_in_allure(elsewhere)  # allure-pytest's own, where asked
    assert "TRITON-CVE-002" in _controls_in_allure(run_dir / "allure-results")  # and the run's
    _, _, run_dir = _audit(tmp_path / "b", "-p", "no:allure_pytest")
    assert "TRITON-CVE-002" in _controls_in_allure(run_dir / "allure-results")


def test_pytest_addopts_sends_a_manifests_audit_through_pytest_so_its_options_apply(tmp_path):
    """A manifests-only audit is judged in-process, without pytest; a PYTEST_ADDOPTS in the environment (a CI
    job's --junitxml here) is meant for the audit too, so it runs under pytest and the asked-for path gets junit.xml."""
    profile = yaml.safe_load((ROOT / "targets" / "helm-review.yaml").read_text())
    profile["kubernetes"]["paths"] = [str(ROOT / "targets" / p) for p in profile["kubernetes"]["paths"]]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(profile))
    fast_proc, fast = run_audit(tmp_path / "p.yaml", tmp_path / "fast")
    assert fast is not None and fast["timings"]["runner"].startswith("in-process"), fast_proc.stderr[-2000:]
    elsewhere = tmp_path / "ci.xml"
    proc, summary = run_audit(tmp_path / "p.yaml", tmp_path / "reports", env={"PYTEST_ADDOPTS": f"--junitxml={elsewhere}"})
    assert summary is not None and "timings" not in summary, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.returncode == fast_proc.returncode
    assert elsewhere.read_bytes() == (tmp_path / "reports" / "latest" / "junit.xml").read_bytes()
    assert {(r["control"], r["status"]) for r in summary["results"]} == {(r["control"], r["status"]) for r in fast["results"]}
