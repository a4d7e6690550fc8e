"""The in-process runner says what it is doing on a long offline audit (nimwarden.runner._progress)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nimwarden import runner
from tests import corpus

ROOT = Path(__file__).resolve().parents[2]


def test_progress_follows_the_terminal_and_the_switch(monkeypatch, capsys):
    monkeypatch.delenv("NIMWARDEN_PROGRESS", raising=False)
    runner._progress(10**6)("x")  # not a terminal (captured): nothing
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    runner._progress(runner.PROGRESS_FROM - 1)("small")  # a terminal, but a run of a second: nothing
    runner._progress(runner.PROGRESS_FROM)("large")
    monkeypatch.setenv("NIMWARDEN_PROGRESS", "0")
    runner._progress(10**6)("off")
    monkeypatch.setenv("NIMWARDEN_PROGRESS", "1")
    runner._progress(1)("on")
    assert capsys.readouterr().out == "nimwarden: large\nnimwarden: on\n"


def _audit(tmp_path: Path, **env: str) -> str:
    profile = corpus.one_pod_profile(tmp_path)
    environ = {k: v for k, v in os.environ.items() if k != "NIMWARDEN_PROGRESS"} | env
    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "audit", "--target", str(profile), "--reports-dir",
                           str(tmp_path / f"r{len(env)}")], capture_output=True, text=True, timeout=120, cwd=ROOT, env=environ)
    assert proc.returncode in (0, 1, 3), proc.stdout + proc.stderr
    return proc.stdout


def test_an_offline_audit_says_each_phase_when_asked(tmp_path):
    out = _audit(tmp_path, NIMWARDEN_PROGRESS="1").splitlines()
    said = [line for line in out if line.startswith("nimwarden: ")]
    assert len(said) == 2, out
    assert "Kubernetes object(s) read" in said[0] and "judging" in said[0] and "writing the reports" in said[1]
    assert out.index(said[1]) < next(i for i, line in enumerate(out) if "controls judged in-process" in line)
    assert not [line for line in _audit(tmp_path).splitlines() if line.startswith("nimwarden: ")]  # a log: nothing
