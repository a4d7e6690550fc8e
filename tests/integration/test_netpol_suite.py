"""The network-policy suite end to end (`nimwarden audit` in a subprocess).

Static controls read the lab network's declared objects (nimwarden/lab/netpol/network.yaml)
and the lab's issue manifests; NETPOL-ENFORCED-001 probes a real lab network (netns,
veths, bridge, hand-written iptables) whose deployments run real TCP listeners (the
reach agent's responder) inside their namespaces. Needs root for the live part.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nimwarden.lab import netns
from tests.conftest import ROOT, dead_port, run_audit

NETWORK = ROOT / "nimwarden" / "lab" / "netpol" / "network.yaml"
MANIFESTS = ROOT / "nimwarden" / "lab" / "manifests"
RAY = ["--tcp", "6379", "--tcp", "8265", "--tcp", "10001"]  # the Ray head next to each server (network.yaml)
SERVES = {"hardened": ["--tcp", "8000", "--tcp", "8001", *RAY], "exposed": ["--tcp", "8000", "--tcp", "8001", "--tcp", "8002", *RAY]}
NETPOL = ["NETPOL-DB-001", "NETPOL-DEFAULTDENY-001", "NETPOL-EGRESS-001", "NETPOL-ENFORCED-001", "NETPOL-METRICS-001", "NETPOL-NIMAPI-001"]


def _profile(tmp: Path, lab_dir: Path, k8s_paths: list[Path]) -> Path:
    port = dead_port()
    deployments = [
        {
            "name": name,
            "kind": "triton",
            "expect": "compliant" if name == "hardened" else "noncompliant",
            "endpoints": {"http": f"http://127.0.0.1:{port}"},
            "kubernetes": {"namespace": f"nim-{name}", "selector": {"app": f"triton-{name}"}},
        }
        for name in ("hardened", "exposed")
    ]
    profile = {
        "name": "netpol-lab",
        "scope": ["127.0.0.0/8"],
        "lab": {"state_file": str(lab_dir / "state.json")},
        "deployments": deployments,
        "kubernetes": {"source": "manifests", "paths": [str(p) for p in k8s_paths]},
    }
    path = tmp / "target.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def _results(summary: dict) -> dict[tuple[str, str], dict]:
    return {(r["deployment"], r["control"]): r for r in summary["results"] if r["control"].startswith("NETPOL-")}


@pytest.fixture(scope="module")
def live_audit(tmp_path_factory):
    ok, why = netns.available()
    if not ok:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("netpol-audit")
    lab_dir = tmp / "lab"
    state = netns.up(lab_dir)
    try:
        lab_state = {"schema": "nimwarden/lab/v1", "dir": str(lab_dir), "deployments": {}}
        for name, args in SERVES.items():
            pos = state["positions"][name]
            p = netns.run_in(pos["netns"], [sys.executable, "-m", "nimwarden.net.reach_agent", "serve", *args], stdout=subprocess.PIPE, text=True)
            assert json.loads(p.stdout.readline())["serving"]
            lab_state["deployments"][name] = {"netns": pos["netns"], "http": f"{pos['address']}:8000"}
        (lab_dir / "state.json").write_text(json.dumps(lab_state))
        proc, summary = run_audit(_profile(tmp, lab_dir, [NETWORK]), tmp / "reports", "-k", "test_network_policy")
        assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
        yield summary
    finally:
        netns.down(lab_dir)
        assert not netns.existing(state["tag"])


@pytest.mark.root
def test_every_netpol_control_reports_for_both_deployments(live_audit):
    got = _results(live_audit)
    for control in NETPOL:
        if control == "NETPOL-DB-001":
            assert got[("-", control)]["status"] == "not_applicable"
            continue
        assert ("hardened", control) in got and ("exposed", control) in got, control


@pytest.mark.root
def test_hardened_is_clean_in_network_policy(live_audit):
    bad = [(r["control"], r["status"], r["reason"]) for (dep, _), r in _results(live_audit).items() if dep == "hardened" and r["status"] in ("fail", "error")]
    assert not bad, bad
    assert _results(live_audit)[("hardened", "NETPOL-ENFORCED-001")]["status"] == "pass"


@pytest.mark.root
def test_exposed_declared_blocked_observed_reachable(live_audit):
    r = _results(live_audit)[("exposed", "NETPOL-ENFORCED-001")]
    assert r["status"] == "fail" and r["severity"] == "critical"
    assert r["reason"].startswith("declared blocked, observed reachable")
    lines = "\n".join(r["evidence"]["not_enforced"])
    assert "tenant-a/client -> nim-exposed/triton 8000/TCP: declared blocked, observed reachable" in lines
    assert "tenant-a/client -> nim-exposed/triton 8002/TCP: declared blocked, observed reachable" in lines
    assert r["evidence"]["svg"].startswith("<svg") and r["evidence"]["matrix"]["rows"]


def test_static_controls_on_the_lab_manifests_without_a_lab_network(tmp_path):
    """No lab network: enforcement is not applicable; the static controls judge the manifests."""
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    (lab_dir / "state.json").write_text(json.dumps({"schema": "nimwarden/lab/v1", "deployments": {}}))
    proc, summary = run_audit(_profile(tmp_path, lab_dir, [MANIFESTS / "hardened", MANIFESTS / "exposed"]), tmp_path / "reports", "-k", "test_network_policy")
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = _results(summary)
    assert got[("hardened", "NETPOL-ENFORCED-001")]["status"] == "not_applicable"
    for control in ("NETPOL-NIMAPI-001", "NETPOL-EGRESS-001", "NETPOL-METRICS-001", "NETPOL-DEFAULTDENY-001"):
        assert got[("exposed", control)]["status"] == "fail", (control, got[("exposed", control)]["reason"])
    for control in ("NETPOL-NIMAPI-001", "NETPOL-EGRESS-001", "NETPOL-METRICS-001", "NETPOL-DEFAULTDENY-001"):
        assert got[("hardened", control)]["status"] == "pass", (control, got[("hardened", control)]["reason"])
