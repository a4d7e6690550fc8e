"""Reading the manifests (or a snapshot) in a second process, beside the rest of start-up.

An offline audit reads its whole tree before it judges anything, on one core, while the machine's other
core waits: 0.22 s of a 2-second audit of 200 workloads. Nothing the runner does before judging (importing
the suites, building the cases and asking which apply) needs the objects, so a forked child reads them and
hands them back, pickled; the parent builds its cases meanwhile.

The two read one plan of files from both ends: the child from the first file on, the runner, once its cases
are built, from the last file back, until they meet (each says in a shared page which file it is at: how far
the child got depends on the machine and the size, not on a fixed share). The child pickles what it read as it
goes, into an anonymous file, so that once they meet only its last few files are left to hand back. The objects
of each file are what reading it alone gives; the apply units, the "defined twice" checks and the index are made
from all of them, in the files' order, as before. A file both happened to read is the same objects either way,
and a file neither read (a child that died) is read by the runner: the shared page makes it faster, never
different.

The command line starts that child before it even loads the profile (:func:`start_early`: the child looks at
the profile's ``kubernetes:`` as plain YAML), so it reads while the profile loads too. Its objects are used only
where the loaded profile plans the very files, with the same namespaces, that it read; otherwise they are
dropped and the tree is read here.

Fail closed and same as before: a child that fails for any reason (a broken manifest included) hands back
nothing, and the parent reads the source itself, where a broken manifest is the same one-line error
(exit 2) it always was. The child hands back the secrets it learnt, as a forked judge does. Only where
fork exists, two CPUs are there, and the runner has no threads (the in-process runner probes nothing).
"""
from __future__ import annotations

import mmap
import os
import pickle
import signal
import struct
import time
from typing import Any

from nimwarden import forked, redact
from nimwarden.k8s import source as k8s
from nimwarden.paths import profile_path

# Below this many bytes of manifests, reading them costs about what a second process and handing the objects
# back cost: the chart corpus (23 files, 0.3 MiB) is read here; 200 rendered workloads are 1 MiB.
BESIDE_FROM = 1 << 19
CHUNK = 256 << 10  # the child pickles what it read every this many bytes of manifests
_NOWHERE = 1 << 62  # the runner's position before it starts reading


def _entries(section: Any) -> tuple:
    entries = getattr(section, "manifest_entries", None)  # (path, namespace) pairs, as the reading takes them
    return tuple(entries()) if callable(entries) else tuple((p, None) for p in section.paths)


class _Plan(dict):
    """Objects read by file (what :func:`load_manifests` takes as ``read_already``) with the plan they were read by,
    so that it is not made again (``plan``: :func:`manifest_plan`'s answer)."""

    plan: Any = None


def _plan(entries: Any) -> tuple[Any, list, list]:
    """(manifest_plan's answer, its files with their namespaces, their sizes)."""
    from nimwarden.k8s.manifests import manifest_plan

    plan = manifest_plan(entries)
    files = list(plan[1].items())
    return plan, files, [os.stat(f).st_size for f, _ in files]


class _Ends:
    """Where each reader is in the plan, in a page both processes share: [0] the next file the child starts,
    [1] the last file the runner started (reading back from the end)."""

    def __init__(self) -> None:
        self.page = mmap.mmap(-1, 16)
        self.set(0, 0)
        self.set(1, _NOWHERE)

    def get(self, i: int) -> int:
        return struct.unpack_from("q", self.page, 8 * i)[0]

    def set(self, i: int, value: int) -> None:
        struct.pack_into("q", self.page, 8 * i, value)


def _worth(size: int) -> bool:
    """Whether ``size`` bytes are worth a second process (always with ``NIMWARDEN_JUDGE_PROCESSES=2``: the tests)."""
    return size >= BESIDE_FROM or os.environ.get("NIMWARDEN_JUDGE_PROCESSES") == "2"


def _scratch() -> int:
    """An anonymous file the child writes its pickles to (in memory where the system has memfd)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("nimwarden-beside", getattr(os, "MFD_CLOEXEC", 0))
    import tempfile

    with tempfile.TemporaryFile() as f:
        return os.dup(f.fileno())


def _fork() -> tuple[int, int, int, _Ends] | None:
    """(pid, the go pipe's end, the scratch file, the shared ends), or None (nothing was started)."""
    wanted = os.environ.get("NIMWARDEN_JUDGE_PROCESSES", "")  # 1: never fork; 2: fork whatever the size (the tests)
    if wanted == "1" or (wanted != "2" and forked.cpus() < 2):
        return None
    ends, scratch = _Ends(), _scratch()
    started = forked.fork_piped(force=wanted == "2")
    if started is None:
        os.close(scratch)
        return None
    return started[0], started[1], scratch, ends


def start(section: Any, timeout_s: float = 10.0) -> _Reading | None:
    """Start reading ``section`` (a profile's ``kubernetes:`` of source manifests or snapshot) in a forked child:
    a manifests tree from its first file on, a snapshot whole. Returns the reading (see :class:`_Reading`: called,
    it reads from the other end here and keeps the state in this process's cache; its ``cancel()`` stops a child
    never joined). Returns None, and starts nothing, where the source is not offline, is already read, fork is
    missing, one CPU is there, the files hold less than ``BESIDE_FROM`` bytes, or
    ``NIMWARDEN_JUDGE_PROCESSES=1`` (one process, always; ``=2`` reads beside whatever the size)."""
    if section.source not in ("manifests", "snapshot") or k8s.cached(section) is not None:
        return None
    from nimwarden.errors import UsageError

    try:
        plan, files, sizes = _plan(_entries(section)) if section.source == "manifests" else (None, [], [])
        size = sum(sizes) if section.source == "manifests" else sum(os.stat(p).st_size for p in section.paths)
    except (OSError, ValueError, UsageError):  # the reading here says why
        return None
    if not _worth(size) or (section.source == "manifests" and not files):
        return None
    started = _fork()
    if started is None:
        return None
    pid, go, scratch, ends = started
    if pid == 0:  # the child: read, hand back, leave without the parent's exit handlers
        os.close(go)
        if section.source == "manifests":
            _front(files, sizes, getattr(section, "default_namespace", None), ends, scratch)
        _child(scratch, lambda out: out.dump(_snapshot(section, timeout_s)))
    os.close(go)
    return _Reading(section, pid, scratch, ends, plan, files, timeout_s)


def _snapshot(section: Any, timeout_s: float) -> Any:
    read = k8s.cluster_state(section, timeout_s)
    if read.observation is None:  # an error is read again by the parent, which says it
        raise RuntimeError("not read")
    return read


def _front(files: list, sizes: list, default_namespace: str | None, ends: _Ends, scratch: int, plan: Any = None) -> None:
    """The child's reading of a manifests plan: from the first file on, until the runner's end; never returns."""
    from nimwarden.k8s import manifests

    def read(out: pickle.Pickler) -> None:
        chunk, pending = {}, 0
        for j, (file, namespace) in enumerate(files):
            if j >= ends.get(1):
                break
            ends.set(0, j + 1)
            chunk.update(manifests.read_files([(file, namespace)], default_namespace))  # a broken file raises: said by the parent
            pending += sizes[j]
            if pending >= CHUNK:
                out.dump(chunk)
                chunk, pending = {}, 0
        out.dump(chunk)

    _child(scratch, read, plan)


def _child(scratch: int, reading: Any, plan: Any = None) -> None:
    """The child's whole life: ``reading(pickler)`` into the scratch file, then (``"end"``, plan, the secrets
    learnt, seconds); leave without the parent's exit handlers. Any failure exits 1: the parent reads the source."""
    code = 1
    try:
        before, t0 = redact.known(), time.perf_counter()
        with os.fdopen(scratch, "wb") as f:
            out = pickle.Pickler(f, protocol=pickle.HIGHEST_PROTOCOL)  # one memo: a string shared by files is written once
            reading(out)
            out.dump(("end", plan, sorted(redact.known() - before), time.perf_counter() - t0))
        code = 0
    except BaseException:  # noqa: BLE001 - any failure: the parent reads the source itself
        code = 1
    os._exit(code)


def start_early(profile: Any, no_gc: bool = False) -> _Early | None:
    """Start, before the profile is loaded, a child that reads the manifests the profile names (``kubernetes:
    {source: manifests, paths: […]}``, read here as plain YAML, paths resolved as the profile's schema resolves
    them) from the first file on. What it read is used only where the loaded profile plans the same files with the
    same namespaces (:meth:`_Early.adopt`); a profile it cannot read that simply (a snapshot, a path it does not
    understand) it leaves to :func:`start`, once the profile is loaded. ``no_gc``: the child reads without the
    cyclic collector (as the parent will)."""
    import stat

    try:
        if not stat.S_ISREG(os.stat(profile).st_mode):  # a pipe (`--target <(…)`) is read once, by the loader
            return None
    except (OSError, ValueError):
        return None
    started = _fork()
    if started is None:
        return None
    pid, go, scratch, ends = started
    if pid == 0:
        if no_gc:
            import gc

            gc.disable()
        try:
            entries, default_namespace = _peek(profile)
            _, files, sizes = _plan(entries)
            ok = bool(files) and _worth(sum(sizes))
        except BaseException:  # noqa: BLE001 - left to start(), once the profile is loaded
            ok = False
        os.write(go, b"R" if ok else b"N")
        os.close(go)
        if not ok:
            os._exit(0)
        _front(files, sizes, default_namespace, ends, scratch, (files, default_namespace))
    return _Early(pid, go, scratch, ends)


def _peek(profile: Any) -> tuple[list, str | None]:
    """The (path, namespace) entries and default namespace of a profile's manifests source, as the loaded profile's
    ``manifest_entries()`` gives them; ValueError where the profile is not that plain."""
    from nimwarden import yaml_bounded

    with open(profile, encoding="utf-8") as f:
        raw = yaml_bounded.load(f.read())
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
        entries.append((profile_path(path, profile), namespace or default))  # as the profile's schema resolves it
    return entries, default


class _Early:
    """A child started before the profile was loaded: :meth:`adopt` once it is, :meth:`cancel` where it never is."""

    def __init__(self, pid: int, go: int, scratch: int, ends: _Ends) -> None:
        self.pid, self.go, self.scratch, self.ends, self.done = pid, go, scratch, ends, False

    def adopt(self, section: Any, timeout_s: float = 10.0) -> _Reading | None:
        """The reading of the loaded profile's ``kubernetes`` section: this child's, when it reads, else
        :func:`start`'s (a child started now)."""
        answer = os.read(self.go, 1)  # the child's first byte comes once it has planned: milliseconds after the fork
        if answer != b"R" or section.source != "manifests":
            self.cancel()
            return start(section, timeout_s)
        self.done = True  # the reading's now
        os.close(self.go)
        from nimwarden.errors import UsageError

        try:
            plan, files, _ = _plan(_entries(section))
        except (OSError, ValueError, UsageError):  # the reading here says why; the child's objects are not used
            plan, files = None, []
        return _Reading(section, self.pid, self.scratch, self.ends, plan, files, timeout_s,
                        expect=(files, getattr(section, "default_namespace", None)))

    def cancel(self) -> None:
        """Stop the child and reap it, unless it was adopted."""
        if not self.done:
            self.done = True
            os.close(self.go)
            _stop(self.pid, self.scratch)


def _stop(pid: int, scratch: int) -> None:
    os.close(scratch)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    os.waitpid(pid, 0)


class _Reading:
    """The child reading a section: call it once the objects are needed, :meth:`cancel` where they never will be
    (the run stopped first: the child is stopped, not left reading)."""

    def __init__(self, section: Any, pid: int, scratch: int, ends: _Ends, plan: Any, files: list, timeout_s: float,
                 expect: Any = None) -> None:
        self.section, self.pid, self.scratch, self.ends, self.timeout_s, self.done = section, pid, scratch, ends, timeout_s, False
        self.plan, self.files = plan, files
        self.expect = expect  # the plan the child must have read (a child started early), else None

    def __call__(self) -> float | None:
        """Read from the last file back until the child's end, wait for the child, and keep the state made of both
        as this process's (as :func:`k8s.cluster_state` would have); return the seconds the reading took in both,
        or None (the child handed back nothing: the next :func:`k8s.cluster_state` reads the source here). A broken
        file read here is the one-line error it always was."""
        from nimwarden.k8s.manifests import read_files

        t0 = time.perf_counter()
        mine = _Plan()
        try:
            for i in range(len(self.files) - 1, -1, -1):
                if i < self.ends.get(0):
                    break
                self.ends.set(1, i)
                mine.update(read_files([self.files[i]], getattr(self.section, "default_namespace", None)))
        except BaseException:
            self.cancel()
            raise
        own = time.perf_counter() - t0
        self.done = True
        _, status = os.waitpid(self.pid, 0)
        read, end = _handed_back(self.scratch) if status == 0 else (None, None)
        if read is None or end is None or end[1] != self.expect:  # or an early child that read other files than planned
            return None
        for secret in end[2]:
            redact.register(secret)
        if self.section.source != "manifests":
            k8s.cached(self.section, keep=read[0])
            return end[3]
        t1 = time.perf_counter()
        both = _Plan()
        for chunk in read:
            both.update(chunk)
        both.update(mine)
        both.plan = self.plan
        k8s.cluster_state(self.section, self.timeout_s, read_already=both)  # the units, checks and index; the rest
        return end[3] + own + time.perf_counter() - t1

    def cancel(self) -> None:
        """Stop the child and reap it, unless it was joined."""
        if self.done:
            return
        self.done = True
        _stop(self.pid, self.scratch)


def _handed_back(scratch: int) -> tuple[list | None, tuple | None]:
    """(the pickles the child wrote, in order, its closing record) from the scratch file, which is closed."""
    items: list = []
    try:
        with os.fdopen(scratch, "rb") as f:
            f.seek(0)
            loading = pickle.Unpickler(f)
            while True:
                item = loading.load()
                if isinstance(item, tuple) and item and item[0] == "end":
                    return items, item
                items.append(item)
    except Exception:  # noqa: BLE001 - nothing (or nothing whole) came back: read here
        return None, None
