"""The sweep of labs left by an interrupted test run (tests/lab_dirs.py), with real processes: an owner killed
with SIGKILL (no teardown), the process its lab started still running with the lab's directory on its command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nimwarden.lab.procs import running
from tests import lab_dirs

ROOT = Path(__file__).resolve().parents[2]

# The owner: makes a marked lab directory, starts a long-lived "lab process" naming it (as tritonserver's
# --model-repository does), prints both and waits to be killed.
OWNER = """
import subprocess, sys, time
from pathlib import Path
from tests import lab_dirs
d = lab_dirs.make("nimwarden-lab-", 0o755, root=Path(sys.argv[1]))
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(d / "model_repository")],
                         start_new_session=True)
print(d, child.pid, flush=True)
time.sleep(300)
"""


def _start_owner(root: Path) -> tuple[subprocess.Popen, Path, int]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER, str(root)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    directory, child = proc.stdout.readline().split()
    return proc, Path(directory), int(child)


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not running(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_killed_runs_lab_is_taken_down_and_removed(tmp_path):
    owner, directory, child = _start_owner(tmp_path)
    try:
        assert lab_dirs.stale(tmp_path) == []  # its owner runs: not stale
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        assert lab_dirs.stale(tmp_path) == [directory]
        lines = []
        assert lab_dirs.sweep(tmp_path, log=lines.append) == [directory]
        assert _gone(child), "the lab's process still runs after the sweep"
        assert not directory.exists()
        assert len(lines) == 1 and str(directory) in lines[0] and "1 processes stopped" in lines[0]
    finally:
        for pid in (owner.pid, child):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_live_owners_lab_and_unmarked_directories_are_left_alone(tmp_path):
    mine = lab_dirs.make("nimwarden-kube-", root=tmp_path)  # this process owns it
    unmarked = tmp_path / "nimwarden-lab-abc123"  # `nimwarden lab up`'s own directory: no owner file
    unmarked.mkdir()
    (unmarked / "state.json").write_text("{}")
    reused = lab_dirs.make("nimwarden-lab-", root=tmp_path)  # a live pid, but another process's start time
    pid, start = (reused / lab_dirs.OWNER_FILE).read_text().split()
    (reused / lab_dirs.OWNER_FILE).write_text(f"{pid} {int(start) - 1}\n")
    garbled = lab_dirs.make("nimwarden-perf-", root=tmp_path)
    (garbled / lab_dirs.OWNER_FILE).write_text("not a pid\n")  # unreadable: counted alive, never swept
    assert lab_dirs.stale(tmp_path) == [reused]
    assert lab_dirs.sweep(tmp_path, log=lambda *_: None) == [reused]
    assert mine.is_dir() and unmarked.is_dir() and garbled.is_dir() and not reused.exists()
