"""Requests to the Kubernetes API server are bounded as a whole (nimwarden.net.kube_api), as the endpoint
probes are: an API server (or a proxy in front of one) that sends a list a byte at a time is cut off at
connect_s + read_s, where the ``kubernetes`` client's per-read timeout never trips.

Each server here is a real socket on loopback speaking HTTP; the real API server (tests/kube_cluster.py) reads
through the same transport in tests/integration/test_k8s_live.py, test_discovery_live.py and
test_netpol_probe_pods.py (TLS with the cluster's CA, client certificates, ServiceAccount tokens)."""

from __future__ import annotations

import json
import socket
import ssl
import time

import pytest
from kubernetes.client import Configuration

from nimwarden.k8s.live import K8sReadError, LiveReader
from nimwarden.k8s.probe_pods import PodRunner, ProbePodError, ProbePodOptions
from nimwarden.k8s.resources import BY_KIND
from nimwarden.lab import pki
from nimwarden.net import kube_api
from nimwarden.net.kube_api import ApiCallError, ApiTransport
from tests.conftest import LoopbackServer
from tests.tls_servers import TestTlsServer
from tests.unit.test_bounded_sessions import SLACK_S, trickle

TIMEOUT_S = 1.0  # LiveReader/PodRunner: (min(t, 5), t) -> a 2 s deadline for the whole exchange
DEADLINE_S = 2.0


def configuration(url: str, token: str = "t0ken-for-the-test") -> Configuration:
    cfg = Configuration()
    cfg.host = url
    cfg.api_key = {"authorization": token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    return cfg


@pytest.fixture
def trickling():
    s = LoopbackServer(trickle)
    yield s
    s.close()


def test_a_live_read_from_an_api_server_that_trickles_ends_at_the_deadline(trickling):
    reader = LiveReader(configuration(trickling.url), timeout_s=TIMEOUT_S)
    t0 = time.monotonic()
    try:
        with pytest.raises(K8sReadError, match=r"GET /api/v1/pods: no complete answer within the 2s deadline"):
            reader.list(BY_KIND["Pod"])
    finally:
        reader.close()
    took = time.monotonic() - t0
    assert DEADLINE_S - 0.1 < took < DEADLINE_S + SLACK_S, took


def test_a_probe_pod_request_to_an_api_server_that_trickles_ends_at_the_deadline(trickling):
    runner = PodRunner(configuration(trickling.url), ProbePodOptions(image="python:3.11-slim"), api_timeout_s=TIMEOUT_S)
    t0 = time.monotonic()
    try:
        with pytest.raises(ProbePodError, match="deadline"):
            runner._call("GET", "/api/v1/namespaces/nim/pods/nimwarden-reach-x")
    finally:
        runner.close()
    assert time.monotonic() - t0 < DEADLINE_S + SLACK_S


def test_every_request_carries_the_credentials_and_the_paging_query_on_one_connection():
    seen: list[bytes] = []

    def pages(conn, data, stop):
        seen.append(data)
        more = b"continue=" not in data.split(b"\r\n", 1)[0]
        body = json.dumps({"kind": "PodList", "metadata": {"continue": "next page" if more else ""},
                           "items": [{"metadata": {"name": f"p{len(seen)}", "namespace": "nim"}}]}).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    server = LoopbackServer(pages)
    reader = LiveReader(configuration(server.url), timeout_s=TIMEOUT_S, page_size=1)
    try:
        items = reader.list(BY_KIND["Pod"])
    finally:
        reader.close()
        server.close()
    assert [i["metadata"]["name"] for i in items] == ["p1", "p2"]
    assert all(i["kind"] == "Pod" for i in items)
    lines = [s.split(b"\r\n") for s in seen]
    assert [ln[0] for ln in lines] == [b"GET /api/v1/pods?limit=1 HTTP/1.1", b"GET /api/v1/pods?limit=1&continue=next%20page HTTP/1.1"]
    assert all(b"authorization: bearer t0ken-for-the-test" in [h.lower() for h in ln] for ln in lines)
    assert server.connections == 1


def test_an_answer_larger_than_a_page_can_be_is_an_error(monkeypatch):
    monkeypatch.setattr(kube_api, "MAX_BODY", 64)

    def big(conn, data, stop):
        body = b"{" + b" " * 200 + b"}"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    server = LoopbackServer(big)
    transport = ApiTransport(configuration(server.url), (TIMEOUT_S, TIMEOUT_S))
    try:
        with pytest.raises(ApiCallError, match="larger than"):
            transport.call("GET", "/api/v1/pods")
    finally:
        transport.close()
        server.close()


def test_a_refused_api_server_names_the_fault():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    reader = LiveReader(configuration(url), timeout_s=TIMEOUT_S)
    with pytest.raises(K8sReadError, match="connection refused"):
        reader.list(BY_KIND["Pod"])


def test_a_proxy_in_the_kubeconfig_goes_through_the_kubernetes_client():
    cfg = configuration("https://127.0.0.1:6443")
    cfg.proxy = "http://127.0.0.1:3128"
    transport = ApiTransport(cfg, (TIMEOUT_S, TIMEOUT_S))
    assert not transport.bounded and "HTTP proxy" in transport.why_not_bounded
    assert ApiTransport(configuration("https://127.0.0.1:6443"), (TIMEOUT_S, TIMEOUT_S)).bounded


def test_tls_server_name_checks_the_certificate_against_that_name(tmp_path):
    """An API server dialled by its address whose certificate names only ``kubernetes.default`` (a kubeconfig's
    tls-server-name): verified against that name and the cluster's CA, over a real TLS handshake; without the
    name the same server is refused."""
    ca = pki.create_ca(tmp_path, "test cluster CA")
    cert = pki.issue(ca, tmp_path, "apiserver", ["kubernetes.default"])
    server = TestTlsServer("127.0.0.1", cert, minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.MAXIMUM_SUPPORTED, status=200)
    try:
        cfg = configuration(server.url)
        cfg.ssl_ca_cert = str(ca.cert)
        with pytest.raises(ApiCallError, match="TLS handshake failed"):
            ApiTransport(cfg, (TIMEOUT_S, TIMEOUT_S)).call("GET", "/version")
        cfg.tls_server_name = "kubernetes.default"
        transport = ApiTransport(cfg, (TIMEOUT_S, TIMEOUT_S))
        assert transport.bounded
        status, _ = transport.call("GET", "/version")
        transport.close()
    finally:
        server.close()
    assert status == 200 and server.requests


def test_the_tls_settings_follow_the_kubeconfig():
    cfg = configuration("https://127.0.0.1:6443")
    cfg.verify_ssl = False
    ctx = kube_api.ssl_context_of(cfg)
    assert not ctx.check_hostname and ctx.verify_mode.name == "CERT_NONE"
    cfg.verify_ssl = True
    ctx = kube_api.ssl_context_of(cfg)
    assert ctx.check_hostname and ctx.verify_mode.name == "CERT_REQUIRED"


def test_a_client_certificate_that_cannot_be_read_is_the_request_s_error_not_a_crash(tmp_path):
    cfg = configuration("https://127.0.0.1:6443")
    cfg.cert_file, cfg.key_file = str(tmp_path / "gone.crt"), str(tmp_path / "gone.key")
    reader = LiveReader(cfg, timeout_s=TIMEOUT_S)
    with pytest.raises(K8sReadError, match="TLS settings cannot be used: FileNotFoundError"):
        reader.list(BY_KIND["Pod"])
