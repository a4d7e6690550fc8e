"""GPUSTACK-DCGM-001 and RAY-DASHBOARD-001 end to end (`nimwarden audit`) against TEST DOUBLES: a few lines
of http.server that answer like a DCGM Exporter (``/metrics`` with GPU UUIDs and pod labels; ``/debug/pprof/``
as 4.8.0/4.8.1 serve it, or 404 as 4.8.2+ does) and like a Ray dashboard (``/api/version``, ``/api/jobs/``
open, or 401 as with token auth). No DCGM Exporter can run here (it needs a GPU); the lab's real Ray heads
are audited in test_ray_head.py, these doubles record every request the harness sends.
Every request the harness sent is recorded: the probes are read-only (GET only, no job submission,
no profile)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests.conftest import run_audit

METRICS = ('# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n'
           'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-1a2b3c4d-0000-1111-2222-333344445555",pod="llama-0",namespace="nim"} 87\n')


def double(routes: dict[str, tuple[int, str]], seen: list[tuple[str, str]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return

        def _answer(self):
            seen.append((self.command, self.path))
            status, body = routes.get(self.path, (404, "not found"))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - anything but GET is recorded as a violation

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("case", ["open", "closed"])
def test_dcgm_and_ray_exposure(tmp_path, case):
    seen: list[tuple[str, str]] = []
    dcgm = double({"/metrics": (200, METRICS), "/debug/pprof/": (200, "<html>pprof</html>") if case == "open" else (404, "")}, seen)
    ray = double({"/api/version": (200, '{"ray_version": "2.60.0"}'),
                  "/api/jobs/": (200, "[]") if case == "open" else (401, "token required")}, seen)
    try:
        profile = tmp_path / "target.yaml"
        profile.write_text(yaml.safe_dump({
            "name": "gpu", "scope": ["127.0.0.1"], "probe_position": "cluster-internal",
            "deployments": [{"name": "nim", "kind": "nim", "expect": "compliant", "endpoints": {
                "http": "http://127.0.0.1:9",
                "dcgm": f"http://127.0.0.1:{dcgm.server_address[1]}", "ray": f"http://127.0.0.1:{ray.server_address[1]}"}}],
        }))
        proc, summary = run_audit(profile, tmp_path / "reports", "suites/test_gpu_platform.py")
    finally:
        dcgm.shutdown()
        ray.shutdown()
    assert summary is not None, proc.stdout[-2000:] + proc.stderr[-2000:]
    got = {r["control"]: r for r in summary["results"]}
    expected = "fail" if case == "open" else "pass"
    assert got["GPUSTACK-DCGM-001"]["status"] == expected, got["GPUSTACK-DCGM-001"]["reason"]
    assert got["RAY-DASHBOARD-001"]["status"] == expected, got["RAY-DASHBOARD-001"]["reason"]
    if case == "open":
        assert "pprof" in got["GPUSTACK-DCGM-001"]["reason"] and got["GPUSTACK-DCGM-001"]["severity"] == "critical"
        assert "CVE-2023-48022" in got["RAY-DASHBOARD-001"]["reason"]
    # read-only: GET only, never a profile, a trace or a job submission
    assert seen and {m for m, _ in seen} == {"GET"}, seen
    assert not [p for _, p in seen if p.startswith(("/debug/pprof/profile", "/debug/pprof/trace"))]
    # no kubernetes source: the cluster-state controls say so
    assert got["GPUSTACK-VERSION-001"]["status"] == "not_applicable"
