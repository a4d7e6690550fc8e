"""In-container / host probes of a running tritonserver, through testinfra.

``local://`` against the lab; ``kubectl://POD?namespace=NS&container=C`` against a cluster (the
auditing identity then needs ``get`` on ``pods`` and ``create`` on ``pods/exec`` in that namespace —
grant it only to the auditor, never to the workload). Everything here reads: ``/proc/<pid>/status``,
``cmdline``, ``environ`` and ``stat`` of directories. Commands run under ``timeout``; every probe
returns an :class:`~nimwarden.outcome.Attempt`, so a refused read (no permission on
``/proc/<pid>/environ``) is an error, never a pass.

Values of environment variables never leave this module: only names and fingerprints
(:func:`nimwarden.redact.fingerprint`) of secret-looking ones.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import threading
from dataclasses import dataclass, field
from typing import Any

from nimwarden.outcome import Attempt, attempt
from nimwarden.redact import fingerprint

TIMEOUT_S = 20
MAX_ENTRIES = 5000  # a directory tree larger than this is reported as truncated, not as clean
DEFAULT_DIRECTORIES = {  # tritonserver's built-in defaults
    "backend-directory": "/opt/tritonserver/backends",
    "repoagent-directory": "/opt/tritonserver/repoagents",
    "cache-directory": "/opt/tritonserver/caches",
}
SECRET_ENV_NAME = re.compile(r"(?i)(^|_)(NGC_API_KEY|HF_TOKEN|API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|PRIVATE_KEY|ACCESS_KEY)($|_)")
SECRET_ENV_VALUE = re.compile(r"nvapi-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{10,}|-----BEGIN [A-Z ]*PRIVATE KEY-----|[a-z]+://[^/\s:@]+:[^/\s@]+@")


class HostProbeError(Exception):
    pass


def get_host(spec: str = "local://") -> Any:
    import testinfra

    return testinfra.get_host(spec)


def _run(host: Any, command: str) -> str:
    result = host.run(f"timeout {TIMEOUT_S} sh -c {shlex.quote(command)}")
    if result.rc == 124:
        raise HostProbeError(f"timed out after {TIMEOUT_S}s: {command}")
    if result.rc != 0:
        raise HostProbeError(f"{command}: exit {result.rc}: {(result.stderr or result.stdout).strip()[:200]}")
    return result.stdout


def _read(host: Any, path: str) -> bytes:
    result = host.run(f"timeout {TIMEOUT_S} cat {shlex.quote(path)}")
    if result.rc != 0:
        raise HostProbeError(f"cannot read {path}: {(result.stderr or '').strip()[:200] or f'exit {result.rc}'}")
    out = result.stdout_bytes if hasattr(result, "stdout_bytes") else result.stdout.encode()
    return out


# ----------------------------------------------------------------------------- process


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    uid: int  # effective uid
    gid: int  # effective gid
    groups: tuple[int, ...]
    cmdline: tuple[str, ...]
    cwd: str

    def flag(self, name: str) -> list[str]:
        """Every value of ``--name=value`` / ``--name value`` on the command line."""
        values, words = [], list(self.cmdline)
        for i, w in enumerate(words):
            if w.startswith(f"--{name}="):
                values.append(w.split("=", 1)[1])
            elif w == f"--{name}" and i + 1 < len(words) and not words[i + 1].startswith("--"):
                values.append(words[i + 1])
        return values

    def evidence(self) -> dict[str, Any]:
        # the command line can carry a restricted-API key: keep flag names only
        return {"pid": self.pid, "uid": self.uid, "gid": self.gid, "groups": list(self.groups),
                "flags": sorted({w.split("=", 1)[0] for w in self.cmdline if w.startswith("--")})}


def find_tritonserver_pids(host: Any, http_port: int | None = None) -> list[int]:
    """PIDs of processes named tritonserver (optionally the one serving ``--http-port``)."""
    out = _run(host, 'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = tritonserver ] && echo ${d#/proc/}; done; true')
    pids = [int(p) for p in out.split() if p.isdigit()]
    if http_port is None:
        return pids
    chosen = []
    for pid in pids:
        try:
            info = process_info(host, pid)
        except HostProbeError:
            continue
        if str(http_port) in info.flag("http-port"):
            chosen.append(pid)
    return chosen


def process_info(host: Any, pid: int) -> ProcessInfo:
    status = _read(host, f"/proc/{pid}/status").decode("utf-8", "replace")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    try:
        uid = int(fields["Uid"].split()[1])
        gid = int(fields["Gid"].split()[1])
        groups = tuple(int(g) for g in fields.get("Groups", "").split())
    except (KeyError, IndexError, ValueError) as exc:
        raise HostProbeError(f"/proc/{pid}/status: cannot parse uid/gid ({exc})") from None
    cmdline = tuple(a.decode("utf-8", "replace") for a in _read(host, f"/proc/{pid}/cmdline").split(b"\0") if a)
    cwd = _run(host, f"readlink /proc/{pid}/cwd").strip() or "/"
    return ProcessInfo(pid, uid, gid, groups, cmdline, cwd)


def probe_process(host: Any, pid: int) -> Attempt[ProcessInfo]:
    return attempt("host.process", f"/proc/{pid}/status", lambda: process_info(host, pid))


# ----------------------------------------------------------------------------- directories


@dataclass(frozen=True)
class DirectoryAccess:
    """Whether a user (uid + groups) can change a directory tree or replace it through a parent."""

    role: str  # "backend-directory", "model-repository", …
    path: str
    uid: int
    exists: bool
    entries: int
    writable: tuple[str, ...] = ()  # "path (why)"
    truncated: bool = False
    notes: tuple[str, ...] = field(default=())

    def evidence(self) -> dict[str, Any]:
        return {"role": self.role, "path": self.path, "uid": self.uid, "exists": self.exists, "entries_checked": self.entries,
                "writable": list(self.writable[:20]), "truncated": self.truncated, "notes": list(self.notes)}


def _writable(uid: int, gids: set[int], owner: int, group: int, mode: int) -> str | None:
    if uid == 0:
        return "user is root"
    if owner == uid and mode & 0o200:
        return "owner-writable"
    if owner != uid and group in gids and mode & 0o020:
        return f"group {group}-writable"
    if owner != uid and group not in gids and mode & 0o002:
        return "world-writable"
    return None


def _stat_lines(host: Any, command: str) -> list[tuple[int, int, int, str, str]]:
    rows = []
    for line in _run(host, command).splitlines():
        meta, _, path = line.partition("|")
        parts = meta.split(" ", 3)
        if len(parts) < 4:
            continue
        rows.append((int(parts[0]), int(parts[1]), int(parts[2], 8), parts[3], path))
    return rows


def directory_access(host: Any, role: str, path: str, uid: int, gids: set[int] | tuple[int, ...],
                     max_entries: int = MAX_ENTRIES) -> DirectoryAccess:
    gids = set(gids)
    q = shlex.quote(path)
    exists = host.run(f"test -e {q}").rc == 0
    writable: list[str] = []
    notes: list[str] = ["POSIX mode bits only: ACLs and capabilities such as CAP_DAC_OVERRIDE are not evaluated"]
    entries, truncated = 0, False
    if exists:
        rows = _stat_lines(host, f"find {q} -xdev -maxdepth 12 -exec stat -c '%u %g %a %F|%n' {{}} + 2>/dev/null | head -n {max_entries + 1}")
        truncated = len(rows) > max_entries
        for owner, group, mode, kind, p in rows[:max_entries]:
            if kind == "symbolic link":
                continue
            entries += 1
            why = _writable(uid, gids, owner, group, mode)
            if why:
                writable.append(f"{p} ({why})")
    else:
        notes.append(f"{path} does not exist")
    # Parents: a writable parent lets the user replace the whole tree (unless sticky and not theirs).
    child = path.rstrip("/") or "/"
    parent = posixpath.dirname(child)
    parents = []
    while parent and parent != child:
        parents.append(parent)
        child, parent = parent, posixpath.dirname(parent)
    if parents:
        quoted = " ".join(shlex.quote(p) for p in parents)
        for owner, group, mode, _kind, p in _stat_lines(host, f"stat -c '%u %g %a %F|%n' {quoted} 2>/dev/null; true"):
            why = _writable(uid, gids, owner, group, mode)
            sticky = bool(mode & 0o1000)
            if why and not (sticky and owner != uid and uid != 0):
                writable.append(f"{p} (parent, {why}: the tree can be replaced)")
    return DirectoryAccess(role, path, uid, exists, entries, tuple(writable), truncated, tuple(notes))


def server_directories(info: ProcessInfo) -> dict[str, list[str]]:
    """Directories the server loads code or models from, per role, resolved against its cwd."""
    roles: dict[str, list[str]] = {}
    for role, default in DEFAULT_DIRECTORIES.items():
        roles[role] = info.flag(role) or [default]
    roles["model-repository"] = info.flag("model-repository") + info.flag("model-store")
    for role, paths in roles.items():
        roles[role] = [p if p.startswith("/") or "://" in p else posixpath.normpath(posixpath.join(info.cwd, p)) for p in paths]
    return roles


def probe_directories(host: Any, info: ProcessInfo, roles: tuple[str, ...]) -> list[Attempt[DirectoryAccess]]:
    out = []
    dirs = server_directories(info)
    gids = {info.gid, *info.groups}
    for role in roles:
        paths = dirs.get(role) or []
        if not paths:
            out.append(Attempt("host.directory", f"{role} of pid {info.pid}", None, f"the server names no {role}"))
        for p in paths:
            if "://" in p:
                out.append(Attempt("host.directory", f"{role} {p}", None, f"{p} is remote storage: not checkable from the host"))
                continue
            out.append(attempt("host.directory", f"stat {role} {p} for uid {info.uid}",
                               lambda p=p, role=role: directory_access(host, role, p, info.uid, gids)))
    return out


# ----------------------------------------------------------------------------- environment


@dataclass(frozen=True)
class EnvironmentObservation:
    pid: int
    names: tuple[str, ...]
    secrets: tuple[str, ...]  # "NAME=fingerprint" for secret-looking variables

    def evidence(self) -> dict[str, Any]:
        return {"pid": self.pid, "variables": len(self.names), "secret_like": list(self.secrets)}


def environment(host: Any, pid: int) -> EnvironmentObservation:
    raw = _read(host, f"/proc/{pid}/environ")
    names, found = [], []
    for entry in raw.split(b"\0"):
        if not entry or b"=" not in entry:
            continue
        name, value = (x.decode("utf-8", "replace") for x in entry.split(b"=", 1))
        names.append(name)
        if value and (SECRET_ENV_NAME.search(name) or SECRET_ENV_VALUE.search(value)):
            found.append(f"{name}={fingerprint(value)}")
    return EnvironmentObservation(pid, tuple(names), tuple(found))


def probe_environment(host: Any, pid: int) -> Attempt[EnvironmentObservation]:
    return attempt("host.environ", f"/proc/{pid}/environ", lambda: environment(host, pid))


# ----------------------------------------------------------------------------- locating a deployment's server


@dataclass(frozen=True)
class ServerLocation:
    spec: str  # testinfra host spec: local:// or kubectl://pod?namespace=…&container=…
    pid: int

    def evidence(self) -> dict[str, Any]:
        return {"host": self.spec, "pid": self.pid}


def host_spec(deployment: Any) -> str | None:
    """Where the deployment's server can be inspected: ``options.host.testinfra``, else local:// for loopback endpoints."""
    declared = ((getattr(deployment, "options", None) or {}).get("host") or {}).get("testinfra")
    if declared:
        return str(declared)
    http = deployment.endpoint("http") if hasattr(deployment, "endpoint") else None
    if http is not None and (http.host in ("localhost", "::1") or http.host.startswith("127.")):
        return "local://"
    return None


_located: dict[tuple, Attempt] = {}
_located_lock = threading.Lock()


def locate_server(deployment: Any) -> Attempt[ServerLocation]:
    """The tritonserver process of a deployment: on the local host by its --http-port, in a pod by name.

    Looked up once per process and deployment: the four host controls share the answer, so an
    unreachable backend (an ssh that hangs to its ConnectTimeout) costs one wait, not four.
    """
    http = deployment.endpoint("http") if hasattr(deployment, "endpoint") else None
    key = (deployment.name, host_spec(deployment), str(http), str(((getattr(deployment, "options", None) or {}).get("host") or {}).get("pid")))
    with _located_lock:
        if key not in _located:
            _located[key] = _locate_server(deployment)
        return _located[key]


def _locate_server(deployment: Any) -> Attempt[ServerLocation]:
    spec = host_spec(deployment)
    if spec is None:
        return Attempt("host.locate", f"deployment {deployment.name}", None,
                       "no host access: endpoints are not on this host and options.host.testinfra is not set")
    http = deployment.endpoint("http")
    port = http.port if (http is not None and spec == "local://") else None
    declared_pid = ((getattr(deployment, "options", None) or {}).get("host") or {}).get("pid")

    def find() -> ServerLocation:
        if declared_pid is not None:
            # The lab (and anyone port-forwarding into a namespace) names the process outright:
            # behind a forwarder the server's own --http-port is not the port the harness sees.
            pid = int(declared_pid)
            if pid not in find_tritonserver_pids(get_host(spec)):
                raise HostProbeError(f"options.host.pid {pid} is not a running tritonserver on {spec}")
            return ServerLocation(spec, pid)
        pids = find_tritonserver_pids(get_host(spec), http_port=port)
        if not pids:
            raise HostProbeError(f"no tritonserver process{f' serving --http-port={port}' if port else ''} on {spec}")
        if len(pids) > 1:
            raise HostProbeError(f"{len(pids)} tritonserver processes match on {spec}: {pids}; set options.host to pick one")
        return ServerLocation(spec, pids[0])

    return attempt("host.locate", f"tritonserver of {deployment.name} on {spec}", find)


# ------------------------------------------------------------------ what the host controls ask
# Each answer is an Attempt; when the server cannot be located (or its process read), that
# incomplete attempt stands in for the answer, and the judge (fail closed) makes it an error.


def _server(deployment: Any) -> tuple[Attempt[ServerLocation], Any]:
    located = locate_server(deployment)
    return located, (get_host(located.observation.spec) if located.completed else None)


def server_subject(deployment: Any) -> str | None:
    located = locate_server(deployment)
    return f"{located.observation.spec} pid {located.observation.pid}" if located.completed else None


def process_attempt(deployment: Any) -> Attempt[ProcessInfo]:
    located, host = _server(deployment)
    return probe_process(host, located.observation.pid) if host is not None else located  # type: ignore[return-value]


def directories_attempts(deployment: Any, roles: tuple[str, ...]) -> list[Attempt[DirectoryAccess]]:
    located, host = _server(deployment)
    if host is None:
        return [located]  # type: ignore[list-item]
    info = probe_process(host, located.observation.pid)
    return probe_directories(host, info.observation, roles) if info.completed else [info]  # type: ignore[list-item]


def environment_attempt(deployment: Any) -> Attempt[EnvironmentObservation]:
    located, host = _server(deployment)
    return probe_environment(host, located.observation.pid) if host is not None else located  # type: ignore[return-value]
