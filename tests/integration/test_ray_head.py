"""RAY-DASHBOARD-001 against a real Ray head (the PyPI ``ray[default]`` wheel, CPU only), run end to end
through `nimwarden audit`, and proof that the probe is read-only: the head shows no job afterwards.

Ray is not part of the default lab: a head takes ~15-20 s to start and ~1.5 GB of memory on this 2-core
machine, and it listens on wildcard ports that would show up in every port scan of the lab. So this test
starts its own heads, each inside a network namespace the test creates with only its loopback up: Ray's
own traffic and the audit's requests never leave that namespace. One head without authentication (the
default: the exposed case), one with Ray's token auth (RAY_AUTH_MODE=token, Ray 2.52+: the hardened
case). The Ray virtualenv is set up once in ``.nimwarden/ray-venv`` (git-ignored) and reused.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

RAY_VERSION = "2.60.0"
VENV = ROOT / ".nimwarden" / "ray-venv"
DASHBOARD_PORT = 8265

pytestmark = [pytest.mark.slow, pytest.mark.root]


def _ray_venv() -> Path:
    ray = VENV / "bin" / "ray"
    if ray.exists():
        return ray
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=120)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", f"ray[default]=={RAY_VERSION}"],
                       check=True, capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(VENV, ignore_errors=True)
        pytest.skip(f"cannot install ray[default]=={RAY_VERSION} into {VENV}: {exc}")
    return ray


def _in_ns(ns: str, *argv: str, env=None, timeout=120, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}, check=check)


@pytest.fixture
def ray_namespace():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for its own network namespace")
    ns = f"nwray-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
    yield ns
    subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
    subprocess.run(["ip", "netns", "delete", ns], check=False)


def _start_head(ns: str, ray: Path, env: dict) -> float:
    t0 = time.monotonic()
    proc = _in_ns(ns, str(ray), "start", "--head", "--node-ip-address=127.0.0.1", "--port=6379",
                  "--dashboard-host=127.0.0.1", f"--dashboard-port={DASHBOARD_PORT}", "--ray-client-server-port=10001",
                  "--num-cpus=1", "--include-dashboard=true", "--disable-usage-stats", env=env, timeout=180, check=False)
    if proc.returncode != 0:
        pytest.fail(f"ray start failed: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return time.monotonic() - t0


def _audit_in(ns: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict | None]:
    profile = tmp_path / "target.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "ray", "scope": ["127.0.0.1"], "probe_position": "cluster-internal",
        "deployments": [{"name": "multinode", "kind": "nim", "expect": "compliant",
                         "endpoints": {"http": "http://127.0.0.1:9", "ray": f"http://127.0.0.1:{DASHBOARD_PORT}"}}],
    }))
    reports = tmp_path / "reports"
    proc = _in_ns(ns, sys.executable, "-m", "nimwarden.cli", "audit", "--target", str(profile), "--reports-dir", str(reports),
                  "suites/test_gpu_platform.py", "-k", "ray_dashboard", timeout=300, check=False)
    path = reports / "latest" / "summary.json"
    return proc, (json.loads(path.read_text()) if path.exists() else None)


def _jobs(ns: str, headers: dict | None = None) -> list:
    args = ["-s", "-m", "10", *[a for k, v in (headers or {}).items() for a in ("-H", f"{k}: {v}")], f"http://127.0.0.1:{DASHBOARD_PORT}/api/jobs/"]
    return json.loads(_in_ns(ns, "curl", *args).stdout)


@pytest.mark.parametrize("auth", ["none", "token"])
def test_a_real_ray_head(ray_namespace, tmp_path, auth):
    if shutil.which("curl") is None:
        pytest.skip("needs curl")
    ray = _ray_venv()
    token = secrets.token_hex(24)
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token} if auth == "token" else {}
    took = _start_head(ray_namespace, ray, env)
    print(f"\nray head ({auth}) started in {took:.1f}s")
    try:
        proc, summary = _audit_in(ray_namespace, tmp_path)
        assert summary is not None, proc.stdout[-2000:] + proc.stderr[-2000:]
        (result,) = [r for r in summary["results"] if r["control"] == "RAY-DASHBOARD-001"]
        assert result["status"] == ("fail" if auth == "none" else "pass"), result["reason"]
        # read-only: the head has no job after the audit (the probe listed jobs, it never submitted one)
        jobs = _jobs(ray_namespace, {"Authorization": f"Bearer {token}"} if auth == "token" else None)
        assert jobs == [], jobs
    finally:
        _in_ns(ray_namespace, str(ray), "stop", "--force", env=env, timeout=120, check=False)
