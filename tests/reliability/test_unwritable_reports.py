"""A folder the run must write that cannot take its files: one line naming it and exit status 2, never a traceback
nor "a bug in nimwarden" (exit 70), nor pytest's INTERNALERROR.

Real file systems, not mocks: a tmpfs mounted read-only, and a tmpfs too small for the reports (it fills up while
they are written), each mounted by the test in its own temporary folder (root only: skipped otherwise).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nimwarden.errors import Unwritable, check_writable_dir, unwritable
from tests.conftest import ROOT, run_audit

PROFILE = ROOT / "targets" / "helm-review.yaml"  # a manifests review: no probe, ~750 kB of reports


@pytest.fixture
def mount(tmp_path):
    """``mount(name, size_kib, read_only)``: a real tmpfs at ``tmp_path/name``, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = []

    def make(name: str, size_kib: int, read_only: bool = False) -> Path:
        where = tmp_path / name
        where.mkdir()
        options = f"size={size_kib}k" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield make
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _one_clear_line(proc: subprocess.CompletedProcess, *words: str) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "INTERNALERROR" not in out and "a bug in nimwarden" not in out, out[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("nimwarden: ")]
    assert lines and all(w in lines[-1] for w in words), proc.stderr[-2000:]
    return lines[-1]


@pytest.mark.parametrize("runner", ["in-process", "pytest"])
def test_a_read_only_reports_dir_is_one_line_before_anything_runs(mount, tmp_path, runner):
    read_only = mount("ro", 64, read_only=True)
    env = {"PYTEST_ADDOPTS": "-q"} if runner == "pytest" else {}  # PYTEST_ADDOPTS sends even a review through pytest
    proc, summary = run_audit(PROFILE, read_only / "reports", env=env, timeout=120)
    assert proc.returncode == 2 and summary is None
    line = _one_clear_line(proc, "--reports-dir", str(read_only / "reports"), "Read-only file system")
    assert "judged" not in proc.stdout and "passed" not in proc.stdout, (line, proc.stdout[-500:])  # nothing ran


def test_a_reports_dir_that_is_a_file_is_one_line(tmp_path):
    a_file = tmp_path / "reports"
    a_file.write_text("not a folder\n")
    proc, _ = run_audit(PROFILE, a_file, timeout=120)
    assert proc.returncode == 2 and a_file.read_text() == "not a folder\n"
    _one_clear_line(proc, "--reports-dir", str(a_file), "not a folder")


@pytest.mark.parametrize("runner", ["in-process", "pytest"])
def test_a_disk_that_fills_up_while_the_reports_are_written_is_exit_2_not_a_verdict(mount, runner):
    small = mount("small", 256)  # the write check passes; ~750 kB of reports do not fit
    env = {"PYTEST_ADDOPTS": "-q"} if runner == "pytest" else {}
    proc, _ = run_audit(PROFILE, small / "reports", env=env, timeout=180)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])  # never 0 or 1: the run's files are incomplete
    _one_clear_line(proc, "cannot write the reports in", str(small / "reports"), "No space left on device", "free some space")


def test_discover_into_a_read_only_folder_and_report_on_one_are_one_line(mount, tmp_path):
    read_only = mount("ro", 64, read_only=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    discover = subprocess.run([sys.executable, "-m", "nimwarden.cli", "discover", "--manifests", str(ROOT / "targets" / "rendered"),
                               "--out", str(read_only / "profile.yaml")], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert discover.returncode == 2
    _one_clear_line(discover, "cannot write the profile in", str(read_only / "profile.yaml"), "Read-only file system")
    # a run directory on a disk that has since gone read-only: `nimwarden report` cannot rewrite report.html there
    disk = mount("runs", 4096)
    proc, summary = run_audit(PROFILE, disk / "reports", timeout=120)
    assert proc.returncode == 1 and summary is not None
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    report = subprocess.run([sys.executable, "-m", "nimwarden.cli", "report", str(disk / "reports" / "latest")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, env=env)
    assert report.returncode == 2
    _one_clear_line(report, "cannot write", "Read-only file system")


def test_only_the_file_system_refusing_a_write_is_unwritable(tmp_path):
    assert unwritable(ValueError("no"), tmp_path) is None  # a bug stays a bug
    assert unwritable(FileNotFoundError(errno.ENOENT, "No such file or directory", "x"), tmp_path) is None
    full = unwritable(OSError(errno.ENOSPC, "No space left on device"), tmp_path, "the reports")
    assert isinstance(full, Unwritable) and str(full) == (f"cannot write the reports in {tmp_path}: No space left on device "
                                                          "(free some space, or give another folder)")
    named = unwritable(PermissionError(errno.EACCES, "Permission denied", "/r/x.json"), tmp_path)
    assert str(named) == "cannot write /r/x.json: Permission denied (give a folder nimwarden can write)"
    assert check_writable_dir(tmp_path / "a" / "b", "--reports-dir") == (tmp_path / "a" / "b").resolve()
    assert not (tmp_path / "a").exists()  # the write check leaves nothing behind: not its file, not the folders it made
    (tmp_path / "kept").mkdir()
    check_writable_dir(tmp_path / "kept", "--reports-dir")
    assert (tmp_path / "kept").is_dir() and not list((tmp_path / "kept").iterdir())
