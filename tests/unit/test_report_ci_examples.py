"""The example pipelines and scripts/nightly stay in step with what the harness actually writes."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "deploy" / "ci"


def test_github_workflow_runs_nightly_per_target_and_publishes_the_real_artifact_names():
    wf = yaml.safe_load((CI / "github-actions.yml").read_text())
    job = wf["jobs"]["audit"]
    assert job["strategy"]["fail-fast"] is False and len(job["strategy"]["matrix"]["include"]) >= 2
    text = (CI / "github-actions.yml").read_text()
    assert "./scripts/nightly --target" in text
    assert "latest/report.sarif" in text and "latest/junit.xml" in text
    assert wf["permissions"]["security-events"] == "write"
    for step in job["steps"]:
        assert "uses" in step or "run" in step, step


def test_gitlab_pipeline_runs_nightly_per_target_and_publishes_junit():
    ci = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    job = ci["nimwarden-nightly"]
    assert len(job["parallel"]["matrix"][0]["TARGET"]) >= 2
    assert any("./scripts/nightly --target" in line for line in job["script"])
    assert job["artifacts"]["reports"]["junit"].endswith("latest/junit.xml")


def test_artifact_names_in_examples_are_the_writers_names(tmp_path):
    from nimwarden.report.oscal import write_oscal
    from nimwarden.report.sarif import write_sarif
    from tests.unit.report_samples import lab_summary

    names = {write_sarif(tmp_path, lab_summary()).name, write_oscal(tmp_path, lab_summary()).name}
    nightly = (ROOT / "scripts" / "nightly").read_text()
    for name in names:
        assert name in nightly
    assert re.search(r"report\.sarif", (CI / "github-actions.yml").read_text())


def test_nightly_refuses_bad_usage_with_one_line_and_exit_2():
    env = {**os.environ, "NIMWARDEN_FAIL_ON": "high"}
    for args, message in (
        ([], "--target FILE is required"),
        (["--target", "/nonexistent/profile.yaml"], "no such target profile"),
        (["--lab", "--fail-on", "urgent"], "--fail-on must be"),
        (["--lab", "--target", "x.yaml"], "not both"),
    ):
        done = subprocess.run([str(ROOT / "scripts" / "nightly"), *args], capture_output=True, text=True,
                              timeout=30, env=env, check=False)
        assert done.returncode == 2, (args, done.stderr)
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("nightly: error: ") and message in line
