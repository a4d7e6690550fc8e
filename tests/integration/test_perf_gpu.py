"""GPU figures of a measurement: only on a machine with an NVIDIA GPU; skipped with the reason elsewhere."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from nimwarden.families.performance import inputs, loadgen, model_info
from nimwarden.families.performance.transport import Endpoint
from tests import perf_devserver as devserver


def _gpu_missing() -> str | None:
    if not Path("/dev/nvidia0").exists():
        return "no NVIDIA GPU on this machine (/dev/nvidia0 absent)"
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi not found: no NVIDIA driver on this machine"
    probe = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False)
    if probe.returncode != 0 or "GPU" not in probe.stdout:
        return f"nvidia-smi lists no GPU: {probe.stderr.strip()[:200]}"
    return devserver.available()


pytestmark = [pytest.mark.gpu, pytest.mark.lab, pytest.mark.skipif(bool(_gpu_missing()), reason=_gpu_missing() or "")]


def test_measurement_reports_gpu_utilisation_and_memory():
    server = devserver.start(compute_ms=0)
    try:
        ep = Endpoint("grpc", server.grpc_url)
        info = model_info.fetch(ep, server.model)
        payload = inputs.build_payload(server.model, inputs.specs_from_metadata(info.metadata))
        m = loadgen.measure(ep, payload, loadgen.LoadSpec(concurrency=2, window_s=0.5, max_windows=4, warmup_s=0.2,
                                                          tolerance=1.0), metrics_url=server.metrics_url)
    finally:
        server.stop()
    assert m.server is not None and m.server.gpus, "Triton exported no GPU gauges on a GPU machine"
    for gauges in m.server.gpus.values():
        assert gauges["nv_gpu_memory_total_bytes"] > 0
        assert 0.0 <= gauges["nv_gpu_utilization"] <= 1.0
