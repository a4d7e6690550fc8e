"""Directories of the labs the tests start, each marked with the test process that owns it, and the sweep of
labs whose owner is gone.

A test run that is killed (a CI job cancelled, a laptop's Ctrl-C twice, the OOM killer) never runs its fixtures'
teardown: its tritonservers, Ray heads, NeMo Platform, etcd and API server keep running, its network namespaces
and port-forwards stay, and the next run competes with them for ports, CPU and memory. Each lab directory a test
makes holds an owner file (the pid and the kernel's start time of the process, against pid reuse); at the start of
a session, every such directory whose owner no longer runs is taken down the way the lab takes down a crashed one
(``nimwarden.lab.down``: by its state file, by the processes naming the directory, by the namespaces' tag) and
removed. A directory without the owner file (``nimwarden lab up``'s own, another tool's) is never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

OWNER_FILE = ".nimwarden-test-owner"
PREFIX = "nimwarden-"


def make(prefix: str, mode: int | None = None, root: Path | None = None) -> Path:
    """A new directory under ``root`` (the temporary root; ``prefix`` must start with ``nimwarden-``), marked as this
    process's."""
    from nimwarden.lab.procs import process_start_time

    if not prefix.startswith(PREFIX):
        raise ValueError(f"a test lab's directory prefix starts with {PREFIX!r}: {prefix!r}")
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    if mode is not None:
        os.chmod(directory, mode)
    (directory / OWNER_FILE).write_text(f"{os.getpid()} {process_start_time(os.getpid())}\n")
    return directory


def owner_alive(directory: Path) -> bool:
    """Whether the process that made ``directory`` still runs (an unreadable owner file counts as alive)."""
    from nimwarden.lab.procs import process_start_time, running

    try:
        pid_text, start_text = (directory / OWNER_FILE).read_text().split()
        pid, start = int(pid_text), int(start_text)
    except (OSError, ValueError):
        return True
    return running(pid) and process_start_time(pid) == start


def stale(root: Path | None = None) -> list[Path]:
    """Marked lab directories under ``root`` (the temporary root) whose owner is gone."""
    root = Path(root or tempfile.gettempdir())
    return sorted(p.parent for p in root.glob(f"{PREFIX}*/{OWNER_FILE}") if not owner_alive(p.parent))


def sweep(root: Path | None = None, log=print) -> list[Path]:
    """Take down and remove every stale lab directory under ``root``; returns those it removed."""
    from nimwarden import lab

    removed = []
    for directory in stale(root):
        stopped = lab.down(directory, log=lambda *_: None)
        shutil.rmtree(directory, ignore_errors=True)
        log(f"tests: removed the lab left by an interrupted run in {directory} ({stopped} processes stopped)")
        removed.append(directory)
    return removed
