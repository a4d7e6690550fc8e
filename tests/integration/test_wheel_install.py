"""Installable anywhere (issue 25): a wheel built from the checkout, installed into a fresh virtualenv,
gives a working `nimwarden audit|discover|validate|schema` from a directory outside the checkout —
the suites, the catalog, the data tables and the report assets all come from the wheel.

The fresh virtualenv takes nimwarden only from the wheel (`pip install --no-deps`); its third-party
dependencies are the test environment's (a path to its site-packages, which holds no nimwarden code),
so the test needs no package index beyond the build backend. NIMWARDEN_WHEEL_FROM_INDEX=1 installs
the dependencies from the index instead, as `pipx install` would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
REPORTS = ("summary.json", "report.html", "junit.xml", "report.sarif", "oscal-assessment-results.json")


def _run(*argv, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ of a fresh virtualenv holding the wheel built from this checkout."""
    top = tmp_path_factory.mktemp("wheel")
    # from the files a clone has (tracked, and new ones not ignored): a build/ left in the checkout must not leak in
    files = _run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT).stdout.split("\0")
    clone = top / "clone"
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", top / "dist", clone, cwd=top)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (top / "dist").glob("nimwarden-*.whl")
    venv = top / "venv"
    made = _run(sys.executable, "-m", "venv", venv, cwd=top)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    if os.environ.get("NIMWARDEN_WHEEL_FROM_INDEX") == "1":
        got = _run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel, cwd=top, timeout=1200)
    else:
        site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=top).stdout.strip()
        Path(site, "test-env-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # a path line: its .pth files stay unread
        got = _run(python, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", wheel, cwd=top)
    assert got.returncode == 0, got.stderr[-3000:]
    return venv / "bin"


@pytest.fixture()
def elsewhere(tmp_path) -> tuple[Path, dict]:
    """A directory outside the checkout with a manifests-only profile, and an environment that cannot see the checkout."""
    (tmp_path / "rendered.yaml").write_text((ROOT / "targets" / "rendered" / "nim-llm.yaml").read_text())
    (tmp_path / "profile.yaml").write_text(
        "name: chart-review\nkubernetes: {source: manifests, paths: [rendered.yaml]}\n"
        "deployments:\n  - {name: nim-llm, kind: nim, expect: compliant, kubernetes: {namespace: nim, selector: {app.kubernetes.io/name: nim-llm}}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "NIMWARDEN_", "VIRTUAL_ENV"))}
    return tmp_path, {**env, "NIMWARDEN_PROGRESS": "0"}


def test_nimwarden_comes_from_the_wheel_with_its_suites(installed, elsewhere):
    cwd, env = elsewhere
    where = _run(installed / "python", "-c", "import nimwarden, nimwarden.cli as c; print(nimwarden.__file__); print(c.suites_dir())", cwd=cwd, env=env)
    package, suites = where.stdout.split()
    assert Path(package).is_relative_to(installed.parent) and not Path(package).is_relative_to(ROOT), where
    assert Path(suites) == Path(package).parent / "suites" and len(list(Path(suites).glob("test_*.py"))) == len(list((ROOT / "suites").glob("test_*.py")))


def test_an_installed_wheel_audits_a_manifests_profile_from_anywhere_and_writes_every_report(installed, elsewhere):
    cwd, env = elsewhere
    valid = _run(installed / "nimwarden", "validate", "--target", "profile.yaml", cwd=cwd, env=env)
    assert valid.returncode == 0 and "valid target 'chart-review'" in valid.stdout, valid.stderr
    audit = _run(installed / "nimwarden", "audit", "--target", "profile.yaml", "--reports-dir", "out", cwd=cwd, env=env)
    assert audit.returncode in (0, 1) and "Traceback" not in audit.stderr, audit.stdout[-2000:] + audit.stderr[-2000:]
    run = (cwd / "out" / "latest").resolve()
    for name in REPORTS:
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    assert any((run / "allure-results").glob("*-result.json"))
    summary = json.loads((run / "summary.json").read_text())
    families = {r["family"] for r in summary["results"]}
    assert {"pod-security", "secrets", "rbac", "network-policy"} <= families and summary["totals"]["pass"] > 0  # the catalog and judges came along


def test_an_installed_wheel_discovers_and_prints_the_schema(installed, elsewhere):
    cwd, env = elsewhere
    found = _run(installed / "nimwarden", "discover", "--manifests", "rendered.yaml", "--out", "found.yaml", cwd=cwd, env=env)
    assert found.returncode == 0 and (cwd / "found.yaml").is_file(), found.stderr
    schema = _run(installed / "nimwarden", "schema", cwd=cwd, env=env)
    assert schema.returncode == 0
    assert json.loads(schema.stdout) == json.loads((ROOT / "schemas" / "nimwarden-profile.schema.json").read_text())
    lab = _run(installed / "nimwarden", "audit", cwd=cwd, env=env)  # the lab is a checkout feature: one line, exit 2
    assert lab.returncode == 2 and "only from a checkout" in lab.stderr and len(lab.stderr.strip().splitlines()) == 1, lab.stderr
