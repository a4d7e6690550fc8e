"""TRITON-CVE-002 end to end (`nimwarden audit`) against servers that report a given version.

The servers here are a TEST DOUBLE: a few lines of http.server that answer `GET /v2` with a version
string and `GET /v2/health/*` with 200, the way tritonserver does. No real Triton of version 2.70 to
2.76 runs on this machine (the wheel ships 2.51.0); the lab's real 2.51.0 is covered by the lab audit.

What the sources say (cves.yaml, checked 2026-12-06): the newest Triton fix is release 26.07 (2.71.0);
no bulletin after 5875 names a later one. So 2.70.0 fails, 2.71.0 to 2.75.0 (26.11, the newest release
the map holds) pass, and 2.76.0 — newer than the map — passes saying that the table ends before it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nimwarden.families.triton_api.cves import load_table
from tests.conftest import audit_one


def version_server(version: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return

        def do_GET(self):  # noqa: N802
            body = json.dumps({"name": "triton", "version": version, "extensions": []}).encode() if self.path == "/v2" else b""
            self.send_response(200 if self.path in ("/v2", "/v2/health/live", "/v2/health/ready") else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("version, status", [("2.70.0", "fail"), ("2.71.0", "pass"), ("2.72.0", "pass"), ("2.73.0", "pass"),
                                             ("2.75.0", "pass"), ("2.76.0", "pass")])
def test_version_only_cves_by_reported_version(tmp_path, version, status):
    server = version_server(version)
    try:
        proc, summary = audit_one(tmp_path, f"triton-{version}", {"name": "staging", "kind": "triton", "expect": "compliant",
                                  "endpoints": {"http": f"http://127.0.0.1:{server.server_address[1]}"}},
                                  "suites/test_triton_api.py", "-k", "test_no_version_only_vulnerability")
    finally:
        server.shutdown()
    assert summary is not None, proc.stdout[-2000:] + proc.stderr[-2000:]
    (result,) = [r for r in summary["results"] if r["control"] == "TRITON-CVE-002"]
    assert result["status"] == status, result["reason"]
    if status == "fail":
        for cve in (c for c in load_table().cves if c.fixed_release == "26.07"):
            assert cve.id in result["reason"]
    table_ends = "newer than the newest release this table maps" in result["reason"]
    assert table_ends == (version == "2.76.0"), result["reason"]  # said exactly when the server lies past the map
    if table_ends:
        assert "(26.11 = 2.75.0)" in result["reason"]
    stamp = summary["data"]["triton_cves"]
    assert stamp["as_of"] == load_table().as_of.isoformat() and stamp["checked"] == load_table().dates.checked.isoformat()
    assert f"sources checked {stamp['checked']}" in result["reason"] or status == "fail"
