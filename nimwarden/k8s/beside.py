"""Reading the manifests (or a snapshot) in a second process, beside the rest of start-up.

An offline audit reads its whole tree before it judges anything, on one core, while the machine's other
core waits: 0.22 s of a 2-second audit of 200 workloads. Nothing the runner does before judging (importing
the suites, building the cases and asking which apply) needs the objects, so a forked child reads them and
hands the state back, pickled, when the runner first needs it; the parent builds its cases meanwhile.

Fail closed and same as before: a child that fails for any reason (a broken manifest included) hands back
nothing, and the parent reads the source itself, where a broken manifest is the same one-line error
(exit 2) it always was. The child hands back the secrets it learnt, as a forked judge does. Only where
fork exists, two CPUs are there, and the runner has no threads (the in-process runner probes nothing).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import time
from typing import Any

from nimwarden import redact
from nimwarden.k8s import source as k8s


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# Below this many bytes of manifests, reading them costs about what a second process and handing the objects
# back cost: the chart corpus (23 files, 0.3 MiB) is read here; 200 rendered workloads are 1 MiB.
BESIDE_FROM = 1 << 19


def _size(section: Any) -> int:
    """The bytes the section's files hold (0 where they cannot be listed: the reading says why, here)."""
    from nimwarden.errors import UsageError
    from nimwarden.k8s.manifests import manifest_files

    try:
        if section.source == "snapshot":
            return sum(os.stat(p).st_size for p in section.paths)
        entries = getattr(section, "manifest_entries", None)  # (path, namespace) pairs, as the reading takes them
        pairs = tuple(entries()) if callable(entries) else tuple((p, None) for p in section.paths)
        return sum(os.stat(p).st_size for p, _ in manifest_files(pairs))
    except (OSError, ValueError, UsageError):
        return 0


def start(section: Any, timeout_s: float = 10.0) -> _Reading | None:
    """Start reading ``section`` (a profile's ``kubernetes:`` of source manifests or snapshot) in a forked child.
    Returns the reading: called, it waits for the child, keeps what it read in this process's cache (as
    :func:`k8s.cluster_state` would have), and returns the seconds the reading took there (None: the child
    handed back nothing, and the next :func:`k8s.cluster_state` reads the source here); its ``cancel()`` stops
    a child never joined. Returns None, and starts
    nothing, where the source is not offline, is already read, fork is missing, one CPU is there, the files
    hold less than ``BESIDE_FROM`` bytes, or ``NIMWARDEN_JUDGE_PROCESSES=1`` (one process, always; ``=2``
    reads beside whatever the size)."""
    if section.source not in ("manifests", "snapshot") or k8s.cached(section) is not None:
        return None
    wanted = os.environ.get("NIMWARDEN_JUDGE_PROCESSES", "")  # 1: never fork; 2: fork whatever the size (the tests)
    if not hasattr(os, "fork") or wanted == "1" or (wanted != "2" and (_cpus() < 2 or _size(section) < BESIDE_FROM)):
        return None
    before = redact.known()
    sys.stdout.flush()
    sys.stderr.flush()
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        return None
    if pid == 0:  # the child: read, send, leave without the parent's exit handlers
        code = 1
        try:
            os.close(read)
            t0 = time.perf_counter()
            attempt = k8s.cluster_state(section, timeout_s)
            if attempt.observation is not None:  # an error is read again by the parent, which says it
                data = pickle.dumps((attempt, sorted(redact.known() - before), time.perf_counter() - t0),
                                    protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write, "wb") as out:
                    out.write(data)
                code = 0
        except BaseException:  # noqa: BLE001 - any failure: the parent reads the source itself
            code = 1
        os._exit(code)
    os.close(write)
    return _Reading(section, pid, read)


class _Reading:
    """The child reading a section: :meth:`join` once the objects are needed, :meth:`cancel` where they never will
    be (the run stopped first: the child is not left waiting on a pipe nobody reads)."""

    def __init__(self, section: Any, pid: int, fd: int) -> None:
        self.section, self.pid, self.fd, self.done = section, pid, fd, False

    def __call__(self) -> float | None:
        """Wait for the child; keep what it read as this process's state and return the seconds the reading took
        there, or None (it handed back nothing: the next :func:`k8s.cluster_state` reads the source here)."""
        self.done = True
        with os.fdopen(self.fd, "rb") as pipe:
            try:
                attempt, learnt, seconds = pickle.load(pipe)
            except Exception:  # noqa: BLE001 - nothing (or nothing whole) came back: read here
                attempt = None
        _, status = os.waitpid(self.pid, 0)
        if attempt is None or status != 0:
            return None
        for secret in learnt:
            redact.register(secret)
        k8s.cached(self.section, keep=attempt)
        return seconds

    def cancel(self) -> None:
        """Stop the child and reap it, unless it was joined."""
        if self.done:
            return
        self.done = True
        os.close(self.fd)
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(self.pid, 0)
