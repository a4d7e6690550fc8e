"""Progress on long runs: a line per family/deployment change, on the controller only, quiet under -q
or off a tty, and harmless to pytest's own output and to xdist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from nimwarden import cli
from nimwarden.progress import Progress, enabled, where

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "discovery"
DEPLOYMENTS = ("triton", "triton-b", "llama")


class Terminal:
    def __init__(self):
        self.lines: list[str] = []

    def ensure_newline(self):
        pass

    def write_line(self, line):
        self.lines.append(line)


def _progress(verbose=0, tty=True, env=None, monkeypatch=None, clock=None, numprocesses=None):
    if monkeypatch is not None:
        monkeypatch.delenv("NIMWARDEN_PROGRESS", raising=False)
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
    terminal = Terminal()
    config = SimpleNamespace(option=SimpleNamespace(verbose=verbose, numprocesses=numprocesses),
                             pluginmanager=SimpleNamespace(get_plugin=lambda name: terminal, hasplugin=lambda name: bool(numprocesses)))
    state = SimpleNamespace(target=SimpleNamespace(deployments=[SimpleNamespace(name=n) for n in DEPLOYMENTS]),
                            collected=[f"suites/test_ports.py::t{i}[triton]" for i in range(6)])
    ticks = iter(clock or range(0, 1000, 5))
    return Progress(config, state, clock=lambda: next(ticks), isatty=lambda: tty), terminal


def test_where_reads_family_and_deployment_from_the_node_id():
    assert where("suites/test_triton_api.py::test_x[triton-b-http]", DEPLOYMENTS) == ("triton-api", "triton-b")
    assert where("suites/test_ports.py::test_y[triton]", DEPLOYMENTS) == ("ports", "triton")
    assert where("suites/test_rbac.py::test_wide", DEPLOYMENTS) == ("rbac", "target-wide")
    assert where("tests/unit/test_x.py::t", DEPLOYMENTS) is None


def test_a_line_per_change_with_controls_left(monkeypatch):
    p, term = _progress(monkeypatch=monkeypatch)
    ids = ["suites/test_ports.py::a[triton]", "suites/test_ports.py::b[triton]", "suites/test_tls.py::a[llama]",
           "suites/test_tls.py::b[llama]"]
    for nodeid in ids:
        p.pytest_runtest_logstart(nodeid, None)
        p.pytest_runtest_logfinish(nodeid, None)
    assert term.lines == ["nimwarden: probing ports on triton — 0 of 6 controls done, 6 left",
                          "nimwarden: probing tls on llama — 2 of 6 controls done, 4 left"]


def test_interleaved_workers_are_throttled_within_a_family(monkeypatch):
    p, term = _progress(monkeypatch=monkeypatch, clock=[0.0, 0.2, 1.5])  # asked only when the place changes
    for nodeid in ["suites/test_tls.py::a[triton]", "suites/test_tls.py::a[llama]", "suites/test_tls.py::b[triton]",
                   "suites/test_tls.py::c[llama]"]:
        p.pytest_runtest_logstart(nodeid, None)
    assert [line.split(" —")[0] for line in term.lines] == ["nimwarden: probing tls on triton", "nimwarden: probing tls on llama"]


def test_under_xdist_any_change_waits_five_seconds(monkeypatch):
    p, term = _progress(monkeypatch=monkeypatch, clock=[0.0, 1.0, 2.0, 6.0], numprocesses=2)
    for nodeid in ["suites/test_tls.py::a[triton]", "suites/test_ports.py::a[llama]", "suites/test_rbac.py::a[triton]",
                   "suites/test_host.py::a[llama]"]:
        p.pytest_runtest_logstart(nodeid, None)
    assert [line.split(" —")[0] for line in term.lines] == ["nimwarden: probing tls on triton", "nimwarden: probing host on llama"]


@pytest.mark.parametrize("verbose, tty, env, on", [
    (0, True, {}, True), (-1, True, {}, False), (0, False, {}, False),
    (0, False, {"NIMWARDEN_PROGRESS": "1"}, True), (0, True, {"NIMWARDEN_PROGRESS": "0"}, False),
    (-1, True, {"NIMWARDEN_PROGRESS": "1"}, False),
])
def test_quiet_under_q_and_off_a_tty(monkeypatch, verbose, tty, env, on):
    p, term = _progress(verbose, tty, env, monkeypatch)
    assert enabled(p.config, lambda: tty) is on
    p.pytest_runtest_logstart("suites/test_ports.py::a[triton]", None)
    assert bool(term.lines) is on


@pytest.mark.parametrize("xdist", [False, True])
def test_a_real_audit_prints_progress_and_pytest_output_stays_whole(tmp_path, xdist):
    profile = tmp_path / "p.yaml"
    assert cli.main(["discover", "--manifests", str(FIXTURE), "--out", str(profile)]) == 0
    env = dict(os.environ, PYTHONPATH=str(ROOT), NIMWARDEN_PROGRESS="1")
    env.pop("NIMWARDEN_RUN_DIR", None)
    extra = ["-n", "2"] if xdist else []
    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "audit", "--target", str(profile), "--reports-dir",
                           str(tmp_path / "reports"), "--", "-p", "no:randomly", *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 1, out[-2000:] + proc.stderr[-2000:]
    lines = [line for line in out.splitlines() if "nimwarden: probing " in line]
    assert all(line.startswith("nimwarden: probing ") for line in lines), lines  # a line of its own, not glued to dots
    assert lines
    if not xdist:  # one suite after the other: every family announces itself
        from nimwarden.catalog import FAMILIES

        assert {line.split()[2] for line in lines} == set(FAMILIES)
    assert all(" controls done, " in line for line in lines)
    assert re.search(r"=+ \d+ failed, \d+ passed, \d+ skipped.* in [\d.]+s", out)  # pytest's own summary line, whole
    assert "exit status 1" in out
    if xdist:
        assert "2 workers" in out or "gw0" in out
