"""The model's view of the k8s object model, on the lab's own manifests (nimwarden/lab/manifests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nimwarden.families.network_policy import judge as judges
from nimwarden.families.network_policy.inventory import inventory_from_state
from nimwarden.families.network_policy.requirements import Requirements
from nimwarden.k8s.manifests import load_manifests
from nimwarden.outcome import Status

MANIFESTS = Path(__file__).resolve().parents[2] / "nimwarden" / "lab" / "manifests"


@pytest.fixture(scope="module")
def inv():
    return inventory_from_state(load_manifests([MANIFESTS / "hardened", MANIFESTS / "exposed"]))


def test_workload_templates_become_model_pods_with_their_ports(inv):
    pod = inv.pod("nim-hardened/Deployment-triton-hardened")
    assert pod.labels["app"] == "triton-hardened"
    assert pod.resolve_named_port("http", "TCP") == 8000
    assert "nim-hardened/triton-hardened" in [p.key for p in inv.policies]


def test_hardened_manifests_limit_api_egress_and_metrics(inv):
    req = Requirements(workload_namespaces=("nim-hardened",))
    sel = {"app": "triton-hardened"}
    for out in (judges.judge_api_sources(inv, req, "nim-hardened", sel), judges.judge_egress(inv, req, "nim-hardened", sel), judges.judge_metrics_sources(inv, req, "nim-hardened", sel)):
        assert out.status is Status.PASS, out.reason


def test_exposed_allow_all_policy_fails_every_static_control(inv):
    req = Requirements(workload_namespaces=("nim-exposed",))
    outs = {
        "default-deny": judges.judge_default_deny(inv, req),
        "api": judges.judge_api_sources(inv, req, "nim-exposed", {"app": "triton-exposed"}),
        "egress": judges.judge_egress(inv, req, "nim-exposed", {"app": "triton-exposed"}),
        "metrics": judges.judge_metrics_sources(inv, req, "nim-exposed", {"app": "triton-exposed"}),
    }
    for name, out in outs.items():
        assert out.status is Status.FAIL, (name, out.reason)
    assert "NetworkPolicy nim-exposed/triton-exposed-allow-all ingress[0]: rule has no 'from'" in outs["api"].reason
