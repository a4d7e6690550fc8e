"""`nimwarden report --allure-html`: clear one-line refusals when Node.js or Java is missing.

The real generation (npm allure-commandline + Java) is exercised in
tests/integration/test_report_allure.py.
"""

from __future__ import annotations

import pytest

from nimwarden.errors import UsageError
from nimwarden.report import allure_html


def _results(tmp_path):
    (tmp_path / "allure-results").mkdir()
    (tmp_path / "allure-results" / "x-result.json").write_text("{}", encoding="utf-8")
    return tmp_path


def _which_without(*missing):
    real = allure_html.shutil.which

    def which(name):
        return None if name in missing else real(name)

    return which


def test_missing_java_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("NIMWARDEN_ALLURE", raising=False)
    monkeypatch.setattr(allure_html.shutil, "which", _which_without("java"))
    with pytest.raises(allure_html.AllureUnavailable) as info:
        allure_html.generate_allure_html(_results(tmp_path))
    assert "java" in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, UsageError)  # exit 2, one line, at the CLI


def test_missing_node_and_java_are_both_named(tmp_path, monkeypatch):
    monkeypatch.delenv("NIMWARDEN_ALLURE", raising=False)
    monkeypatch.chdir(tmp_path)  # no node_modules/.bin/allure here
    monkeypatch.setattr(allure_html.shutil, "which", _which_without("java", "npx", "allure"))
    with pytest.raises(allure_html.AllureUnavailable, match=r"java .* and node/npx"):
        allure_html.allure_command(tmp_path)


def test_no_results_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no Allure results"):
        allure_html.generate_allure_html(tmp_path)


def test_failing_generator_is_reported_with_its_last_line(tmp_path, monkeypatch):
    monkeypatch.setenv("NIMWARDEN_ALLURE", "sh -c 'echo boom >&2; exit 3' allure")
    with pytest.raises(allure_html.AllureFailed, match="exited 3: boom"):
        allure_html.generate_allure_html(_results(tmp_path))


def test_generator_that_writes_no_index_is_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("NIMWARDEN_ALLURE", "true")
    with pytest.raises(allure_html.AllureFailed, match="exited 0"):
        allure_html.generate_allure_html(_results(tmp_path))
