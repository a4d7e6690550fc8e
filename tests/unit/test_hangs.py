"""An endpoint that hangs is not asked again and again (nimwarden.net.hangs): after ``give_up_after`` consecutive
requests without an answer in time, the next ones are errors at once, saying so; never a pass, never silent."""

from __future__ import annotations

import time

import pytest

from nimwarden.errors import OutOfScope
from nimwarden.families.gateway import probe as gw
from nimwarden.net import hangs
from nimwarden.net.http import Connection, ExchangeError, Limits, request


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_third_hang_in_a_row_stops_the_next_requests_and_an_answer_clears_it():
    clock = Clock()
    for _ in range(2):
        hangs.record("10.0.0.1", 8000, 3, True, "no answer within 5s (timed out)", clock)
    assert hangs.not_sent("10.0.0.1", 8000, 3, clock) is None
    hangs.record("10.0.0.1", 8000, 3, True, "no answer within 5s (timed out)", clock)
    why = hangs.not_sent("10.0.0.1", 8000, 3, clock)
    assert why.startswith("not sent: 10.0.0.1:8000 gave no answer in time to the last 3 request(s) "
                          "(the first: no answer within 5s (timed out)); nimwarden stops asking an endpoint that hangs")
    assert "timeouts.give_up_after: 3" in why and "refused" not in why  # judges read "refused" as a closed port
    assert hangs.not_sent("10.0.0.1", 8001, 3, clock) is None  # another port of the host: asked
    assert hangs.not_sent("10.0.0.2", 8000, 3, clock) is None
    clock.now += hangs.RETRY_S
    assert hangs.not_sent("10.0.0.1", 8000, 3, clock) is None  # one request is let through again a minute later
    assert hangs.not_sent("10.0.0.1", 8000, 3, clock) is not None  # and only one
    hangs.record("10.0.0.1", 8000, 3, False, clock=clock)  # it was answered
    assert hangs.not_sent("10.0.0.1", 8000, 3, clock) is None


def test_a_fast_failure_in_between_starts_the_count_again_and_zero_turns_it_off():
    clock = Clock()
    for hung in (True, True, False, True, True):
        hangs.record("h", 1, 3, hung, "x", clock)
    assert hangs.not_sent("h", 1, 3, clock) is None
    for _ in range(10):
        hangs.record("h", 2, 0, True, "x", clock)
    assert hangs.not_sent("h", 2, 0, clock) is None and hangs.not_sent("h", 2, 3, clock) is None


def test_a_hung_server_is_asked_give_up_after_times_then_not_again(hanging_server):
    server = hanging_server
    limits = Limits(connect_s=0.5, read_s=0.5, give_up_after=2)
    url = f"http://127.0.0.1:{server.port}"
    took, errors = [], []
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/repository/index", "/v2/logging"):
        t0 = time.monotonic()
        got = request("GET", url + path, probe="test", limits=limits)
        took.append(time.monotonic() - t0)
        errors.append(got.error)
    with pytest.raises(ExchangeError, match="^not sent:"):  # the keep-alive client (the gateway's) is not sent either
        Connection(url, limits=limits).exchange("GET", "/v1/models")
    gateway = gw.probe_internal_paths(url, timeout=limits)  # the gateway probe, with the profile's limits
    assert gateway.error.startswith(f"not sent: 127.0.0.1:{server.port}") and gateway.elapsed_s < 0.05
    assert [e.split(" (")[0] for e in errors[:2]] == ["no answer within 0.5s"] * 2, errors
    assert all(e.startswith(f"not sent: 127.0.0.1:{server.port} gave no answer in time to the last 2 request(s)") for e in errors[2:])
    assert min(took[:2]) >= 0.4 and max(took[2:]) < 0.05, took
    assert len(server.conns) == 2


def test_without_give_up_after_every_request_waits_out_its_deadline(hanging_server):
    for _ in range(3):
        got = request("GET", f"http://127.0.0.1:{hanging_server.port}/", probe="test", limits=Limits(0.5, 0.5))
        assert got.error.startswith("no answer")
    assert len(hanging_server.conns) == 3


def test_a_request_out_of_scope_is_not_counted():
    def guard(host):
        raise OutOfScope(f"{host} is outside the scope")

    limits = Limits(0.5, 0.5, give_up_after=1)
    for _ in range(3):
        got = request("GET", "http://192.0.2.1:80/", probe="test", limits=limits, guard=guard)
        assert got.error.startswith("refused:")


def test_a_tls_endpoint_that_hangs_is_one_handshake_not_a_scan(hanging_server):
    from nimwarden.families.tls.probe import probe_tls

    t0 = time.monotonic()
    first = probe_tls("127.0.0.1", hanging_server.port, timeout_s=1.0, cached=False, give_up_after=1)
    took = time.monotonic() - t0
    assert first.error == (f"TlsProbeError: no TLS handshake with 127.0.0.1:{hanging_server.port} within 1s: it accepts "
                           "connections and does not answer (not scanned)")
    assert took < 1.0 + 2.0, took  # sslyze's connectivity test alone would take about ten times the timeout
    again = probe_tls("127.0.0.1", hanging_server.port, timeout_s=1.0, cached=False, give_up_after=1)
    assert "not sent: 127.0.0.1" in again.error and again.elapsed_s < 0.05
    assert len(hanging_server.conns) == 1
