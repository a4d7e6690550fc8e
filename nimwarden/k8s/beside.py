"""Reading the manifests (or a snapshot) in a second process, beside the rest of start-up.

An offline audit reads its whole tree before it judges anything, on one core, while the machine's other
core waits: 0.22 s of a 2-second audit of 200 workloads. Nothing the runner does before judging (importing
the suites, building the cases and asking which apply) needs the objects, so a forked child reads them and
hands them back, pickled, when the runner first needs them; the parent builds its cases meanwhile. Handing
objects back costs about a third of reading them, and the runner is done with its cases before the child is
done reading, so of a manifests tree the child reads the first ``CHILD_SHARE`` of the bytes and the runner the
rest, then joins the two (the objects of each file are what reading it alone gives; the apply units, the
"defined twice" checks and the index are made from all of them, in the files' order, as before).

The command line starts that child before it even loads the profile (:func:`start_early`: the child looks at the
profile's ``kubernetes:`` as plain YAML), so it reads while the profile loads too, and takes the first
``EARLY_SHARE``. Its objects are used only where the loaded profile plans the very files, with the same
namespaces, that it read; otherwise they are dropped and the tree is read here.

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
from pathlib import Path
from typing import Any

from nimwarden import forked, redact
from nimwarden.k8s import source as k8s

# Below this many bytes of manifests, reading them costs about what a second process and handing the objects
# back cost: the chart corpus (23 files, 0.3 MiB) is read here; 200 rendered workloads are 1 MiB.
BESIDE_FROM = 1 << 19
# The child's share of a manifests tree's bytes: the rest is read by the runner once its cases are built (they take
# about as long as the child takes to read and pickle three quarters of the tree, at 200 workloads and at 2,000).
CHILD_SHARE = 0.75
# The share of a child started before the profile is loaded (:func:`start_early`): it reads while the profile loads too.
EARLY_SHARE = 0.9


def _entries(section: Any) -> tuple:
    entries = getattr(section, "manifest_entries", None)  # (path, namespace) pairs, as the reading takes them
    return tuple(entries()) if callable(entries) else tuple((p, None) for p in section.paths)


def _plan(section: Any, share: float = CHILD_SHARE) -> tuple[list, list, int]:
    """(the files the child reads, the files the runner reads, the bytes of all), each file with its namespace;
    ([], [], bytes) for a snapshot (read whole by the child); ([], [], 0) where the files cannot be listed (the
    reading says why, here)."""
    from nimwarden.errors import UsageError

    try:
        if section.source == "snapshot":
            return [], [], sum(os.stat(p).st_size for p in section.paths)
        return _split(_entries(section), share)
    except (OSError, ValueError, UsageError):
        return [], [], 0


def _split(entries: Any, share: float) -> tuple[list, list, int]:
    """(the files of the first ``share`` of the bytes, the rest, the bytes of all), each file with its namespace."""
    from nimwarden.k8s.manifests import manifest_plan

    _, namespace_of = manifest_plan(entries)
    sizes = [(f, ns, os.stat(f).st_size) for f, ns in namespace_of.items()]
    total, upto, cut = sum(n for _, _, n in sizes), 0, len(sizes)
    for i, (_, _, n) in enumerate(sizes):
        if upto >= total * share:
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
    started = forked.fork_piped(force=wanted == "2")
    if started is None:
        return None
    pid, fd = started
    if pid == 0:  # the child: read, send, leave without the parent's exit handlers
        _child(fd, lambda: _read(section, theirs, timeout_s))
    return _Reading(section, pid, fd, mine, timeout_s)


def _read(section: Any, theirs: list, timeout_s: float) -> Any:
    if section.source == "manifests":  # a broken file raises: the parent reads it again, and says it
        from nimwarden.k8s.manifests import read_files

        return read_files(theirs, getattr(section, "default_namespace", None))
    read = k8s.cluster_state(section, timeout_s)
    if read.observation is None:  # an error is read again by the parent, which says it
        raise RuntimeError("not read")
    return read


def _child(fd: int, reading: Any, plan: Any = None) -> None:
    """The child's whole life: read, send (plan, what was read, the secrets learnt, seconds) pickled, leave without
    the parent's exit handlers. Any failure sends nothing: the parent reads the source itself."""
    code = 1
    try:
        before, t0 = redact.known(), time.perf_counter()
        read = reading()
        data = pickle.dumps((plan, read, sorted(redact.known() - before), time.perf_counter() - t0), protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        code = 0
    except BaseException:  # noqa: BLE001 - any failure: the parent reads the source itself
        code = 1
    os._exit(code)


def start_early(profile: Any, no_gc: bool = False) -> _Early | None:
    """Start, before the profile is loaded, a child that reads the first ``EARLY_SHARE`` of the manifests the
    profile names (``kubernetes: {source: manifests, paths: […]}``, read here as plain YAML, paths resolved as the
    profile's schema resolves them). What it read is used only where the loaded profile plans the same files with
    the same namespaces (:meth:`_Early.adopt`); a profile it cannot read that simply (a snapshot, a path it does not
    understand) it leaves to :func:`start`, once the profile is loaded. ``no_gc``: the child reads without the
    cyclic collector (as the parent will)."""
    import stat

    wanted = os.environ.get("NIMWARDEN_JUDGE_PROCESSES", "")
    if wanted == "1" or (wanted != "2" and forked.cpus() < 2):
        return None
    try:
        if not stat.S_ISREG(os.stat(profile).st_mode):  # a pipe (`--target <(…)`) is read once, by the loader
            return None
    except (OSError, ValueError):
        return None
    started = forked.fork_piped(force=wanted == "2")
    if started is None:
        return None
    pid, fd = started
    if pid == 0:
        if no_gc:
            import gc

            gc.disable()
        try:
            entries, default_namespace = _peek(profile)
            theirs, _, size = _split(entries, EARLY_SHARE)
            go = bool(theirs) and (wanted == "2" or size >= BESIDE_FROM)
        except BaseException:  # noqa: BLE001 - left to start(), once the profile is loaded
            go = False
        os.write(fd, b"R" if go else b"N")
        if not go:
            os._exit(0)
        from nimwarden.k8s.manifests import read_files

        _child(fd, lambda: read_files(theirs, default_namespace), (theirs, default_namespace))
    return _Early(pid, fd)


def _peek(profile: Any) -> tuple[list, str | None]:
    """The (path, namespace) entries and default namespace of a profile's manifests source, as the loaded profile's
    ``manifest_entries()`` gives them; ValueError where the profile is not that plain."""
    import yaml

    with open(profile, encoding="utf-8") as f:
        raw = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    section = raw.get("kubernetes") if isinstance(raw, dict) else None
    if not isinstance(section, dict) or section.get("source") != "manifests" or not isinstance(section.get("paths"), list):
        raise ValueError("not a manifests source")
    default = section.get("default_namespace")
    if default is not None and not isinstance(default, str):
        raise ValueError("default_namespace")
    entries = []
    for entry in section["paths"]:
        path, namespace = (entry, None) if isinstance(entry, str) else (entry.get("path"), entry.get("namespace")) if isinstance(entry, dict) else (None, None)
        if not isinstance(path, str) or not path or "\0" in path or not isinstance(namespace, (str, type(None))):
            raise ValueError("paths")
        resolved = Path(os.path.expanduser(path))
        if not resolved.is_absolute():
            resolved = (Path(profile).parent / resolved).resolve()
        entries.append((resolved, namespace or default))
    return entries, default


class _Early:
    """A child started before the profile was loaded: :meth:`adopt` once it is, :meth:`cancel` where it never is."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd, self.done = pid, fd, False

    def adopt(self, section: Any, timeout_s: float = 10.0) -> _Reading | None:
        """The reading of the loaded profile's ``kubernetes`` section: this child's, when it reads, else
        :func:`start`'s (a child started now)."""
        answer = os.read(self.fd, 1)  # the child's first byte comes once it has planned: milliseconds after the fork
        if answer != b"R" or section.source != "manifests":
            self.cancel()
            return start(section, timeout_s)
        self.done = True  # the reading's now
        theirs, mine, _ = _plan(section, EARLY_SHARE)
        return _Reading(section, self.pid, self.fd, mine, timeout_s, expect=(theirs, getattr(section, "default_namespace", None)))

    def cancel(self) -> None:
        """Stop the child and reap it, unless it was adopted."""
        if not self.done:
            self.done = True
            _stop(self.pid, self.fd)


def _stop(pid: int, fd: int) -> None:
    os.close(fd)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    os.waitpid(pid, 0)


class _Reading:
    """The child reading a section: call it once the objects are needed, :meth:`cancel` where they never will be
    (the run stopped first: the child is not left waiting on a pipe nobody reads)."""

    def __init__(self, section: Any, pid: int, fd: int, mine: list, timeout_s: float, expect: Any = None) -> None:
        self.section, self.pid, self.fd, self.mine, self.timeout_s, self.done = section, pid, fd, mine, timeout_s, False
        self.expect = expect  # the plan the child must have read (a child started early), else None

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
                plan, read, learnt, seconds = pickle.load(pipe)
            except Exception:  # noqa: BLE001 - nothing (or nothing whole) came back: read here
                plan = read = None
        _, status = os.waitpid(self.pid, 0)
        if read is None or status != 0 or plan != self.expect:  # or an early child that read other files than planned
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
        _stop(self.pid, self.fd)
