"""Allure HTML for real: allure-pytest writes results, npm's allure-commandline (Java) renders them.

Needs Node.js (npx fetches allure-commandline from the npm registry the first
time) and Java; skipped with the reason when either is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from nimwarden.report import allure_html

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Allure HTML needs Java (Debian default-jre-headless)"),
    pytest.mark.skipif(shutil.which("npx") is None, reason="Allure HTML needs Node.js/npx (Debian nodejs, npm)"),
]

SAMPLE = '''
import allure

@allure.epic("nimwarden")
@allure.feature("triton-api")
@allure.severity(allure.severity_level.CRITICAL)
def test_model_repository_refuses_unauthenticated():
    allure.attach('{"response_status": 403}', name="evidence", attachment_type=allure.attachment_type.JSON)
'''


def test_allure_html_from_real_allure_pytest_results(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
         f"--alluredir={tmp_path / 'allure-results'}", str(tmp_path / "test_sample.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    index = allure_html.generate_allure_html(tmp_path, timeout_s=300)
    assert index == tmp_path / "allure-report" / "index.html"
    assert "allure" in index.read_text(encoding="utf-8").lower()
    data = (tmp_path / "allure-report" / "data").rglob("*.json")
    assert any("test_model_repository_refuses_unauthenticated" in p.read_text(encoding="utf-8") for p in data)
