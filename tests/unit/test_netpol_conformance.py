"""The reachability model against upstream NetworkPolicy conformance truth tables.

Each case in tests/fixtures/netpol/*.yaml names the upstream case it mirrors
(kubernetes e2e netpol suite, cyclonus); see tests/fixtures/netpol/README.md.
Both implementations — the per-flow reference model and the bitset matrix —
must produce the upstream table exactly (loopback pairs ignored, as upstream).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
import yaml

from nimwarden.netpol.matrix import ReachabilityMatrix
from nimwarden.netpol.model import ReachabilityModel
from nimwarden.netpol.objects import inventory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "netpol"
ALL_PODS = [f"{ns}/{p}" for ns in "xyz" for p in "abc"]
IP_NET = {"x": 1, "y": 2, "z": 3}
IP_HOST = {"a": 1, "b": 2, "c": 3}


def _load_cases():
    for path in sorted(FIXTURES.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for case in doc["cases"]:
            name = case["upstream"] + (f" [{case['step']}]" if case.get("step") else "")
            yield pytest.param(case, id=f"{path.stem}: {name}")


def build_objects(case: dict) -> list[dict]:
    pods = case.get("pods") or ALL_PODS
    objs: list[dict] = []
    for ns in "xyz":
        labels = {"ns": ns, **(case.get("namespace_labels") or {}).get(ns, {})}
        objs.append({"kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
    for key in pods:
        ns, name = key.split("/")
        ports = [
            {"name": f"serve-{port}-{proto.lower()}", "containerPort": port, "protocol": proto}
            for port in (80, 81)
            for proto in ("TCP", "UDP", "SCTP")
        ]
        ports += (case.get("extra_ports") or {}).get(key, [])
        objs.append(
            {
                "kind": "Pod",
                "metadata": {"namespace": ns, "name": name, "labels": {"pod": name, **(case.get("pod_labels") or {}).get(key, {})}},
                "spec": {"containers": [{"name": "cont", "ports": ports}]},
                "status": {"podIP": (case.get("pod_ips") or {}).get(key, f"10.{IP_NET[ns]}.0.{IP_HOST[name]}")},
            }
        )
    for pol in case.get("policies") or []:
        objs.append({"kind": "NetworkPolicy", **pol})
    return objs


def _matches(pattern: str, pod: str) -> bool:
    return fnmatch.fnmatchcase(pod, "*/*" if pattern == "*" else pattern)


def expected_table(pods: list[str], steps: list[str]) -> dict[tuple[str, str], bool]:
    """Upstream's Reachability: start all-true, apply Expect/ExpectPeer steps in order."""
    table = {(s, d): True for s in pods for d in pods}
    for step in steps:
        flow, verdict = (part.strip() for part in step.rsplit(":", 1))
        src_pat, dst_pat = (part.strip() for part in flow.split("->"))
        assert verdict in ("allow", "deny"), step
        for s, d in table:
            if _matches(src_pat, s) and _matches(dst_pat, d):
                table[(s, d)] = verdict == "allow"
    return table


def _diff(pods, expected, observed) -> str:
    wrong = [f"{s} -> {d}: expected {'allow' if e else 'deny'}" for (s, d), e in expected.items() if s != d and observed[(s, d)] != e]
    return "\n".join(wrong)


@pytest.mark.parametrize("case", list(_load_cases()))
def test_truth_table_matches_upstream(case):
    inv = inventory(build_objects(case))
    pods = [p.key for p in inv.pods]
    model = ReachabilityModel(inv)
    probes = case["probes"]
    matrix = ReachabilityMatrix(inv, [(p["port"], p["protocol"]) for p in probes])
    for probe in probes:
        port, proto = probe["port"], probe["protocol"]
        expected = expected_table(pods, list(probe.get("expect") or []) + list(probe.get("then") or []))
        by_model = {(s, d): model.allowed(s, d, port, proto) for s in pods for d in pods}
        by_matrix = {(s, d): matrix.allowed(s, d, port, proto) for s in pods for d in pods}
        assert not _diff(pods, expected, by_model), f"model, {port}/{proto}:\n" + _diff(pods, expected, by_model)
        assert not _diff(pods, expected, by_matrix), f"matrix, {port}/{proto}:\n" + _diff(pods, expected, by_matrix)
    for flow in case.get("external") or []:
        verdict = model.evaluate(flow["from"], flow["to"], flow["port"], flow["protocol"])
        assert verdict.allowed is flow["allowed"], verdict.explain()


def test_fixture_set_is_representative():
    """The mirrored set keeps covering every feature the issue names (guards against trimming)."""
    text = "\n".join(p.read_text() for p in FIXTURES.glob("*.yaml"))
    for feature in ("endPort", "ipBlock", "except", "serve-81-tcp", "matchExpressions", "NotIn", "DoesNotExist",
                    "namespaceSelector: {}", "policyTypes: [Egress]", "protocol: UDP", "protocol: SCTP"):
        assert feature in text, feature
    cases = list(_load_cases())
    assert len(cases) >= 60
