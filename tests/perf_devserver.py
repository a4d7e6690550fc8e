"""A private lab server for the performance tests and benchmarks.

The shared lab (``nimwarden lab up``) may already be running with its own
compute time; tests and benchmarks that need to change ``compute_ms`` (a
slower "release") start their own real tritonserver through the lab's own
code in a temporary directory, on free loopback ports, and stop it after.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

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


def start(compute_ms: float = 0.0, compute_kind: str = "sleep") -> DevServer:
    """Start one exposed-style lab server (metrics reachable) with the given compute time (a sleep, or
    calibrated CPU work with ``compute_kind="cpu"``)."""
    from nimwarden import lab  # noqa: PLC0415

    directory = Path(tempfile.mkdtemp(prefix="nimwarden-perf-"))
    try:
        state = lab.up(directory, specs=(lab.ServerSpec("perf", False, compute_ms=compute_ms, compute_kind=compute_kind),),
                       log=lambda *_: None)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return DevServer(directory, state["deployments"]["perf"], compute_ms)
