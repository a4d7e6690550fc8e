"""A forked child that hands its work back through a pipe: how the in-process runner uses the machine's second
core (the manifests read beside start-up, :mod:`nimwarden.k8s.beside`; half the cases judged,
:func:`nimwarden.runner.judge_all`; the report writers, :mod:`nimwarden.report`). Forked only where the process
runs one thread: the command line's runner probes nothing and starts none, but a program calling
``nimwarden.cli.main`` may have, and a child forked while another thread holds a lock would wait on it forever."""

from __future__ import annotations

import os
import sys
import threading


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def safe(force: bool = False) -> bool:
    """Whether this process may fork: fork exists and this is its only thread (``force``: whatever the threads;
    ``NIMWARDEN_JUDGE_PROCESSES=2``, the tests, whose session keeps idle server threads)."""
    return hasattr(os, "fork") and (force or threading.active_count() == 1)


def fork_piped(force: bool = False) -> tuple[int, int] | None:
    """Fork, with a pipe from the child to the parent and the standard streams flushed first (nothing buffered is
    written twice). Returns (0, the pipe's write end) in the child, (the child's pid, the read end) in the parent,
    or None where fork is missing or fails, or other threads run and ``force`` is not given (nothing was started:
    do the work here)."""
    if not safe(force):
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
