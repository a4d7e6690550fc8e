"""Keep-alive exchanges (the gateway probe's session, the performance family's metrics scrape) are bounded like
the one-shot client: a server that sends its answer a byte at a time, for ever, is cut off at connect_s + read_s.

Each server is a real socket on loopback. The trickling one sends a chunked body one byte every 0.3 s: a read
timeout (1 s) never trips on it, so only a deadline over the whole exchange ends the call."""

from __future__ import annotations

import socket
import time

import pytest

from nimwarden.families.gateway import probe as gw
from nimwarden.families.gateway.session import ProbeSession
from nimwarden.families.nim_api import probe as nim
from nimwarden.families.performance import metrics
from nimwarden.net.http import Connection, ExchangeError, Limits
from tests.conftest import LoopbackServer

LIMITS = Limits(connect_s=1.0, read_s=1.0)
SLACK_S = 2.0  # a scheduler that lost the CPU to the hypervisor (see test_http_probe)
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def keep_alive(conn, data, stop):
    conn.sendall(OK)


def answer_once(conn, data, stop):  # answers, then closes the connection without saying so
    conn.sendall(OK)
    return False


def trickle(conn, data, stop):  # headers at once, then a chunked body one byte every 0.3 s (for 10 s: a client
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")  # without a deadline fails, not hangs)
    for _ in range(33):
        if stop.wait(0.3):
            break
        conn.sendall(b"1\r\nx\r\n")
    return False


def trickle_headers(conn, data, stop):  # the status line and headers themselves a byte every 0.3 s
    for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"y" * 200:
        if stop.wait(0.3):
            return False
        conn.sendall(bytes([byte]))
    return False


def short_body(conn, data, stop):  # announces 17 bytes, sends 16, closes
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"ready\": true, ")
    return False


@pytest.fixture
def server(request):
    s = LoopbackServer(request.param)
    yield s
    s.close()


@pytest.mark.parametrize("server", [keep_alive], indirect=True)
def test_exchanges_share_one_connection(server):
    conn = Connection(server.url, limits=LIMITS)
    try:
        answers = [conn.exchange("GET", f"/v2/{i}") for i in range(5)]
    finally:
        conn.close()
    assert [a.status for a in answers] == [200] * 5 and answers[-1].body == b"ok"
    assert server.connections == 1


@pytest.mark.parametrize("server", [answer_once], indirect=True)
def test_a_connection_the_server_closed_is_opened_again(server):
    conn = Connection(server.url, limits=LIMITS)
    try:
        answers = []
        for i in range(3):
            answers.append(conn.exchange("GET", f"/v2/{i}"))
            time.sleep(0.1)  # the server's close reaches the client while the connection is idle
    finally:
        conn.close()
    assert [a.status for a in answers] == [200] * 3
    assert server.connections == 3


@pytest.mark.parametrize("server", [trickle, trickle_headers], indirect=True)
def test_a_server_that_answers_a_byte_at_a_time_is_cut_off_at_the_deadline(server):
    conn = Connection(server.url, limits=LIMITS)
    t0 = time.monotonic()
    with pytest.raises(ExchangeError, match="deadline"):
        conn.exchange("GET", "/metrics")
    took = time.monotonic() - t0
    conn.close()
    assert LIMITS.deadline_s - 0.1 < took < LIMITS.deadline_s + SLACK_S, took


@pytest.mark.parametrize("server", [trickle], indirect=True)
def test_the_gateway_probe_ends_at_the_deadline_with_an_error_naming_it(server):
    t0 = time.monotonic()
    got = gw.probe_internal_paths(server.url, ("/v2/repository/index", "/metrics"), timeout=(1.0, 1.0))
    took = time.monotonic() - t0
    assert not got.completed
    assert got.error.startswith("no complete answer within the 2s deadline"), got.error
    assert took < LIMITS.deadline_s + SLACK_S, took  # the first path's deadline ends the probe


@pytest.mark.parametrize("server", [trickle], indirect=True)
def test_the_metrics_scrape_ends_at_the_deadline(server):
    t0 = time.monotonic()
    with pytest.raises(metrics.ScrapeError, match="deadline"):
        metrics.failure_total(server.url + "/metrics", timeout_s=1.0)
    assert time.monotonic() - t0 < 1.0 + 1.0 + SLACK_S


@pytest.mark.parametrize("server", [keep_alive], indirect=True)
def test_the_gateway_session_sends_json_and_keeps_its_connection(server):
    seen = []
    server.answer = lambda conn, data, stop: (seen.append(data), conn.sendall(OK))
    with ProbeSession() as s:
        first = s.probe("POST", server.url + "/v1/completions", headers={"Authorization": "Bearer t"}, timeout=(1.0, 1.0),
                        body={"prompt": "ping"})
        second = s.probe("GET", server.url + "/v1/models?x=1", headers={}, timeout=(1.0, 1.0))
        assert s.tls_note() is None  # plain HTTP
    assert (first.status_code, second.status_code) == (200, 200) and first.headers["content-type"] == "text/plain"
    assert seen[0].startswith(b"POST /v1/completions HTTP/1.1") and b"Content-Type: application/json" in seen[0]
    assert seen[0].endswith(b'{"prompt": "ping"}') and seen[1].startswith(b"GET /v1/models?x=1 HTTP/1.1")
    assert server.connections == 1


@pytest.mark.parametrize("server", [short_body], indirect=True)
def test_an_answer_cut_short_is_an_error_not_an_answer(server):
    conn = Connection(server.url, limits=LIMITS)
    with pytest.raises(ExchangeError) as err:
        conn.exchange("GET", "/v1/health/ready")
    assert str(err.value) == "connection closed in the middle of the response (IncompleteRead: 16 bytes read, 1 more expected)"


@pytest.mark.parametrize("server", [trickle], indirect=True)
def test_the_nim_probe_ends_at_the_deadline_with_an_error_naming_it(server):
    t0 = time.monotonic()
    got = nim.probe_nim(server.url, timeout=(1.0, 1.0))
    assert got.error.startswith("no complete answer within the 2s deadline"), got.error
    assert time.monotonic() - t0 < LIMITS.deadline_s + SLACK_S


@pytest.mark.parametrize("server", [keep_alive], indirect=True)
def test_the_nim_probe_asks_every_path_on_one_connection_and_the_preflight_reads_its_headers(server):
    def answer(conn, data, stop):
        if data.startswith(b"OPTIONS"):
            conn.sendall(b"HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\n"
                         b"Access-Control-Allow-Credentials: true\r\nContent-Length: 0\r\n\r\n")
        elif b" /v1/metadata " in data:
            body = b'{"version": "1.8.4", "licenseInfo": "x"}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        else:
            conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")

    server.answer = answer
    got = nim.probe_nim(server.url + "/", timeout=(1.0, 1.0))
    assert got.completed, got.error
    statuses = {a.path: a.status for a in got.observation.answers}
    assert statuses.pop("/v1/metadata") == 200 and set(statuses.values()) == {401} and len(statuses) == len(nim.NIM_PATHS) - 1
    assert got.observation.reachable("metadata")[0].disclosed == {"fields": ["licenseInfo", "version"], "licenseInfo": "x",
                                                                  "version": "1.8.4"}
    assert server.connections == 1
    cors = nim.probe_cors(server.url, timeout=(1.0, 1.0))
    assert (cors.observation.status, cors.observation.allow_origin, cors.observation.allow_credentials) == (204, "*", True)


def test_a_refused_gateway_names_the_fault():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    got = gw.probe_burst(url, timeout=(1.0, 1.0))
    assert got.error == "connection refused (nothing listening)"
