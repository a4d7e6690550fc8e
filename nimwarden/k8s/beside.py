"""Reading the manifests (or a snapshot) in a second process, beside the rest of start-up.

An offline audit reads its whole tree before it judges anything, on one core, while the machine's other
core waits: 0.22 s of a 2-second audit of 200 workloads. Nothing the runner does before judging (importing
the suites, building the cases and asking which apply) needs the objects, so a forked child reads them and
hands them back, pickled, when the runner first needs them; the parent builds its cases meanwhile. Handing
objects back costs about a third of reading them, and the runner is done with its cases before the child is
done reading, so of a manifests tree the child reads the first ``CHILD_SHARE`` of the bytes and the runner the
rest, then joins the two (the objects of each file are what reading it alone gives; the apply units, the
"defined twice" checks and the index are made from all of them, in the files' order, as before).

Fail closed and same as before: a child that fails for any reason (a broken manifest included) hands back
nothing, and the parent reads the source itself, where a broken manifest is the same one-line error
(exit 2) it always was. The child hands back the secrets it learnt, as a forked judge does. Only where
fork exists, two CPUs are there, and the runner has no threads (the in-process runner probes nothing).
"""
from __future__ import annotations

import os
import pickle
import signal
import time
from typing import Any

from nimwarden import forked, redact
from nimwarden.k8s import source as k8s

# Below this many bytes of manifests, reading them costs about what a second process and handing the objects
# back cost: the chart corpus (23 files, 0.3 MiB) is read here; 200 rendered workloads are 1 MiB.
BESIDE_FROM = 1 << 19
# The child's share of a manifests tree's bytes: the rest is read by the runner once its cases are built (they take
# about as long as the child takes to read and pickle three quarters of the tree, at 200 workloads and at 2,000).
CHILD_SHARE = 0.75


def _entries(section: Any) -> tuple:
    entries = getattr(section, "manifest_entries", None)  # (path, namespace) pairs, as the reading takes them
    return tuple(entries()) if callable(entries) else tuple((p, None) for p in section.paths)


def _plan(section: Any) -> tuple[list, list, int]:
    """(the files the child reads, the files the runner reads, the bytes of all), each file with its namespace;
    ([], [], bytes) for a snapshot (read whole by the child); ([], [], 0) where the files cannot be listed (the
    reading says why, here)."""
    from nimwarden.errors import UsageError
    from nimwarden.k8s.manifests import manifest_plan

    try:
        if section.source == "snapshot":
            return [], [], sum(os.stat(p).st_size for p in section.paths)
        _, namespace_of = manifest_plan(_entries(section))
        sizes = [(f, ns, os.stat(f).st_size) for f, ns in namespace_of.items()]
    except (OSError, ValueError, UsageError):
        return [], [], 0
    total, upto, cut = sum(n for _, _, n in sizes), 0, len(sizes)
    for i, (_, _, n) in enumerate(sizes):
        if upto >= total * CHILD_SHARE:
            cut = i
            break
        upto += n
    return [(f, ns) for f, ns, _ in sizes[:cut]], [(f, ns) for f, ns, _ in sizes[cut:]], total


def start(section: Any, timeout_s: float = 10.0) -> _Reading | None:
    """Start reading ``section`` (a profile's ``kubernetes:`` of source manifests or snapshot) in a forked child:
    the first ``CHILD_SHARE`` of a manifests tree's bytes, a snapshot whole. Returns the reading (see
    :class:`_Reading`: called, it reads the rest here and keeps the state in this process's cache; its
    ``cancel()`` stops a child never joined). Returns None, and starts nothing, where the source is not
    offline, is already read, fork is missing, one CPU is there, the files hold less than ``BESIDE_FROM``
    bytes, or ``NIMWARDEN_JUDGE_PROCESSES=1`` (one process, always; ``=2`` reads beside whatever the size)."""
    if section.source not in ("manifests", "snapshot") or k8s.cached(section) is not None:
        return None
    wanted = os.environ.get("NIMWARDEN_JUDGE_PROCESSES", "")  # 1: never fork; 2: fork whatever the size (the tests)
    if wanted == "1" or (wanted != "2" and forked.cpus() < 2):
        return None
    theirs, mine, size = _plan(section)
    if (wanted != "2" and size < BESIDE_FROM) or (section.source == "manifests" and not theirs):
        return None
    before = redact.known()
    started = forked.fork_piped(force=wanted == "2")
    if started is None:
        return None
    pid, fd = started
    if pid == 0:  # the child: read, send, leave without the parent's exit handlers
        code = 1
        try:
            t0 = time.perf_counter()
            if section.source == "manifests":  # a broken file raises: the parent reads it again, and says it
                from nimwarden.k8s.manifests import read_files

                read: Any = read_files(theirs, getattr(section, "default_namespace", None))
            else:
                read = k8s.cluster_state(section, timeout_s)
                if read.observation is None:  # an error is read again by the parent, which says it
                    os._exit(1)
            data = pickle.dumps((read, sorted(redact.known() - before), time.perf_counter() - t0), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            code = 0
        except BaseException:  # noqa: BLE001 - any failure: the parent reads the source itself
            code = 1
        os._exit(code)
    return _Reading(section, pid, fd, mine, timeout_s)


class _Reading:
    """The child reading a section: call it once the objects are needed, :meth:`cancel` where they never will be
    (the run stopped first: the child is not left waiting on a pipe nobody reads)."""

    def __init__(self, section: Any, pid: int, fd: int, mine: list, timeout_s: float) -> None:
        self.section, self.pid, self.fd, self.mine, self.timeout_s, self.done = section, pid, fd, mine, timeout_s, False

    def __call__(self) -> float | None:
        """Read this process's share, wait for the child's, and keep the state they make as this process's (as
        :func:`k8s.cluster_state` would have); return the seconds the reading took in both, or None (the child
        handed back nothing: the next :func:`k8s.cluster_state` reads the source here). A broken file of this
        process's share is the one-line error it always was."""
        from nimwarden.k8s.manifests import read_files

        t0 = time.perf_counter()
        try:
            mine = read_files(self.mine, getattr(self.section, "default_namespace", None)) if self.mine else {}
        except BaseException:
            self.cancel()
            raise
        own = time.perf_counter() - t0
        self.done = True
        with os.fdopen(self.fd, "rb") as pipe:
            try:
                read, learnt, seconds = pickle.load(pipe)
            except Exception:  # noqa: BLE001 - nothing (or nothing whole) came back: read here
                read = None
        _, status = os.waitpid(self.pid, 0)
        if read is None or status != 0:
            return None
        for secret in learnt:
            redact.register(secret)
        if self.section.source != "manifests":
            k8s.cached(self.section, keep=read)
            return seconds
        t1 = time.perf_counter()
        k8s.cluster_state(self.section, self.timeout_s, read_already={**read, **mine})  # the units, checks and index
        return seconds + own + time.perf_counter() - t1

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
