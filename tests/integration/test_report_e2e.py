"""Report artifacts from real audits of the lab (real tritonserver processes), checked as their readers would.

Two audits into one reports directory, run as users run them (`nimwarden audit --target …`):
A: every suite, the lab's own waivers;
B: the Triton API suite with `--fail-on critical`, hardened's metrics endpoint pointed at the
   exposed server (a real medium-severity failure on a compliant deployment), and a waivers
   file with one valid waiver on an exposed finding, one expired, one stale.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml

from nimwarden.report import gating
from nimwarden.waivers import recount
from tests.conftest import ROOT, lab_profile, run_audit
from tests.unit.test_report_browser import CHROMIUM, VISIBLE, _open, chromium  # noqa: F401 - chromium is a fixture
from tests.unit.test_report_oscal import expected_observations, load_oscal_validator
from tests.unit.test_report_summary_schema import summary_validator

pytestmark = [pytest.mark.lab, pytest.mark.slow]
SARIF_SCHEMA = ROOT / "tests" / "fixtures" / "schemas" / "sarif-schema-2.1.0.json"


def _profile(directory, lab_state, edit=None):
    """targets/lab.yaml for this lab, written elsewhere: paths in it become absolute, then ``edit`` applies."""
    path = lab_profile(directory, lab_state)
    raw = yaml.safe_load(path.read_text())
    kube = raw.get("kubernetes") or {}
    if kube.get("paths"):
        kube["paths"] = [str((ROOT / "targets" / p).resolve()) for p in kube["paths"]]
    if edit:
        edit(raw)
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def audits(lab_state, tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    reports = work / "reports"
    proc_a, summary_a = run_audit(_profile(work, lab_state), reports, timeout=600)
    assert summary_a is not None, proc_a.stdout[-3000:] + proc_a.stderr[-3000:]
    run_a = (reports / "latest").resolve()

    lab_waivers = yaml.safe_load((ROOT / "targets" / "lab-waivers.yaml").read_text())["waivers"]
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    waivers = lab_waivers + [
        {"control": "TRITON-STATS-001", "deployment": "exposed", "subject": "http://*", "owner": "qa",
         "reason": "statistics accepted for the e2e test", "ticket": "E2E-1", "expires": "2099-12-31"},
        {"control": "TRITON-LOGGING-001", "deployment": "exposed", "owner": "qa",
         "reason": "lapsed acceptance", "ticket": "E2E-2", "expires": yesterday},
        {"control": "TRITON-MODELCTL-001", "deployment": "hardened", "owner": "qa",
         "reason": "covers nothing", "ticket": "E2E-3", "expires": "2099-12-31"},
    ]
    b_dir = work / "b"
    b_dir.mkdir()
    waivers_file = b_dir / "waivers.yaml"
    waivers_file.write_text(yaml.safe_dump({"waivers": waivers}))

    def edit(raw):
        raw["waivers"] = str(waivers_file)
        for dep in raw["deployments"]:
            if dep["name"] == "hardened":
                dep["endpoints"]["metrics"] = "http://${lab.exposed.metrics}"

    profile_b = _profile(b_dir, lab_state, edit)
    proc_b, summary_b = run_audit(profile_b, reports, "--fail-on", "critical", "suites/test_triton_api.py", timeout=600)
    assert summary_b is not None, proc_b.stdout[-3000:] + proc_b.stderr[-3000:]
    run_b = (reports / "latest").resolve()
    assert run_b != run_a
    return {"a": (proc_a, summary_a, run_a), "b": (proc_b, summary_b, run_b)}


def test_every_artifact_is_written(audits):
    for _, _, run in audits.values():
        for name in ("summary.json", "report.html", "junit.xml", "report.sarif", "oscal-assessment-results.json"):
            assert (run / name).is_file(), name


def test_summaries_follow_the_contract_schema(audits):
    validator = summary_validator()
    for _, summary, _ in audits.values():
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(summary)]
        assert errors == []


def test_exit_status_is_the_gate_applied_to_the_summary(audits):
    proc, summary, _ = audits["a"]
    assert proc.returncode == summary["exit_status"] == gating.exit_status(summary)
    assert summary["totals"] == recount(summary["results"])
    names = {d["name"]: d for d in summary["deployments"]}
    assert names["hardened"]["expect"] == "compliant" and names["exposed"]["expect"] == "noncompliant"


def test_fail_on_critical_changes_the_exit_status_as_documented(audits):
    proc, summary, _ = audits["b"]
    hardened_fails = [r for r in summary["results"] if r["deployment"] == "hardened" and r["status"] == "fail"]
    assert [(r["control"], r["severity"]) for r in hardened_fails] == [("TRITON-METRICS-001", "medium")]
    assert gating.exit_status(summary) == 1  # without a gate, the medium failure counts
    assert proc.returncode == summary["exit_status"] == gating.exit_status(summary, "critical")
    if not [r for r in summary["results"] if r["status"] == "error" and r["severity"] == "critical"]:
        assert proc.returncode == 0  # with --fail-on critical it does not
    assert "--fail-on=critical" in summary["run"]["options"]


def test_waivers_from_a_real_run(audits):
    _, summary, _ = audits["b"]
    stats = [r for r in summary["results"] if r["control"] == "TRITON-STATS-001" and r["deployment"] == "exposed"]
    by_subject = {r["subject"]: r for r in stats}
    http = [r for s, r in by_subject.items() if s.startswith("http://")]
    assert http and all(r["status"] == "waived" and r["waiver"]["ticket"] == "E2E-1" for r in http)
    assert all(r["status"] == "fail" for s, r in by_subject.items() if not s.startswith("http://"))  # glob honoured
    logging_ = [r for r in summary["results"] if r["control"] == "TRITON-LOGGING-001" and r["deployment"] == "exposed"]
    assert logging_ and all(r["status"] == "fail" for r in logging_)
    kinds = {(f["kind"], f["waiver"]["ticket"]) for f in summary["waiver_findings"]}
    assert {("expired", "E2E-2"), ("stale", "E2E-3")} <= kinds


def test_second_run_shows_a_trend_against_the_first(audits):
    _, _, run_a = audits["a"]
    _, summary, run_b = audits["b"]
    trend = summary["trend"]
    assert trend["previous_run"] == run_a.name
    assert ("TRITON-METRICS-001", "hardened") in {(t["control"], t["deployment"]) for t in trend["new"]}
    assert trend["counts"]["unchanged"] > 0
    page = (run_b / "report.html").read_text(encoding="utf-8")
    assert 'id="trend"' in page and f"<code>{run_a.name}</code>" in page
    assert 'aria-label="findings per run"' in page  # two runs of history: the chart is drawn


def test_sarif_validates_and_carries_every_failure(audits):
    validator = jsonschema.Draft7Validator(json.loads(SARIF_SCHEMA.read_text()), format_checker=jsonschema.FormatChecker())
    for _, summary, run in audits.values():
        doc = json.loads((run / "report.sarif").read_text())
        assert list(validator.iter_errors(doc)) == []
        reported = sorted((r["ruleId"], r["properties"]["deployment"], r["properties"]["subject"]) for r in doc["runs"][0]["results"]
                          if r.get("baselineState") != "absent")  # findings of the baseline gone since: not this run's
        expected = []
        for r in summary["results"]:
            if r["status"] not in ("fail", "error", "waived"):
                continue
            locations = (r.get("evidence") or {}).get("locations") if r["status"] != "error" else None
            # one object per finding: a Kubernetes result with several findings is one SARIF result per finding
            expected += [(r["control"], r["deployment"], loc["object"]) for loc in locations] if locations else \
                [(r["control"], r["deployment"], r["subject"])]
        assert reported == sorted(expected) and reported


def test_oscal_validates(audits):
    validator = load_oscal_validator()
    for _, summary, run in audits.values():
        doc = json.loads((run / "oscal-assessment-results.json").read_text())
        assert list(validator.iter_errors(doc)) == []
        (res,) = doc["assessment-results"]["results"]
        assert len(res["observations"]) == expected_observations(summary["results"])


def test_junit_has_a_testcase_per_result(audits):
    _, summary, run = audits["a"]
    cases = ET.parse(run / "junit.xml").getroot().iter("testcase")
    assert sum(1 for _ in cases) >= len(summary["results"])


def test_junit_validates_against_its_schema(audits):
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(str(Path(__file__).resolve().parents[1] / "fixtures" / "schemas" / "junit.xsd"))
    for _, _, run in audits.values():
        schema.validate(str(run / "junit.xml"))


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian chromium (apt-get install -y chromium)")
def test_report_renders_in_chromium_with_both_lab_deployments(audits, chromium):  # noqa: F811
    chromium.events.clear()
    _, summary, run = audits["a"]
    _open(chromium, (run / "report.html").as_uri())
    assert chromium.problems() == []
    banners = chromium.js("[...document.querySelectorAll('.verdict')].map(b => b.dataset.deployment)")
    assert {"hardened", "exposed"} <= set(banners)
    assert chromium.js(f"{VISIBLE}.length") == len(summary["results"])
    chromium.js("document.querySelector('input[data-filter=deployment][value=hardened]').click()")
    assert "hardened" not in chromium.js(f"{VISIBLE}.map(r => r.dataset.deployment)")


def test_report_command_regenerates_and_signs_off(audits):
    _, _, run = audits["b"]
    before = (run / "report.html").read_text(encoding="utf-8")
    (run / "report.html").unlink()
    (run / "report.sarif").unlink()
    done = subprocess.run([sys.executable, "-m", "nimwarden.cli", "report", str(run), "--sign-off"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (run / "report.sarif").is_file()
    after = (run / "report.html").read_text(encoding="utf-8")
    assert after.count('class="result ') == before.count('class="result ')
    assert 'aria-label="findings per run"' in after  # the history survives regeneration
    digest = hashlib.sha256((run / "summary.json").read_bytes()).hexdigest()
    assert f"<code>{digest}</code>" in (run / "sign-off.html").read_text(encoding="utf-8")
