"""The README's sample error lines are the real ones, and `nimwarden audit --help` says pytest arguments pass through.

Each sample line under "Target profiles" is produced here by a profile that makes that mistake,
through the real CLI, from a directory where the profile is `targets/staging.yaml` as in the README.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

BASE = {"name": "staging", "scope": ["10.0.0.0/8"],
        "deployments": [{"name": "triton-a", "kind": "triton", "expect": "compliant", "endpoints": {"http": "http://10.0.0.5:8000"}}]}


def _mistake(change) -> dict:
    import copy

    doc = copy.deepcopy(BASE)
    change(doc["deployments"][0])
    return doc


MISTAKES = [
    _mistake(lambda d: d.__setitem__("endpoinst", d.pop("endpoints"))),
    {**BASE, "options": {"tls": {"require": 5}}},  # issue 25: a type mistake in a family's section
    _mistake(lambda d: d.__setitem__("options", {"performance": {"concurrency": [1, "4"]}})),
    _mistake(lambda d: d.__setitem__("credentials", {"ngc": "nvapi-abcdefghijklmnop"})),
    _mistake(lambda d: d.__setitem__("endpoints", {"http": "10.0.0.5:8000"})),
    _mistake(lambda d: d.__setitem__("credentials", {"restricted_api": {"header": "admin-key", "env": "TRITON_ADMIN_KEY"}})),
]


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    from nimwarden.cli import main

    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's --help
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_readme_sample_error_lines_are_what_the_cli_prints(tmp_path, monkeypatch, capsys):
    samples = re.findall(r"^nimwarden: targets/staging\.yaml: .*$", README, re.M)
    assert len(samples) == len(MISTAKES)
    (tmp_path / "targets").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRITON_ADMIN_KEY", raising=False)
    printed = []
    for doc in MISTAKES:
        (tmp_path / "targets" / "staging.yaml").write_text(yaml.safe_dump(doc))
        code, _, err = _cli(capsys, "validate", "--target", "targets/staging.yaml")
        assert code == 2, err
        printed.append(err.strip())
    assert printed == samples


def test_audit_help_says_pytest_arguments_pass_through_with_two_examples(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    _, out, _ = _cli(capsys, "audit", "--help")
    assert "passes through to pytest" in out
    examples = re.findall(r"^\s+nimwarden audit --target \S+ (\S+)", out, re.M)
    assert examples == ["-k", "suites/test_gateway.py"], out
    assert "suites/test_<family>.py" in out


def test_readme_lists_every_endpoint_name_and_every_artifact():
    from nimwarden.schema.profile import ENDPOINT_NAMES

    line = next(ln for ln in README.splitlines() if ln.startswith("| `deployments[]` |"))
    endpoints = line[line.index("`endpoints` ("):line.index("`exposure`")]
    for name in ENDPOINT_NAMES:
        assert f"`{name}`" in endpoints, name
    for artifact in ("summary.json", "report.html", "junit.xml", "allure-results/", "report.sarif", "oscal-assessment-results.json"):
        assert f"| `{artifact}` |" in README, artifact
    assert "<reports-dir>/baselines/" in README and "Relative paths" in README and "suites/test_<family>.py" in README
