"""NIM-ENGINECVE-001 end to end (`nimwarden audit`) against a NIM that reports a given release.

The NIM here is the lab's NIM STAND-IN (nimwarden/lab/nimstub.py, not NVIDIA NIM: no NIM container
can run on this machine), started with ``--release``: it answers ``GET /v1/version`` as a NIM does and
runs no engine. The verdicts are the table's (engines.yaml): NIM for LLMs 2.1.5 bundles vLLM 0.31.0, in
range of CVE-2026-115911 (fixed in vLLM 0.32.0); 2.1.6 bundles vLLM 0.32.0; a release the table does not
know cannot be judged.
"""

from __future__ import annotations

import threading

import pytest

from nimwarden.lab import nimstub
from tests.conftest import audit_one


@pytest.mark.parametrize("release, status, words", [
    ("2.1.5", "fail", "NIM 2.1.5 → vLLM 0.31.0 → CVE-2026-115911 (GHSA-542m-9234-8gvf, PYSEC-2026-4344, CVSS 6.5), fixed in vLLM 0.32.0"),
    ("2.1.6", "pass", "bundles vLLM 0.32.0, SGLang 0.5.22: past every advisory"),
    ("2.1.7", "error", "is not in the NIM engine table"),
])
def test_the_engine_inside_the_nim_by_reported_release(tmp_path, release, status, words):
    srv = nimstub.serve("127.0.0.1", 0, None, release=release)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        proc, summary = audit_one(tmp_path, f"nim-{release}", {"name": "llm", "kind": "nim", "expect": "compliant",
                                  "endpoints": {"http": f"http://127.0.0.1:{srv.server_address[1]}"}},
                                  "suites/test_nim_api.py", "-k", "engines")
    finally:
        srv.shutdown()
    assert summary is not None, proc.stdout[-2000:] + proc.stderr[-2000:]
    (result,) = [r for r in summary["results"] if r["control"] == "NIM-ENGINECVE-001"]
    assert result["status"] == status and words in result["reason"], result["reason"]
    assert proc.returncode == {"fail": 1, "pass": 0, "error": 3}[status]
    assert summary["data"]["nim_engines"]["checked"] == "2026-12-06"
