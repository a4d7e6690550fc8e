"""Real Ray heads for the lab (the PyPI ``ray[default]`` wheel, CPU only): the multi-node runtime a NIM
runs on when a model is larger than one node.

Each deployment's network namespace runs one head, as the leader pod of a multi-node NIM does (the leader
starts ``ray start --head`` next to the server): ``exposed`` without authentication (Ray's default, the
case CVE-2023-48022 is about), ``hardened`` with Ray's token authentication (``RAY_AUTH_MODE=token``,
Ray 2.52+). Both bind their GCS (6379) and client server (10001) to the namespace's own address and the
dashboard / Jobs API (8265) to every address of the namespace; ``hardened``'s iptables policy drops all
three from the other positions, ``exposed`` enforces nothing.

The runtime is a virtualenv of its own (Ray brings its own pins), set up by ``scripts/bootstrap`` in
``<cache>/ray-<version>`` (``nimwarden.lab.cache``: ``~/.cache/nimwarden`` by default, outside the clone), or named by ``NIMWARDEN_RAY`` (the
``ray`` executable). Each head has its own temp directory (Ray's sockets and logs); ``ray stop`` inside the
namespace is not used (it stops every Ray process of the host): :func:`stop` ends the processes that name the
head's temp directory, and the lab's network teardown kills whatever a crash left in the namespace.

Cost on the project's 2-core machine (docs/benchmarks.md): ~6 s to start, 19 processes, ~1.6 GB resident
and ~7 % of one core idle, per head.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from nimwarden.lab import netns, triton
from nimwarden.lab.cache import cache_dir, runtime

RAY_VERSION = "2.60.0"
DASHBOARD_PORT = 8265
GCS_PORT = 6379
CLIENT_PORT = 10001


def venv_dir() -> Path:
    return cache_dir() / f"ray-{RAY_VERSION}"


def find_runtime() -> Path:
    """The ``ray`` executable; raises RuntimeError saying how to get one."""
    return runtime("NIMWARDEN_RAY", venv_dir(), "ray", "Ray runtime for the lab's Ray heads", f"ray[default]=={RAY_VERSION}")


def _env(token: str | None) -> dict:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_AUTH_MODE", None)
    env.pop("RAY_AUTH_TOKEN", None)
    if token:
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    return env


def temp_dir(tag: str, name: str) -> Path:
    """A head's own temp directory: short, because Ray puts Unix sockets under it (108-byte path limit)."""
    return Path("/tmp") / f"nwray-{tag}-{name}"


def start(ray: Path, netns: str | None, address: str, temp: Path, token: str | None, log_path: Path,
          ports: dict[str, int] | None = None) -> subprocess.Popen:
    """``ray start --head`` inside ``netns`` (or on ``address`` of this host without one, on ``ports``);
    returns the CLI's process: :func:`wait` for it and the dashboard."""
    ports = {"dashboard": DASHBOARD_PORT, "gcs": GCS_PORT, "client": CLIENT_PORT, **(ports or {})}
    if temp.exists():
        shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    prefix = ["ip", "netns", "exec", netns] if netns else []
    argv = [*prefix, str(ray), "start", "--head", f"--node-ip-address={address}", f"--port={ports['gcs']}",
            f"--dashboard-host={'0.0.0.0' if netns else address}", f"--dashboard-port={ports['dashboard']}",
            f"--ray-client-server-port={ports['client']}", "--num-cpus=1", "--include-dashboard=true",
            "--disable-usage-stats", f"--temp-dir={temp}"]
    log = open(log_path, "w")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env(token))
    finally:
        log.close()


def start_heads(directory: Path, specs, state: dict, net: dict | None, files: Path, edge_hosts: dict[str, str], internal_host: str,
                save, log) -> list:
    """A Ray head per lab deployment that asks for one, started while the servers start; returns what :func:`wait` needs.

    In its deployment's namespace, like a multi-node NIM's leader pod. ``hardened``: token auth, the
    dashboard only port-forwarded (127.0.0.1), GCS and client server not published (its edge address is
    recorded as where they would be, and nothing listens there). ``exposed``: no authentication, and the
    dashboard, GCS and client server published on its edge address: a mistake on purpose."""
    wanted = [s for s in specs if s.ray]
    if not wanted:
        return []
    ray_bin = find_runtime()
    tag = netns.tag_for(directory)
    heads = []
    for spec in wanted:
        dep = state["deployments"][spec.name]
        position = (net or {}).get("positions", {}).get(spec.name)
        token = secrets.token_urlsafe(24) if spec.ray == "token" else None
        temp = temp_dir(tag, spec.name)
        dep["ray_temp_dir"] = str(temp)
        save()  # before it starts: `down` finds it after a crash
        log_path = files / spec.name / "ray-start.log"
        if token:
            token_file = files / spec.name / "ray-token"
            token_file.write_text(token + "\n")
            os.chmod(token_file, 0o600)
            dep["ray_token_file"] = str(token_file)
        edge = edge_hosts.get(spec.name, internal_host)
        if position:
            proc = start(ray_bin, position["netns"], position["address"], temp, token, log_path)
            bind = internal_host if spec.hardened else edge
            dash = triton.free_port()
            pairs: dict[int, int | str] = {dash: DASHBOARD_PORT}
            if not spec.hardened:
                gcs, client = triton.free_port(), triton.free_port()
                pairs.update({gcs: f"{position['address']}:{GCS_PORT}", client: f"{position['address']}:{CLIENT_PORT}"})
                dep.update(ray_gcs=f"{edge}:{gcs}", ray_client=f"{edge}:{client}")
            netns.port_forward(directory, spec.name, pairs, bind=bind)
            dep["ray"] = f"{bind}:{dash}"
        else:
            ports = {k: triton.free_port() for k in ("dashboard", "gcs", "client")}
            proc = start(ray_bin, None, internal_host, temp, token, log_path, ports)
            dep["ray"] = f"{internal_host}:{ports['dashboard']}"
            if not spec.hardened:
                dep.update(ray_gcs=f"{internal_host}:{ports['gcs']}", ray_client=f"{internal_host}:{ports['client']}")
        dep.setdefault("ray_gcs", f"{edge}:{GCS_PORT}")
        dep.setdefault("ray_client", f"{edge}:{CLIENT_PORT}")
        log(f"lab: starting {spec.name} Ray head {RAY_VERSION} ({'token auth' if token else 'no authentication'}; "
            f"dashboard {dep['ray']}, GCS {dep['ray_gcs']}, client {dep['ray_client']})")
        heads.append((spec, proc, token, log_path))
    save()
    return heads


def wait(proc: subprocess.Popen, dashboard_url: str, log_path: Path, token: str | None, timeout_s: float = 120.0) -> float:
    """Wait for ``ray start`` to finish and the dashboard to answer (200 open, 401/403 with token auth)."""
    t0 = time.monotonic()
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise RuntimeError(f"ray start did not finish in {timeout_s:.0f}s (log: {log_path})") from None
    if rc != 0:
        tail = log_path.read_text(errors="replace")[-800:] if log_path.exists() else ""
        raise RuntimeError(f"ray start exited {rc} (log: {log_path}): {tail.strip()}")
    while time.monotonic() - t0 < timeout_s:
        try:
            with urllib.request.urlopen(dashboard_url + "/api/version", timeout=2) as r:  # noqa: S310 - lab loopback
                if r.status == 200:
                    return time.monotonic() - t0
        except urllib.error.HTTPError as exc:
            if token and exc.code in (401, 403):
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the Ray dashboard at {dashboard_url} did not answer in {timeout_s:.0f}s (log: {log_path})")


def jobs(dashboard_url: str, token: str | None = None, timeout_s: float = 5.0) -> list:
    """The head's job list (``GET /api/jobs/``), with the token when the head has one: what the audit must not change."""
    req = urllib.request.Request(dashboard_url + "/api/jobs/", headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout_s) as r:  # noqa: S310 - lab loopback
        return json.loads(r.read())


def processes(temp: str | Path) -> list[int]:
    """PIDs of a head's processes: every Ray process names the head's temp (session) directory on its command line.
    (Not ``ray stop``: it finds Ray processes by name host-wide, so it would stop every other head too.)"""
    mark = str(temp).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def stop(*temps: str | Path, grace_s: float = 2.0) -> int:
    """Stop the heads' processes (SIGTERM, then SIGKILL after ``grace_s``; all heads at once) and remove their temp
    directories. Returns how many processes."""
    pids = [p for t in temps for p in processes(t) if p != os.getpid()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        live = [p for p in pids if triton.running(p)]
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while live and time.monotonic() < deadline and any(triton.running(p) for p in live):
            time.sleep(0.1)
    for t in temps:
        shutil.rmtree(t, ignore_errors=True)
    return len(pids)


