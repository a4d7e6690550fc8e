"""A --junitxml path the user gives pytest (on nimwarden's command line, or in PYTEST_ADDOPTS as CI jobs set it) does
not take junit.xml out of the run directory: the run keeps every artifact the contract names, and the asked-for path
gets the same file. Against a real HTTP server (a Triton version answer), through pytest as a user's audit runs."""

from __future__ import annotations

import yaml

from tests.conftest import run_audit
from tests.integration.test_cve_versions import version_server


def _audit(tmp_path, *args, env=None):
    server = version_server("2.71.0")
    profile = tmp_path / "target.yaml"
    profile.write_text(yaml.safe_dump({"name": "junit", "scope": ["127.0.0.1"], "deployments": [
        {"name": "staging", "kind": "triton", "expect": "compliant",
         "endpoints": {"http": f"http://127.0.0.1:{server.server_address[1]}"}}]}))
    try:
        return run_audit(profile, tmp_path / "reports", "suites/test_triton_api.py", "-k", "test_no_version_only_vulnerability",
                         *args, env=env)
    finally:
        server.shutdown()


def test_pytest_addopts_junitxml_gets_a_copy_and_the_run_keeps_its_own(tmp_path):
    elsewhere = tmp_path / "ci" / "junit-for-the-ci.xml"
    proc, summary = _audit(tmp_path, env={"PYTEST_ADDOPTS": f"--junitxml={elsewhere}"})
    assert summary is not None, proc.stdout[-2000:] + proc.stderr[-2000:]
    own = tmp_path / "reports" / "latest" / "junit.xml"
    assert own.is_file(), sorted(p.name for p in own.parent.iterdir())
    assert "test_no_version_only_vulnerability[staging]" in own.read_text()
    assert elsewhere.read_bytes() == own.read_bytes()


def test_an_unwritable_junitxml_path_is_one_line_and_the_run_stands(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    proc, summary = _audit(tmp_path, f"--junitxml={blocked / 'junit.xml'}")
    assert summary is not None and (tmp_path / "reports" / "latest" / "junit.xml").is_file()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [line] = [x for x in proc.stderr.splitlines() if "could not copy the run's junit.xml" in x]
    assert str(blocked / "junit.xml") in line and "Traceback" not in proc.stderr
