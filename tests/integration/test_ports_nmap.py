"""The port probe against real listeners with the real nmap (loopback only)."""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import replace

import pytest

from nimwarden.families.ports import probe as ports
from nimwarden.families.ports.judge import judge_expected, judge_position, judge_undocumented
from nimwarden.net.scope import guard_for
from nimwarden.outcome import Status

pytestmark = pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed (Debian package nmap)")

HOST = "127.0.0.61"  # an address of its own, so other loopback listeners stay out of the picture


@pytest.fixture
def listeners():
    socks = []
    for _ in range(2):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, 0))
        s.listen(8)
        socks.append(s)
    yield [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()


def _plan(open_ports, documented_port, scan_spec, identify=False):
    table = ports.load_port_table().extended(
        ports.rows_from([{"port": documented_port, "service": "lab gateway", "reachable_from": ["external"]}]), "test")
    return ports.PortPlan((HOST,), scan_spec, table.udp_ports(), "external", "triton", table,
                          ((HOST, documented_port, "gateway"),), identify, ports.ScanLimits(host_timeout_s=30, version_timeout_s=5))


def test_real_scan_finds_listeners_and_judges_them(listeners):
    documented, undocumented = listeners
    plan = _plan(listeners, documented, ports.port_spec({documented, undocumented, 1}), identify=True)
    a = ports.probe_plan(plan, guard_for(["127.0.0.0/8"]))
    assert a.completed, a.error
    found = {(p.port, p.proto) for p in a.observation.open_ports}
    assert {(documented, "tcp"), (undocumented, "tcp")} <= found
    assert (1, "tcp") not in found
    assert a.observation.scan_s > 0 and "--host-timeout 30s" in a.observation.command
    assert "--max-retries 1" in a.observation.command and "-T4" in a.observation.command
    out = judge_undocumented(a, plan)
    assert out.status is Status.FAIL and f"{HOST}:{undocumented}/tcp" in out.reason
    assert str(documented) not in out.reason.replace(str(undocumented), "")
    assert judge_expected(a, plan).status is Status.PASS
    if os.geteuid() == 0:
        assert a.observation.udp_scanned and 6831 in a.observation.udp_ports
        assert judge_position(a, plan).status is Status.PASS


def test_expected_port_closed_is_a_finding(listeners):
    documented = listeners[0]
    plan = _plan(listeners, 1, ports.port_spec({documented, 1}))
    a = ports.probe_plan(plan, guard_for([HOST]))
    out = judge_expected(a, plan)
    assert out.status is Status.FAIL and f"{HOST}:1/tcp" in out.reason


def test_an_expected_port_the_scan_did_not_see_open_gets_a_second_look(listeners):
    """A fast scan on a busy machine can lose an answer. An expected endpoint it did not see open is scanned again
    alone before it is called closed: here the first scan cannot see it (it is not in the scanned range), the
    second does, and the evidence says so. A port that stays closed is still a finding."""
    documented, other = listeners
    plan = _plan(listeners, documented, ports.port_spec({other, 1}))
    a = ports.probe_plan(plan, guard_for([HOST]))
    assert a.completed, a.error
    assert (documented, "tcp") in {(p.port, p.proto) for p in a.observation.open_ports}
    # The service in brackets is nmap's name for the port number (a free port can be one nmap names: turbonote-1)
    [second] = a.observation.evidence()["open_on_a_second_look"]
    assert second.startswith(f"{HOST}:{documented}/tcp (") and second.endswith(")"), second
    assert judge_expected(a, plan).status is Status.PASS
    closed = _plan(listeners, 1, ports.port_spec({other}))
    b = ports.probe_plan(closed, guard_for([HOST]))
    assert b.completed and "open_on_a_second_look" not in b.observation.evidence()
    assert judge_expected(b, closed).status is Status.FAIL


def test_missing_nmap_binary_is_an_error_not_a_pass(listeners, monkeypatch):
    plan = replace(_plan(listeners, listeners[0], str(listeners[0])), limits=ports.ScanLimits(nmap="/nonexistent/nmap"))
    a = ports.probe_plan(plan, guard_for([HOST]))
    assert not a.completed
    for judge in (judge_undocumented, judge_position, judge_expected):
        assert judge(a, plan).status is Status.ERROR


def test_host_timeout_is_an_error_never_an_empty_pass(listeners):
    """nmap reports a timed-out host as up with no ports, like a closed one: it must not pass."""
    plan = _plan(listeners, listeners[0], "1-65535")
    plan = replace(plan, limits=ports.ScanLimits(timing=2, host_timeout_s=1))
    a = ports.probe_plan(plan, guard_for([HOST]))
    assert not a.completed and "host timeout" in a.error
    for judge in (judge_undocumented, judge_position, judge_expected):
        assert judge(a, plan).status is Status.ERROR


def test_host_with_nothing_open_is_a_result_not_an_error():
    plan = ports.PortPlan(("127.0.0.65",), "1-1024", (), "external", "triton", ports.load_port_table(),
                          (("127.0.0.65", 443, "gateway"),), False, ports.ScanLimits())
    a = ports.probe_plan(plan, guard_for(["127.0.0.65/32"]))
    assert a.completed and a.observation.open_ports == ()
    assert judge_undocumented(a, plan).status is Status.PASS
    assert judge_expected(a, plan).status is Status.FAIL


@pytest.mark.skipif(os.geteuid() != 0, reason="nmap's UDP scan needs root")
def test_listening_otel_udp_port_is_not_passed_and_a_closed_one_is():
    plan = ports.PortPlan(("127.0.0.66",), "1", (6831,), "external", "triton", ports.load_port_table(), (), False,
                          ports.ScanLimits())
    guard = guard_for(["127.0.0.66/32"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.66", 6831))
        out = judge_position(ports.probe_plan(plan, guard), plan)
        assert out.status is Status.ERROR and "6831/udp" in out.reason  # silent UDP = open|filtered: unknown, never pass
    assert judge_position(ports.probe_plan(plan, guard), plan).status is Status.PASS


@pytest.fixture
def lossy_netns(tmp_path):
    """A network namespace of this test's own, with nmap run inside it through a wrapper: whatever its iptables
    drop is lost to the scan, the way a busy machine loses a reply."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("iptables") is None:
        pytest.skip("needs root, ip and iptables (a network namespace of the test's own)")
    import subprocess

    ns = f"nwt-lossy-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, capture_output=True)
        wrapper = tmp_path / "nmap-in-netns"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns} {shutil.which("nmap")} "$@"\n')
        wrapper.chmod(0o755)

        def iptables(*rule: str) -> None:
            subprocess.run(["ip", "netns", "exec", ns, "iptables", *rule], check=True, capture_output=True, timeout=10)

        yield ns, str(wrapper), iptables
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _listener_in(ns: str) -> socket.socket:
    from nimwarden.lab.netns import socket_in_netns

    s = socket_in_netns(ns)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


def _lossy_plan(nmap: str, spec: str, documented: int = 1):
    table = ports.load_port_table().extended(
        ports.rows_from([{"port": documented, "service": "lab gateway", "reachable_from": ["external"]}]), "test")
    return ports.PortPlan(("127.0.0.1",), spec, (), "external", "triton", table, (), False,
                          ports.ScanLimits(host_timeout_s=30, nmap=nmap))


def test_an_undeclared_port_whose_answer_was_lost_is_still_found(lossy_netns):
    """The first SYNs to an open, undeclared port are dropped (the first scan's two probes: a lost reply reads as
    "filtered"); the second look at the ports that gave no answer finds it open, and PORTS-UNDECLARED fails on it.
    Before, the port passed as not open."""
    ns, nmap, iptables = lossy_netns
    s = _listener_in(ns)
    try:
        port = s.getsockname()[1]
        iptables("-A", "INPUT", "-p", "tcp", "--dport", str(port), "--syn", "-m", "quota", "--quota", "100", "-j", "DROP")
        plan = _lossy_plan(nmap, f"{port - 20}-{port + 20}")
        a = ports.probe_plan(plan, guard_for(["127.0.0.1/32"]))
        assert a.completed, a.error
        out = judge_undocumented(a, plan)
        assert out.status is Status.FAIL and f"127.0.0.1:{port}/tcp" in out.reason, out.reason
        evidence = a.observation.evidence()
        assert evidence["unanswered_looked_at_again"] == 1, evidence
        assert evidence["open_on_a_second_look"] == [f"127.0.0.1:{port}/tcp (unknown)"]
    finally:
        s.close()


def test_a_port_that_never_answers_stays_filtered_and_a_filtering_host_is_not_rescanned(lossy_netns, monkeypatch):
    """A port a firewall drops every time is looked at again and stays not open (nothing listens: a pass); a host
    that drops more ports than LOOK_AGAIN_MAX (3 here, 256 in use) is a filtering host: those ports are counted,
    not scanned again."""
    ns, nmap, iptables = lossy_netns
    iptables("-A", "INPUT", "-p", "tcp", "--dport", "20001", "--syn", "-j", "DROP")
    plan = _lossy_plan(nmap, "20000-20010")
    a = ports.probe_plan(plan, guard_for(["127.0.0.1/32"]))
    assert a.completed, a.error
    assert a.observation.evidence()["unanswered_looked_at_again"] == 1
    assert "open_on_a_second_look" not in a.observation.evidence()
    assert judge_undocumented(a, plan).status is Status.PASS
    monkeypatch.setattr(ports, "LOOK_AGAIN_MAX", 3)
    iptables("-A", "INPUT", "-p", "tcp", "--dport", "21000:21004", "--syn", "-j", "DROP")
    plan = _lossy_plan(nmap, "21000-21010")
    b = ports.probe_plan(plan, guard_for(["127.0.0.1/32"]))
    assert b.completed, b.error
    assert b.observation.evidence()["unanswered_not_looked_at_again"] == {"127.0.0.1": 5}
    assert "unanswered_looked_at_again" not in b.observation.evidence()
