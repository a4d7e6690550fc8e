"""The bounded HTTP client against real misbehaving sockets: every fault is an incomplete attempt, in bounded time."""

from __future__ import annotations

import socket
import time

import pytest

from nimwarden.errors import OutOfScope
from nimwarden.net.http import Limits, request, tcp_connect
from tests.conftest import LoopbackServer, dead_port

LIMITS = Limits(connect_s=1.0, read_s=1.0)


def Misbehaving(behave):  # noqa: N802 - reads as the server it makes
    """A loopback server whose every connection runs ``behave(conn, stop)`` once the request is read, then closes."""
    def once(conn, data, stop):
        behave(conn, stop)
        return False

    return LoopbackServer(once)


def slow(conn, stop):
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100:
        if stop.is_set():
            return
        conn.send(bytes([byte]))
        time.sleep(0.4)  # faster than the read timeout, slower than the deadline allows


def hang(conn, stop):
    stop.wait(10)


def reset(conn, stop):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def garbage(conn, stop):
    conn.send(b"\x16\x03\x01\x02\x00garbage-not-http\r\n\r\n")


def good(conn, stop):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")


@pytest.mark.parametrize(
    "behave, words",
    [(slow, "deadline"), (hang, "no answer"), (reset, "reset"), (garbage, "not valid HTTP")],
)
def test_faults_become_errors_within_the_deadline(behave, words):
    server = Misbehaving(behave)
    try:
        t0 = time.monotonic()
        attempt = request("GET", f"http://127.0.0.1:{server.port}/v2", probe="test", limits=LIMITS)
        took = time.monotonic() - t0
    finally:
        server.close()
    assert not attempt.completed
    assert words in attempt.error, attempt.error
    # Unbounded, the slow server would take about a minute (140 bytes at 0.4 s); 2 s of slack absorbs a
    # scheduler that lost the CPU to the hypervisor (seen: 3.3 s against a 2 s deadline under heavy steal).
    assert took < LIMITS.deadline_s + 2.0, took


def test_good_answer_is_an_observation():
    server = Misbehaving(good)
    try:
        attempt = request("GET", f"http://127.0.0.1:{server.port}/v2", probe="test", limits=LIMITS)
    finally:
        server.close()
    assert attempt.completed and attempt.observation.status == 200 and attempt.observation.json() == {"ok": True}


def test_refused_and_unresolvable():
    refused = request("GET", f"http://127.0.0.1:{dead_port()}/", probe="test", limits=LIMITS)
    assert refused.error.startswith("connection refused")
    unresolved = request("GET", "http://no-such-host.invalid:80/", probe="test", limits=LIMITS)
    assert "does not resolve" in unresolved.error
    assert tcp_connect("127.0.0.1", dead_port(), probe="t", limits=LIMITS).observation == "closed"


def test_out_of_scope_is_refused_before_any_packet():
    contacted = []

    def guard(host):
        contacted.append(host)
        raise OutOfScope(f"{host} is outside the scope")

    attempt = request("GET", "http://192.0.2.1:80/", probe="test", limits=LIMITS, guard=guard)
    assert attempt.error.startswith("refused:") and attempt.elapsed_s < 0.5
    assert contacted == ["192.0.2.1"]
