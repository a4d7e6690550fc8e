"""The lab network for real: namespaces, veths, a bridge, hand-written iptables, live probes.

Needs root (CI runs as root). Every test builds its own topology under its own
tmp_path (so its own name tag) and proves that nothing is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nimwarden.families.network_policy.judge import judge_enforcement
from nimwarden.lab import netns
from nimwarden.lab.netpol import declared_inventory, probe_setup
from nimwarden.net.reach import Position, probe_attempt, probe_flows
from nimwarden.netpol.enforcement import LIVENESS, Flow
from nimwarden.netpol.plan import plan_flows
from nimwarden.outcome import Status

pytestmark = [pytest.mark.root, pytest.mark.skipif(not netns.available()[0], reason=netns.available()[1])]

RAY = ["--tcp", "6379", "--tcp", "8265", "--tcp", "10001"]  # the Ray head next to each server (network.yaml)
SERVES = {"hardened": ["--tcp", "8000", "--tcp", "8001", *RAY, "--udp", "5353"],
          "exposed": ["--tcp", "8000", "--tcp", "8001", "--tcp", "8002", *RAY, "--udp", "5353"]}


def _netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


def _assert_nothing_left(state_dir: Path, tag: str) -> None:
    assert f"{netns.PREFIX}-{tag}-" not in _netns_list()
    assert not (state_dir / netns.STATE_FILE).exists()
    # Nothing ever lived in the host namespace: no test-range address or route.
    assert "10.213.0." not in subprocess.run(["ip", "addr"], capture_output=True, text=True).stdout
    assert "10.213.0." not in subprocess.run(["ip", "route"], capture_output=True, text=True).stdout


@pytest.fixture
def lab_net(tmp_path):
    state = netns.up(tmp_path)
    yield tmp_path, state
    netns.down(tmp_path)
    _assert_nothing_left(tmp_path, state["tag"])


def start_responders(state, which=("hardened", "exposed")):
    procs = []
    for name in which:
        p = netns.run_in(state["positions"][name]["netns"], [sys.executable, "-m", "nimwarden.net.reach_agent", "serve", *SERVES[name]], stdout=subprocess.PIPE, text=True)
        assert json.loads(p.stdout.readline())["serving"]
        procs.append(p)
    return procs


def test_up_builds_the_topology_inside_namespaces_only(lab_net):
    state_dir, state = lab_net
    listed = _netns_list()
    for pos in state["positions"].values():
        assert pos["netns"] in listed
    hardened = state["positions"]["hardened"]["netns"]
    addr = subprocess.run(["ip", "-n", hardened, "addr", "show", "eth0"], capture_output=True, text=True, check=True).stdout
    assert "10.213.0.101/24" in addr
    rules = subprocess.run([*netns.exec_prefix(hardened), "iptables", "-S"], capture_output=True, text=True, check=True).stdout
    assert "-A NIMWARDEN-IN -s 10.213.0.10/32 -p tcp -m tcp --dport 8000 -j ACCEPT" in rules
    exposed_rules = subprocess.run([*netns.exec_prefix(state["positions"]["exposed"]["netns"]), "iptables", "-S"], capture_output=True, text=True, check=True).stdout
    assert "NIMWARDEN" not in exposed_rules  # exposed declares, but enforces nothing
    assert netns.status(state_dir)["up"]
    assert "10.213.0." not in subprocess.run(["ip", "addr"], capture_output=True, text=True).stdout


def test_hardened_enforces_and_exposed_does_not(lab_net):
    _, state = lab_net
    procs = start_responders(state)
    inv = declared_inventory()
    outcomes, took = {}, {}
    for dep in ("hardened", "exposed"):
        sources, dests, positions, liveness = probe_setup(state, dep, inv)
        flows = plan_flows(inv, sources, dests, allowed_sample=2, liveness_from=liveness)
        t0 = time.monotonic()
        outcomes[dep] = judge_enforcement(probe_attempt(flows, positions, timeout_s=0.8))
        took[dep] = time.monotonic() - t0
    hardened, exposed = outcomes["hardened"], outcomes["exposed"]
    assert hardened.status is Status.PASS, hardened.reason + json.dumps(hardened.evidence, default=str)[:2000]
    assert exposed.status is Status.FAIL and exposed.severity == "critical"
    not_enforced = "\n".join(exposed.evidence["not_enforced"])
    assert "tenant-a/client -> nim-exposed/triton 8000/TCP: declared blocked, observed reachable" in not_enforced
    assert "tenant-a/client -> nim-exposed/triton 8002/TCP: declared blocked, observed reachable" in not_enforced
    assert all(t < 10 for t in took.values()), took
    # down() stops what ran inside the namespaces
    pids = [p.pid for p in procs]
    netns.down(lab_net[0])
    for p in procs:
        p.wait(timeout=5)
    assert all(not Path(f"/proc/{pid}").exists() or p.poll() is not None for pid, p in zip(pids, procs))


def test_dead_destination_is_an_error_not_a_pass(lab_net):
    _, state = lab_net  # no responders at all: hardened drops, nothing listens
    inv = declared_inventory()
    sources, dests, positions, liveness = probe_setup(state, "hardened", inv)
    out = judge_enforcement(probe_attempt(plan_flows(inv, sources, dests, liveness_from=liveness), positions, timeout_s=0.5))
    assert out.status is Status.ERROR, out.reason


def test_udp_is_judged_against_an_answering_destination(lab_net):
    _, state = lab_net
    start_responders(state)
    pos = {p["model_pod"]: Position(n, tuple(netns.exec_prefix(p["netns"]))) for n, p in state["positions"].items()}
    h, e = state["positions"]["hardened"]["address"], state["positions"]["exposed"]["address"]
    flows = [
        Flow("tenant-a/client", "nim-exposed/triton", e, 5353, "UDP", False),
        Flow("tenant-a/client", "nim-hardened/triton", h, 5353, "UDP", False),
        Flow("nim-hardened/triton", "nim-hardened/triton", h, 5353, "UDP", True, "", LIVENESS),
    ]
    results = {o.flow.label: o.result for o in probe_flows(flows, pos, timeout_s=0.5)}
    assert results == {
        "tenant-a/client -> nim-exposed/triton 5353/UDP": "allowed",
        "tenant-a/client -> nim-hardened/triton 5353/UDP": "blocked",
        "nim-hardened/triton -> nim-hardened/triton 5353/UDP": "allowed",
    }


def test_down_cleans_up_after_a_crash_even_without_the_state_file(tmp_path):
    code = "import sys, time; from nimwarden.lab import netns; netns.up(sys.argv[1]); print('up', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "up"
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the crash
        proc.wait()
    tag = netns.tag_for(tmp_path)
    assert netns.existing(tag), "the crashed run left its namespaces (as a crash would)"
    (tmp_path / netns.STATE_FILE).unlink()
    removed = netns.down(tmp_path)
    assert len(removed) == len(netns.POSITIONS) + 1
    _assert_nothing_left(tmp_path, tag)


def test_agent_failure_in_a_position_is_an_error(lab_net):
    _, state = lab_net
    start_responders(state)
    flows = [Flow("tenant-a/client", "nim-exposed/triton", state["positions"]["exposed"]["address"], 8000, "TCP", False)]
    bogus = {"tenant-a/client": Position("tenant", ("ip", "netns", "exec", "nwl-does-not-exist"))}
    [o] = probe_flows(flows, bogus, timeout_s=0.5)
    assert o.result == "error" and "agent in tenant failed" in o.detail


def test_port_forward_reaches_a_namespace_loopback_and_down_stops_it(lab_net):
    import requests

    from tests.conftest import dead_port

    state_dir, state = lab_net
    ns = state["positions"]["hardened"]["netns"]
    server = netns.run_in(ns, [sys.executable, "-m", "http.server", "8000", "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = dead_port()
    fwd = netns.port_forward(state_dir, "hardened", {port: 8000})
    deadline = time.monotonic() + 10
    while True:
        try:
            r = requests.get(f"http://127.0.0.1:{port}/", timeout=2)
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert r.status_code == 200
    netns.down(state_dir)
    assert fwd.wait(timeout=5) is not None and server.wait(timeout=5) is not None
