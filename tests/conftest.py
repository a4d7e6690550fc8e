"""Shared fixtures for the harness's own tests: a real lab, profiles pointing at it, audits run as users run them."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests import lab_dirs

ROOT = Path(__file__).resolve().parent.parent


try:  # CI must not turn red on a counter-example nobody has seen before: derandomize there
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
    if os.environ.get("CI"):
        _hypothesis_settings.load_profile("ci")
except ImportError:
    pass


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs the lab's real tritonserver processes")
    config.addinivalue_line("markers", "root: needs root (network namespaces, iptables, nmap SYN scans)")
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU")


def pytest_sessionstart(session):
    """Labs left running by an interrupted run are taken down first (tests/lab_dirs.py); once, not per xdist worker."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        lab_dirs.sweep(log=lambda line: print(line, file=sys.stderr))


@pytest.fixture(autouse=True)
def _no_hung_endpoint_from_an_earlier_test():
    """A test starts with no endpoint remembered as hanging (nimwarden.net.hangs is per process)."""
    from nimwarden.net import hangs

    hangs.forget()


@pytest.fixture(scope="session")
def lab_state(tmp_path_factory):
    """The embedded lab, started once for the session in its own directory, stopped afterwards."""
    from nimwarden import lab

    # Not under pytest's 0700 temp root: the hardened server drops to `nobody` and must reach its files.
    directory = lab_dirs.make("nimwarden-lab-", 0o755)
    try:
        yield lab.up(directory, log=lambda *_: None)
    finally:
        lab.down(directory, log=lambda *_: None)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def kube_cluster():
    """A real Kubernetes API server (nimwarden.lab.kube: 1.20.2, the lab node, the lab's CRDs) for the session;
    skips, with the reason, only where its binaries cannot be had (scripts/build-kube needs root and apt)."""
    from nimwarden.lab import kube
    from tests.kube_cluster import KubeCluster

    ok, why = kube.available()
    if not ok:
        pytest.skip(f"no Kubernetes API server here: {why}")
    directory = lab_dirs.make("nimwarden-kube-")
    try:
        yield KubeCluster(directory, kube.up(directory, log=lambda *_: None))
    finally:
        kube.down(directory, log=lambda *_: None)
        shutil.rmtree(directory, ignore_errors=True)


def lab_profile(tmp_path: Path, state: dict, started_only: bool = False, **changes) -> Path:
    """targets/lab.yaml pointed at ``state``; ``changes`` patch deployments by name; ``started_only``: without
    what the lab did not start (:func:`servers_only_lab`)."""
    profile = yaml.safe_load((ROOT / "targets" / "lab.yaml").read_text())
    state_file = Path(state["dir"]) / "state.json"
    profile["lab"]["state_file"] = str(state_file)
    profile["waivers"] = str(ROOT / "targets" / "lab-waivers.yaml")
    if "kubernetes" in profile:  # relative paths in targets/lab.yaml are relative to targets/; live: this lab's API server
        from nimwarden.lab import kubernetes_section

        profile["kubernetes"] = kubernetes_section(profile["kubernetes"], state, ROOT / "targets")
    for dep in profile["deployments"]:
        dep.update(changes.get(dep["name"], {}))
    if started_only:
        _started_only(profile, state)
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


_LAB_REF = re.compile(r"\$\{lab\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\}")


def servers_only_lab(directory: Path) -> dict:
    """A private lab of the two tritonservers alone (network namespaces, gateways and NIM stand-ins, no Ray heads,
    NeMo Platforms or API server: ~3 s to start instead of ~35 s), for a test that breaks a lab it owns.
    Its profile is :func:`lab_profile` with ``started_only=True``."""
    from nimwarden import lab

    saved = os.environ.get("NIMWARDEN_KUBE_BIN")
    (directory / "no-kube").mkdir(parents=True, exist_ok=True)
    os.environ["NIMWARDEN_KUBE_BIN"] = str(directory / "no-kube")  # no API server binaries: the lab runs without one
    try:
        return lab.up(directory / "lab", specs=(lab.ServerSpec("hardened", True), lab.ServerSpec("exposed", False)),
                      log=lambda *_: None)
    finally:
        if saved is None:
            os.environ.pop("NIMWARDEN_KUBE_BIN", None)
        else:
            os.environ["NIMWARDEN_KUBE_BIN"] = saved


def _started_only(profile: dict, state: dict) -> None:
    """Drop the endpoints and credentials that name a part of the lab ``state`` did not start (and those endpoints
    from ``exposure``): a lab of fewer parts (:func:`servers_only_lab`) still loads."""
    def started(value) -> bool:
        return all(key in state["deployments"].get(dep, {}) for dep, key in _LAB_REF.findall(str(value)))

    for dep in profile["deployments"]:
        for section in ("endpoints", "credentials"):
            if isinstance(dep.get(section), dict):
                dep[section] = {k: v for k, v in dep[section].items() if started(v)}
        if "exposure" in dep:
            dep["exposure"] = [e for e in dep["exposure"] if e in dep.get("endpoints", {})]


def interruptible() -> None:
    """preexec_fn for audit subprocesses: SIGINT back to its default, so that Python turns it into
    KeyboardInterrupt. A test run started in the background (`cmd &` in a non-interactive shell, as CI
    wrappers do) inherits SIGINT *ignored*, and Python keeps an inherited ignore: a Ctrl-C test would
    then pass without the signal ever arriving."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_audit(profile: Path, reports: Path, *pytest_args: str, timeout: float = 300, env=None) -> tuple[subprocess.CompletedProcess, dict | None]:
    """`nimwarden audit --target …` in a subprocess, exactly as a user runs it. A PYTEST_ADDOPTS this test run was
    started with is the harness's, not the audit's: it is passed on only when ``env`` names it."""
    cmd = [sys.executable, "-m", "nimwarden.cli", "audit", "--target", str(profile), "--reports-dir", str(reports), *pytest_args]
    base = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**base, **(env or {})},
                          preexec_fn=interruptible)
    summary_path = reports / "latest" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return proc, summary


def audit_one(tmp_path: Path, name: str, deployment: dict, *pytest_args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    """`nimwarden audit` of a one-deployment profile on loopback (a test double's endpoints)."""
    import yaml

    profile = tmp_path / "target.yaml"
    profile.write_text(yaml.safe_dump({"name": name, "scope": ["127.0.0.1"], "deployments": [deployment]}))
    return run_audit(profile, tmp_path / "reports", *pytest_args)


def results_by(summary: dict) -> dict[tuple[str, str, str], dict]:
    return {(r["deployment"], r["control"], r["subject"]): r for r in summary["results"]}


class LoopbackServer:
    """A real HTTP server on loopback that misbehaves as told: ``answer(conn, request_bytes, stop)`` for every
    request on every connection, until it returns False (the connection is then closed). ``connections`` counts
    the connections accepted."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(5)
        try:
            while not self.stop.is_set():
                data = _request(conn)
                if not data or self.answer(conn, data, self.stop) is False:
                    break
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


def _request(conn) -> bytes:
    """One whole request: its head, then the Content-Length bytes of body (which may come in a later packet)."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return b""
        data += more
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.startswith(b"content-length:")), 0)
    while len(data) - len(head) - 4 < length:
        more = conn.recv(65536)
        if not more:
            break
        data += more
    return data


class HangingServer:
    """Accepts TCP connections and never answers (a real socket on loopback)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except OSError:
                continue

    def close(self):
        self._stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def hanging_server():
    server = HangingServer()
    yield server
    server.close()


def load_benchmark(name: str):
    """A script under benchmarks/ imported as a module (benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dead_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def have(binary: str) -> bool:
    return shutil.which(binary) is not None
