"""A private lab server for the performance tests and benchmarks.

The shared lab (``nimwarden lab up``) may already be running with its own
compute time; tests and benchmarks that need to change ``compute_ms`` (a
slower "release") start their own real tritonserver through the lab's own
code in a temporary directory, on free loopback ports, and stop it after.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests import lab_dirs

MODEL = "add"


@dataclass
class DevServer:
    directory: Path
    deployment: dict
    compute_ms: float
    model: str = MODEL

    @property
    def grpc_url(self) -> str:
        return self.deployment["grpc"]

    @property
    def http_url(self) -> str:
        return self.deployment["http"]

    @property
    def metrics_url(self) -> str:
        return f"http://{self.deployment['metrics']}/metrics"

    @property
    def pid(self) -> int:
        return int(self.deployment["pid"])

    def stop(self) -> None:
        from nimwarden import lab  # noqa: PLC0415

        lab.down(self.directory, log=lambda *_: None)
        shutil.rmtree(self.directory, ignore_errors=True)


def available() -> str | None:
    """None when a server can be started here, else the reason it cannot."""
    try:
        from nimwarden.lab import triton  # noqa: PLC0415

        triton.find_runtime()
    except Exception as exc:  # noqa: BLE001 - the reason becomes a skip message
        return f"no tritonserver runtime: {exc}"
    return None


_CALIBRATE = """
import time
import numpy as np
kernel = np.random.default_rng(0).random((48, 48))
scale = 1.0 / float(np.max(np.abs(np.linalg.eigvals(kernel))))
per = None
for _ in range(5):
    m = kernel
    t0 = time.perf_counter()
    for _ in range(200):
        m = (m @ kernel) * scale
    dt = (time.perf_counter() - t0) / 200
    per = dt if per is None else min(per, dt)
print(per)
"""


def cpu_iterations(compute_ms: float) -> int:
    """Iterations of the lab model's CPU kernel (48x48 matrix products, as in its model.py) that take
    ``compute_ms`` here: the best of five timed batches, timed by the interpreter (and numpy) the Python
    backend stub will run. Benchmarks calibrate once and give two servers counts in an exact ratio, so a
    "5 % slower release" does exactly 5 % more work, whatever either server's start-up saw (each server
    calibrating itself on a busy machine had made them differ by 50 %)."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from nimwarden.lab import triton  # noqa: PLC0415

    rt = triton.find_runtime()
    python = f"/usr/bin/python{rt.python_version}" if rt.system_python else sys.executable
    per = float(subprocess.run([python, "-I", "-c", _CALIBRATE], check=True, capture_output=True, text=True,
                               env={**rt.env()}, timeout=120).stdout.strip())
    return max(1, int(round(compute_ms / 1000.0 / per)))


def start(compute_ms: float = 0.0, compute_kind: str = "sleep", compute_iterations: int = 0) -> DevServer:
    """Start one exposed-style lab server (metrics reachable) with the given compute time (a sleep, or
    calibrated CPU work with ``compute_kind="cpu"``; ``compute_iterations`` fixes that work's size
    instead of calibrating it at start-up)."""
    from nimwarden import lab  # noqa: PLC0415

    directory = lab_dirs.make("nimwarden-perf-")
    try:
        state = lab.up(directory, specs=(lab.ServerSpec("perf", False, compute_ms=compute_ms, compute_kind=compute_kind,
                                                              compute_iterations=compute_iterations),),
                       log=lambda *_: None)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return DevServer(directory, state["deployments"]["perf"], compute_ms)
