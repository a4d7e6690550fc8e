"""Port table, scope guard and port judges (pure parts; the real nmap runs in tests/integration)."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from types import SimpleNamespace

import pytest

from nimwarden.errors import OutOfScope
from nimwarden.families.ports import probe as ports
from nimwarden.families.ports.judge import judge_expected, judge_position, judge_undocumented
from nimwarden.families.ports.probe import OpenPort, PortScanObservation, ScanLimits
from nimwarden.net import scope
from nimwarden.outcome import Attempt, Status

SEED_TCP = {443, 3000, 7331, 8000, 8443, 8080, 9009, 5432, 9091, 19530, 4317, 4318, 9411, 14250, 14268}


def test_seed_table_holds_every_row_of_the_seed_documents_and_the_server_defaults():
    table = ports.load_port_table("seed")
    assert SEED_TCP | {8001, 8002, 50051} <= set(table.tcp_ports())
    assert table.udp_ports() == (6831,)
    assert len([r for r in table.rows if r.port == 5432]) == 4  # four databases share the port
    assert table.version.startswith("seed ")


def test_current_table_is_the_seed_with_nvidias_changes_since():
    seed, current = ports.load_port_table("seed"), ports.load_port_table("current")
    assert current.version.startswith("current ") and current.version != seed.version
    services = {(r.port, r.service) for r in current.rows}
    assert (8443, "NeMo Operator metrics") not in services  # the operator's metrics moved to HTTP 8080
    assert any(p == 8080 and "NIM Operator metrics" in s for p, s in services)
    assert any(p == 8080 and "NeMo Platform" in s for p, s in services)
    assert any(p == 9000 and "OpenAI" in s for p, s in services)
    assert set(seed.tcp_ports()) - {8443} <= set(current.tcp_ports())
    with pytest.raises(ValueError, match="options.ports.table"):
        ports.load_port_table("nope")


@pytest.mark.parametrize("name", ["seed", "current"])
def test_only_the_api_port_may_be_reachable_from_outside(name):
    table = ports.load_port_table(name)
    external = {(r.port, r.kinds) for r in table.rows if "external" in r.reachable_from}
    assert {p for p, _ in external} == {8000}
    assert not [r for r in table.rows_for(8000, "tcp", "nemo") if "external" in r.reachable_from]


@pytest.fixture
def no_nmap(monkeypatch):
    """Any attempt to build a scanner or start a process fails the test: nothing may leave."""
    import nmap

    def boom(*a, **k):
        raise AssertionError("nmap was started for an out-of-scope host")

    monkeypatch.setattr(nmap, "PortScanner", boom)
    monkeypatch.setattr(subprocess, "Popen", boom)


@pytest.mark.parametrize("hosts", [["10.0.0.1"], ["127.0.0.1", "192.168.1.1"], ["127.0.0.0/8"],
                                   ["localhost"], ["-iL/etc/passwd"], ["127.0.0.1-5"], []])
def test_out_of_scope_hosts_are_refused_before_nmap_starts(hosts, no_nmap):
    guard = scope.guard_for(["127.0.0.0/8"])
    with pytest.raises(OutOfScope):
        ports.probe_ports(hosts, guard=guard, tcp_ports="80")
    with pytest.raises(OutOfScope):
        ports.scan(hosts, guard=guard, tcp_ports="80")


def test_port_spec_injection_is_refused(no_nmap):
    with pytest.raises(OutOfScope):
        ports.scan(["127.0.0.1"], guard=scope.guard_for(["127.0.0.1/32"]), tcp_ports="80 --script=evil")


def test_port_spec_round_trip():
    assert ports.port_spec(ports.parse_port_spec("1-3,2,8000,8001,10")) == "1-3,10,8000-8001"


def _obs(*open_ports, udp=True):
    return PortScanObservation(("127.0.0.2",), "1-65535", (6831,), udp, "scanned" if udp else "UDP scan needs root: not scanned",
                               tuple(open_ports), "nmap …", "7.93", 0.5, 0.4)


def _plan(position="external", expected=(("127.0.0.2", 8443, "gateway"),)):
    table = ports.load_port_table().extended(
        ports.rows_from([{"port": 8443, "service": "gateway", "reachable_from": ["external", "cluster-internal"]}]), "t")
    return ports.PortPlan(("127.0.0.2",), "1-65535", (6831,), position, "triton", table, expected, False, ScanLimits())


def _ok(obs):
    return Attempt("ports.nmap", "nmap", obs, None, 0.5)


BROKEN = Attempt("ports.nmap", "nmap", None, "nmap program was not found in path", 0.0)


def test_undocumented_good_bad_broken():
    plan = _plan()
    assert judge_undocumented(_ok(_obs(OpenPort("127.0.0.2", 8443, "tcp", "open"))), plan).status is Status.PASS
    out = judge_undocumented(_ok(_obs(OpenPort("127.0.0.2", 31337, "tcp", "open", "http", "nginx"))), plan)
    assert out.status is Status.FAIL and "127.0.0.2:31337/tcp (nginx)" in out.reason
    assert judge_undocumented(BROKEN, plan).status is Status.ERROR


def test_position_good_bad_broken():
    plan = _plan()
    assert judge_position(_ok(_obs(OpenPort("127.0.0.2", 8000, "tcp", "open"))), plan).status is Status.PASS
    out = judge_position(_ok(_obs(OpenPort("127.0.0.2", 8002, "tcp", "open"), OpenPort("127.0.0.2", 5432, "tcp", "open"))), plan)
    assert out.status is Status.FAIL and "Triton metrics" in out.reason and "PostgreSQL" in out.reason
    assert judge_position(BROKEN, plan).status is Status.ERROR
    # the same ports are fine from inside the cluster
    inside = _plan("cluster-internal")
    assert judge_position(_ok(_obs(OpenPort("127.0.0.2", 8002, "tcp", "open"))), inside).status is Status.PASS


def test_position_errors_when_documented_udp_could_not_be_scanned():
    out = judge_position(_ok(_obs(udp=False)), _plan())
    assert out.status is Status.ERROR and "6831" in out.reason


def test_otel_udp_from_outside_fails():
    out = judge_position(_ok(_obs(OpenPort("127.0.0.2", 6831, "udp", "open"))), _plan())
    assert out.status is Status.FAIL and "6831/udp" in out.reason


def test_expected_good_bad_broken():
    plan = _plan()
    assert judge_expected(_ok(_obs(OpenPort("127.0.0.2", 8443, "tcp", "open"))), plan).status is Status.PASS
    out = judge_expected(_ok(_obs()), plan)
    assert out.status is Status.FAIL and "gateway 127.0.0.2:8443/tcp" in out.reason
    assert judge_expected(BROKEN, plan).status is Status.ERROR
    assert judge_expected(_ok(_obs()), _plan(expected=())).status is Status.ERROR


def test_plan_from_a_profile_scans_only_the_exposed_hosts():
    ep = lambda name, url, host, port: SimpleNamespace(name=name, url=url, host=host, port=port)  # noqa: E731
    dep = SimpleNamespace(
        name="hardened", kind="triton", exposure=("gateway",), options={"ports": {"tcp_ports": "8000-9000"}},
        endpoints={"http": ep("http", "http://127.0.0.1:18000", "127.0.0.1", 18000),
                   "gateway": ep("gateway", "https://127.0.0.2:18443", "127.0.0.2", 18443)})
    target = SimpleNamespace(name="lab", probe_position="external", options={})
    p = ports.plan(target, dep)
    assert p.hosts == ("127.0.0.2",)
    assert p.expected_open == (("127.0.0.2", 18443, "gateway"),)
    assert {443, 5432, 18443} <= ports.parse_port_spec(p.tcp_ports)
    assert [r.reachable_from for r in p.table.rows_for(18443, "tcp")] == [("external", "cluster-internal")]


def test_wildcard_listener_of_another_deployment_is_attributed_to_it_not_judged_here():
    plan = _plan()
    plan = replace(plan, others={40001: "exposed"})
    obs = _obs(OpenPort("127.0.0.2", 8443, "tcp", "open"), OpenPort("127.0.0.2", 40001, "tcp", "open"))
    for judge in (judge_undocumented, judge_position):
        out = judge(_ok(obs), plan)
        assert out.status is Status.PASS, out.reason
        assert out.evidence["attributed_to_other_deployments"] == ["127.0.0.2:40001/tcp (unknown) -> exposed"]
    # a port of no deployment at all is still this deployment's finding
    stray = _obs(OpenPort("127.0.0.2", 40002, "tcp", "open"))
    assert judge_undocumented(_ok(stray), plan).status is Status.FAIL


def test_udp_open_filtered_on_an_internal_port_is_an_error_not_a_pass():
    out = judge_position(_ok(_obs(OpenPort("127.0.0.2", 6831, "udp", "open|filtered"))), _plan())
    assert out.status is Status.ERROR and "6831/udp" in out.reason


# nmap's XML, written to the shape nmap 7.9x gives (a host, ports one by one, and ports folded into extraports)
_XML = """<?xml version="1.0"?><nmaprun><host><status state="up"/><address addr="10.0.0.5" addrtype="ipv4"/>
<ports><extraports state="closed" count="60"><extrareasons reason="reset" count="60" proto="tcp" ports="1-60"/></extraports>
<extraports state="filtered" count="30"><extrareasons reason="no-response" count="30" proto="tcp" ports="100-128,140"/></extraports>
<port protocol="tcp" portid="8000"><state state="filtered" reason="no-response" reason_ttl="0"/></port>
<port protocol="tcp" portid="8001"><state state="filtered" reason="admin-prohibited" reason_ttl="64"/></port>
<port protocol="udp" portid="6831"><state state="open|filtered" reason="no-response" reason_ttl="0"/></port>
<port protocol="tcp" portid="8080"><state state="open" reason="syn-ack" reason_ttl="64"/></port>
</ports></host>{more}</nmaprun>"""
_OLD_NMAP = """<host><address addr="10.0.0.6" addrtype="ipv4"/><ports><extraports state="filtered" count="7">
<extrareasons reason="no-response" count="7"/></extraports></ports></host>"""


def test_unanswered_tcp_ports_are_read_whether_listed_or_folded():
    """Only TCP ports with no answer at all: not the ones a firewall refused (admin-prohibited), not UDP, not open.
    An nmap that folds them without naming them gives a count."""
    from nimwarden.families.ports.scanner import unanswered

    got = unanswered(_XML.format(more=_OLD_NMAP))
    assert got["10.0.0.5"] == ([*range(100, 129), 140, 8000], 0)
    assert got["10.0.0.6"] == ([], 7)
    assert unanswered("<not xml") == {}


class _TimesOut:
    """Stands in for python-nmap's PortScanner on a second look that nmap gave up on (its XML says timedout)."""

    def scan(self, hosts, ports, arguments, sudo):
        self.hosts = hosts
        return {"nmap": {"scaninfo": {}}, "scan": {hosts: {"tcp": {}}}}

    def get_nmap_last_output(self):
        return f'<nmaprun><host timedout="true"><address addr="{self.hosts}" addrtype="ipv4"/></host></nmaprun>'


def test_a_second_look_nmap_gives_up_on_is_an_error_for_an_unanswered_port_not_a_pass():
    from nimwarden.families.ports.scanner import ScanLimits, look_again

    with pytest.raises(RuntimeError, match="second look at 10.0.0.5 .*8000"):
        look_again(_TimesOut(), [("10.0.0.5", 8000)], True, ScanLimits(), frozenset({("10.0.0.5", 8000)}))
    # an expected endpoint whose second look timed out stays closed (PORTS-EXPECTED fails on it): no error
    assert look_again(_TimesOut(), [("10.0.0.5", 8443)], True, ScanLimits()) == []
