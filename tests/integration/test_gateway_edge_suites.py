"""The edge suites (ports, tls, gateway, nim-api) end to end, run as a user runs them
(`nimwarden audit` in a subprocess) against a self-started edge: real nginx gateways and the
real NIM stand-in, a good deployment, a bad one and one whose endpoints are dead."""

from __future__ import annotations

import socket
from collections import defaultdict

import pytest
import yaml

from nimwarden.lab import gateway
from tests.conftest import dead_port, have, run_audit

pytestmark = pytest.mark.skipif(not (have("nmap") and __import__("os").path.exists(gateway.NGINX)),
                                reason="needs nmap and nginx")

GOOD, BAD, DEAD = "127.0.0.102", "127.0.0.103", "127.0.0.104"
SUITES = ("suites/test_ports.py", "suites/test_tls.py", "suites/test_gateway.py", "suites/test_nim_api.py")
FAMILIES = ("ports", "tls", "gateway", "nim-api")


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edge-audit")
    specs = [{"name": "good", "hardened": True, "host": GOOD, "upstream": None, "nim": True, "nim_only": True},
             {"name": "bad", "hardened": False, "host": BAD, "upstream": None, "nim": True, "nim_only": True}]
    edge = gateway.up_edge(tmp, specs, log=lambda *_: None)
    stray = socket.socket()  # a forgotten debug listener on the bad deployment's address
    stray.bind((BAD, 0))
    stray.listen(4)
    try:
        deps = []
        for s in specs:
            parts = edge["deployments"][s["name"]]
            g, n = parts["gateway"], parts["nimstub"]
            scan = {g["https_port"], g["http_port"], int(n["address"].rsplit(":", 1)[1])}
            if s["name"] == "bad":
                scan.add(stray.getsockname()[1])
            dep = {"name": s["name"], "kind": "nim", "expect": "compliant" if s["hardened"] else "noncompliant",
                   "endpoints": {"http": n["url"], "gateway": g["https_url"], "gateway_http": g["http_url"]},
                   "exposure": ["gateway", "gateway_http"],
                   "options": {"tls": {"ca_file": edge["pki"]["ca"]}, "gateway": {"documented_burst": 6},
                               # only this test's own ports: other listeners on a shared machine stay out
                               "ports": {"tcp_ports": ",".join(map(str, sorted(scan)))}}}
            if g["token_file"]:
                dep["credentials"] = {"gateway": {"header": "Authorization", "file": g["token_file"]}}
            deps.append(dep)
        p1, p2 = dead_port(), dead_port()
        deps.append({"name": "dead", "kind": "nim", "expect": "compliant",
                     "endpoints": {"http": f"http://{DEAD}:{p1}", "gateway": f"https://{DEAD}:{p2}"},
                     "exposure": ["gateway"], "options": {"ports": {"tcp_ports": str(p2)}}})
        profile = tmp / "edge.yaml"
        profile.write_text(yaml.safe_dump({"name": "edge-test", "scope": ["127.0.0.0/8"], "probe_position": "external",
                                           "timeouts": {"connect_s": 2, "read_s": 5}, "deployments": deps}))
        proc, summary = run_audit(profile, tmp / "reports", *SUITES)
    finally:
        stray.close()
        gateway.down_edge(edge)
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-2000:]
    by: dict = defaultdict(lambda: defaultdict(set))
    for r in summary["results"]:
        by[r["deployment"]][r["control"]].add(r["status"])
    return summary, by


def _family_statuses(summary, deployment, family):
    return {r["status"] for r in summary["results"] if r["deployment"] == deployment and r["family"] == family}


def test_good_deployment_passes_every_edge_family(audit):
    summary, by = audit
    for family in FAMILIES:
        statuses = _family_statuses(summary, "good", family)
        assert "pass" in statuses and statuses <= {"pass", "not_applicable"}, (family, statuses, dict(by["good"]))


def test_bad_deployment_fails_every_edge_family_with_evidence(audit):
    summary, by = audit
    for family in FAMILIES:
        assert "fail" in _family_statuses(summary, "bad", family), family
    for control in ("PORTS-UNDOCUMENTED-001", "PORTS-POSITION-001", "TLS-PROTOCOL-001", "TLS-CIPHERS-001",
                    "TLS-CHAIN-001", "TLS-EXPIRY-001", "TLS-KEYSIZE-001", "TLS-PLAINTEXT-001", "GATEWAY-AUTHN-001",
                    "GATEWAY-RATELIMIT-001", "GATEWAY-INTERNAL-001", "NIM-INFERENCE-001", "NIM-METADATA-001",
                    "NIM-METRICS-001", "NIM-DOCS-001"):
        assert "fail" in by["bad"][control], (control, by["bad"][control])
    reasons = " ".join(r["reason"] for r in summary["results"] if r["deployment"] == "bad")
    assert "TLSv1.0" in reasons and "_anon_" in reasons and "/v1/metadata" in reasons
    text = yaml.safe_dump(summary["results"])
    assert "nvapi-" not in text.replace("nv…", "")  # the stand-in's fake key is redacted everywhere


def test_dead_endpoints_error_and_never_pass(audit):
    summary, by = audit
    for family in ("tls", "gateway", "nim-api"):
        statuses = _family_statuses(summary, "dead", family)
        assert "error" in statuses and "pass" not in statuses, (family, statuses)
    assert by["dead"]["PORTS-EXPECTED-001"] == {"fail"}  # the declared entry point is closed
