"""A forked child that hands its work back through a pipe: how the in-process runner uses the machine's second
core (the manifests read beside start-up, :mod:`nimwarden.k8s.beside`; half the cases judged,
:func:`nimwarden.runner.judge_all`). Forked only where the process has no threads: the runner probes nothing."""

from __future__ import annotations

import os
import sys


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def fork_piped() -> tuple[int, int] | None:
    """Fork, with a pipe from the child to the parent and the standard streams flushed first (nothing buffered is
    written twice). Returns (0, the pipe's write end) in the child, (the child's pid, the read end) in the parent,
    or None where fork is missing or fails (nothing was started)."""
    if not hasattr(os, "fork"):
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        return None
    if pid == 0:
        os.close(read)
        return 0, write
    os.close(write)
    return pid, read
