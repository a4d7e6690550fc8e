"""NIM endpoint probe and judges against the lab's NIM stand-in process, directly and behind
the hardened nginx gateway."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nimwarden.families.nim_api import probe as nim
from nimwarden.families.nim_api.judge import WHAT, judge_anonymous
from nimwarden.lab import gateway, nimstub
from nimwarden.net.scope import guard_for
from nimwarden.outcome import Status

GUARD = guard_for(["127.0.0.0/8"])
EDGE = "127.0.0.82"


@pytest.fixture(scope="module")
def leaky(tmp_path_factory):
    info = nimstub.start("leaky", tmp_path_factory.mktemp("nim"), host="127.0.0.81", leaky=True)
    yield info
    nimstub.stop(info)


def test_stand_in_serves_the_documented_paths_including_sse(leaky):
    import requests

    base = leaky["url"]
    for path in ("/v1/health/live", "/v1/health/ready", "/v1/models", "/v1/metadata", "/v1/version", "/v1/license",
                 "/v1/metrics", "/docs"):
        assert requests.get(base + path, timeout=3).status_code == 200, path
    r = requests.post(base + "/v1/chat/completions", json={"messages": [], "stream": True}, timeout=3, stream=True)
    lines = [ln for ln in r.iter_lines() if ln]
    assert r.headers["Content-Type"] == "text/event-stream" and lines[-1] == b"data: [DONE]"
    assert json.loads(lines[0][len(b"data: "):])["object"] == "chat.completion.chunk"
    assert "stand-in" in requests.get(base + "/v1/metadata", timeout=3).json()["stand_in"]


@pytest.mark.parametrize("category", sorted(WHAT))
def test_direct_stand_in_fails_every_category(leaky, category):
    out = judge_anonymous(nim.probe_nim(leaky["url"], guard=GUARD), category)
    assert out.status is Status.FAIL, out.reason


def test_disclosed_secret_is_redacted_in_evidence(leaky):
    out = judge_anonymous(nim.probe_nim(leaky["url"], guard=GUARD), "metadata")
    text = json.dumps(out.evidence, default=str)
    assert "repository_override" in text and "[sha256:" in text
    assert "nvapi-" not in text.replace("nv…", "")  # the fake key never appears in clear
    assert out.severity == "high"


@pytest.fixture(scope="module")
def behind_gateway(tmp_path_factory):
    state = tmp_path_factory.mktemp("nimgw")
    e = gateway.up_edge(state, [{"name": "nim", "hardened": True, "host": EDGE, "upstream": "http://127.0.0.1:9", "nim": True}],
                        log=lambda *_: None)
    yield e
    gateway.down_edge(e)


@pytest.mark.skipif(not Path(gateway.NGINX).exists(), reason="nginx is not installed")
@pytest.mark.parametrize("category", sorted(WHAT))
def test_behind_the_hardened_gateway_nothing_answers_anonymously(behind_gateway, category):
    url = behind_gateway["deployments"]["nim"]["gateway"]["https_url"]
    out = judge_anonymous(nim.probe_nim(url, guard=GUARD), category)
    assert out.status is Status.PASS, out.reason


def test_unreachable_endpoint_is_an_error():
    with socket.socket() as s:
        s.bind(("127.0.0.83", 0))
        url = f"http://127.0.0.83:{s.getsockname()[1]}"
    assert judge_anonymous(nim.probe_nim(url, guard=GUARD), "metadata").status is Status.ERROR


def test_something_that_is_not_a_nim_is_an_error_not_a_pass():
    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.84", 0), NotFound)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        out = judge_anonymous(nim.probe_nim(f"http://127.0.0.84:{srv.server_address[1]}", guard=GUARD), "docs")
        assert out.status is Status.ERROR and "not a NIM" in out.reason
    finally:
        srv.shutdown()
        srv.server_close()
