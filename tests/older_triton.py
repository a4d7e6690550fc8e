"""Older tritonserver releases for the version tests: the ``nvidia-pytriton`` wheels that ship them,
each in a virtualenv of its own, installed once and cached.

``python -m tests.older_triton`` installs them (``./scripts/test`` does, before the tests);
``install(version)`` does it on demand. The cache is ``<cache>/older-triton/`` (``nimwarden.lab.cache``:
``~/.cache/nimwarden`` by default, outside the clone, so a fresh clone reuses it): ``nvidia-pytriton==<version>``
with ``--no-deps`` (only its server tree is used; nothing of it is imported), about 40 MB to
download and 110 MB installed per version.

``servers(version, directory)`` starts two servers of that release side by side, configured as
the lab's ``hardened`` and ``exposed`` deployments are (``nimwarden.lab.server_args``, less the flags
the release lacks, without the lab's network namespaces, gateways and TLS; exposed with a fake
credential in its model's parameters), and writes a profile for them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from nimwarden.lab.cache import cache_dir as nimwarden_cache_dir

ROOT = Path(__file__).resolve().parent.parent
# nvidia-pytriton release → the tritonserver it ships (seen: server metadata of each)
VERSIONS = {"0.4.0": "2.36.0", "0.5.0": "2.41.0"}
# Flags of nimwarden.lab.server_args a release does not have (seen: its --help). tritonserver 2.36.0
# cannot restrict HTTP APIs at all (only --grpc-restricted-protocol exists): its HTTP API stays open.
UNSUPPORTED = {"0.4.0": ("--http-restricted-api",)}


def cache_dir() -> Path:
    return nimwarden_cache_dir() / "older-triton"


def site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def install(version: str, log=lambda *_: None) -> Path:
    """The site-packages of a virtualenv holding ``nvidia-pytriton==version`` (installed once)."""
    venv = cache_dir() / f"pytriton-{version}"
    done = venv / ".nimwarden-installed"
    if done.exists():
        return site_packages(venv)
    log(f"installing nvidia-pytriton=={version} (tritonserver {VERSIONS.get(version, '?')}) into {venv}")
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)], check=True, timeout=120)
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                           "--disable-pip-version-check", "--no-deps", f"nvidia-pytriton=={version}"],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not (site_packages(venv) / "pytriton" / "tritonserver" / "bin" / "tritonserver").exists():
        raise RuntimeError(f"pip install nvidia-pytriton=={version} failed: {proc.stderr.strip()[-500:]}")
    done.write_text(f"{time.monotonic() - t0:.1f}s\n")
    return site_packages(venv)


@contextmanager
def servers(version: str, directory: Path) -> Iterator[Path]:
    """Two tritonservers of ``version`` (hardened and exposed as in the lab); yields their profile."""
    from nimwarden import lab
    from nimwarden.lab import triton

    rt = triton.find_runtime(install(version))
    backends = triton.prepare_backends(rt, directory / "backends")
    procs, deployments = [], []
    try:
        for spec in (lab.ServerSpec("hardened", True), lab.ServerSpec("exposed", False)):
            workdir = directory / spec.name
            workdir.mkdir(parents=True, exist_ok=True)
            planted = None if spec.hardened else {"gcs_access_token": f"ya29.older-canary-{os.urandom(12).hex()}"}
            repo = triton.write_model_repository(workdir, 0, planted)
            ports = {p: triton.free_port() for p in ("http", "grpc", "metrics", "sagemaker")}
            key = None
            dep = {"name": spec.name, "kind": "triton", "expect": "compliant" if spec.hardened else "noncompliant", "models": ["add"],
                   "endpoints": {"http": f"http://127.0.0.1:{ports['http']}", "grpc": f"grpc://127.0.0.1:{ports['grpc']}",
                                 "metrics": f"http://127.0.0.1:{ports['metrics']}", "sagemaker": f"http://127.0.0.1:{ports['sagemaker']}"}}
            if spec.hardened:
                key = f"older-{version}-key"
                (workdir / "admin-key").write_text(key + "\n")
                dep["credentials"] = {"restricted_api": {"header": "admin-key", "file": str(workdir / "admin-key")}}
            log = workdir / "tritonserver.log"
            # Seen once: two 2.41.0 servers started in the same second broke each other's Python backend
            # stub ("Received unexpected response from Python backend stub"); a region prefix each rules it out.
            args = [a for a in lab.server_args(spec, ports, repo, backends, workdir, key)
                    if not a.startswith(UNSUPPORTED.get(version, ("-never-",)))]
            args.append(f"--backend-config=python,shm-region-prefix-name=nimwarden_{spec.name}_{os.getpid()}")
            proc = triton.launch(rt, args, log, cwd=workdir)
            procs.append((proc, ports, log))
            deployments.append(dep)
        for proc, ports, log in procs:
            triton.wait_ready(proc, f"127.0.0.1:{ports['http']}", log)
        profile = directory / "profile.yaml"
        profile.write_text(yaml.safe_dump({"name": f"triton-{VERSIONS.get(version, version)}", "scope": ["127.0.0.1/32"],
                                           "timeouts": {"connect_s": 2, "read_s": 5}, "deployments": deployments}))
        yield profile
    finally:
        for proc, _, _ in procs:  # SIGTERM to both first: each takes its --exit-timeout-secs
            try:
                os.killpg(proc.pid, 15)
            except ProcessLookupError:
                pass
        if not lab.wait_gone([p.pid for p, _, _ in procs], timeout_s=7):
            for proc, _, _ in procs:
                triton.stop_pid(proc.pid, triton.process_start_time(proc.pid), grace_s=1)
        for proc, _, _ in procs:
            proc.wait(timeout=10)


if __name__ == "__main__":
    for v in VERSIONS:
        print(install(v, log=lambda m: print(f"older-triton: {m}", file=sys.stderr)))
