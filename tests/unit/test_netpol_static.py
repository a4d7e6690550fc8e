"""Static network-policy judges: good case passes, bad cases fail naming policy and rule, broken probe errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from nimwarden.families.network_policy import judge as judges
from nimwarden.families.network_policy.requirements import Requirements, requirements_from_mapping
from nimwarden.lab.netpol import declared_inventory
from nimwarden.netpol.matrix import PortKey
from nimwarden.netpol.objects import NAME_LABEL, inventory
from nimwarden.outcome import Attempt, Status

STATIC = Path(__file__).resolve().parents[1] / "fixtures" / "netpol" / "static"
SEED = yaml.safe_load((STATIC / "seed_nim_operator.yaml").read_text())
NEMO = yaml.safe_load((STATIC / "nemo_databases.yaml").read_text())
NIM = {"app.kubernetes.io/name": "llama-3-8b"}


def seed_with(mutate=None, extra=()):
    objs = copy.deepcopy(SEED)
    if mutate:
        mutate(objs[-1]["spec"])
    return inventory(objs + list(extra))


DEFAULT_DENY = {"kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": "nim-service"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}


# -- NETPOL-DEFAULTDENY ------------------------------------------------------------
def test_default_deny_passes_with_namespace_wide_policy():
    out = judges.judge_default_deny(seed_with(extra=[DEFAULT_DENY]), Requirements(workload_namespaces=("nim-service",)))
    assert out.status is Status.PASS, out.reason
    assert out.evidence["covered_by"]["nim-service ingress"] == ["nim-service/default-deny"]


def test_seed_example_alone_is_not_a_default_deny():
    out = judges.judge_default_deny(seed_with(), Requirements(workload_namespaces=("nim-service",)))
    assert out.status is Status.FAIL and "Namespace nim-service: no default-deny ingress" in out.reason


def test_allow_all_rule_does_not_count_as_default_deny():
    allow_all = copy.deepcopy(DEFAULT_DENY)
    allow_all["spec"]["ingress"] = [{}]
    out = judges.judge_default_deny(seed_with(extra=[allow_all]), Requirements(workload_namespaces=("nim-service",), require_egress_isolation=False))
    assert out.status is Status.FAIL and "selects every pod but allows all traffic" in out.reason


def test_egress_default_deny_only_when_required():
    ingress_only = copy.deepcopy(DEFAULT_DENY)
    ingress_only["spec"]["policyTypes"] = ["Ingress"]
    inv = seed_with(extra=[ingress_only])
    assert judges.judge_default_deny(inv, Requirements(workload_namespaces=("nim-service",), require_egress_isolation=False)).status is Status.PASS
    out = judges.judge_default_deny(inv, Requirements(workload_namespaces=("nim-service",)))
    assert out.status is Status.FAIL and "no default-deny egress" in out.reason


def test_default_deny_without_namespaces_is_not_applicable():
    assert judges.judge_default_deny(seed_with(), Requirements()).status is Status.NOT_APPLICABLE


# -- NETPOL-NIMAPI ------------------------------------------------------------------
def test_seed_policy_admits_only_the_gateway_and_notes_the_mutable_label():
    out = judges.judge_api_sources(seed_with(), Requirements(), "nim-service", NIM)
    assert out.status is Status.PASS, out.reason
    assert "mutable label" in out.evidence["admitted"][0]["note"]


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda s: s["ingress"][0].pop("from"), "nim-network-policy ingress[0]: rule has no 'from'"),
        (lambda s: s["ingress"][0]["from"].append({"namespaceSelector": {}}), "ingress[0].from[1]: empty namespaceSelector"),
        (lambda s: s["ingress"][0]["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}}), "ingress[0].from[1]: ipBlock 0.0.0.0/0"),
        (lambda s: s["ingress"][0]["from"].append({"namespaceSelector": {"matchLabels": {NAME_LABEL: "tenant-b"}}}), "admits namespace(s) tenant-b"),
        (lambda s: s["ingress"][0]["from"].append({"podSelector": {}}), "admits namespace(s) nim-service"),
        (lambda s: s.update(podSelector={"matchLabels": {"app": "other"}}), "Pod nim-service/llama-0: no NetworkPolicy selects it"),
        (lambda s: s["ingress"][0]["ports"][0].update(port=9999), "no rule admits the gateway namespace"),
    ],
)
def test_api_port_open_beyond_gateway_fails_naming_the_rule(mutate, expected):
    out = judges.judge_api_sources(seed_with(mutate), Requirements(), "nim-service", NIM)
    assert out.status is Status.FAIL
    assert expected in out.reason, out.reason


def test_blocked_gateway_path_is_low_severity():
    out = judges.judge_api_sources(seed_with(lambda s: s["ingress"][0]["ports"][0].update(port=9999)), Requirements(), "nim-service", NIM)
    assert out.severity == "low"


def test_api_with_no_matching_pods_is_not_applicable():
    out = judges.judge_api_sources(seed_with(), Requirements(), "nim-service", {"app": "nope"})
    assert out.status is Status.NOT_APPLICABLE and "app=nope" in out.reason


# -- NETPOL-EGRESS -------------------------------------------------------------------
def test_seed_egress_is_limited_to_https_and_dns():
    assert judges.judge_egress(seed_with(), Requirements(), "nim-service", NIM).status is Status.PASS


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda s: s["egress"][0].pop("ports"), "egress[0]: rule has no 'ports'"),
        (lambda s: s["egress"][0]["ports"].append({"port": 80}), "egress[0].ports[3]: 80/TCP is outside"),
        (lambda s: s["egress"][0]["ports"].append({"port": 440, "endPort": 443}), "440-443/TCP is outside"),
        (lambda s: s["egress"][0]["ports"].append({"protocol": "UDP"}), "any/UDP is outside"),
        (lambda s: s.update(policyTypes=["Ingress"]), "no NetworkPolicy selects it for egress"),
    ],
)
def test_unbounded_egress_fails(mutate, expected):
    out = judges.judge_egress(seed_with(mutate), Requirements(), "nim-service", NIM)
    assert out.status is Status.FAIL and expected in out.reason, out.reason


def test_egress_not_required_is_not_applicable():
    out = judges.judge_egress(seed_with(), Requirements(require_egress_isolation=False), "nim-service", NIM)
    assert out.status is Status.NOT_APPLICABLE


# -- NETPOL-DB -------------------------------------------------------------------------
DB_REQ = {
    "databases": [
        {"name": "postgres", "namespace": "nemo", "podSelector": {"matchLabels": {"app": "postgres"}}, "ports": [5432], "owners": [{"podSelector": {"matchLabels": {"app": "datastore"}}}]},
        {"name": "milvus", "namespace": "nemo", "podSelector": {"matchLabels": {"app": "milvus"}}, "ports": [19530], "owners": [{"podSelector": {"matchLabels": {"app": "retriever"}}}]},
    ]
}


def test_databases_reachable_only_from_owners_pass():
    out = judges.judge_databases(inventory(NEMO), requirements_from_mapping(DB_REQ))
    assert out.status is Status.PASS, out.reason
    assert out.evidence["databases"] == {"postgres": ["nemo/postgres-0"], "milvus": ["nemo/milvus-0"]}


def test_database_open_to_a_namespace_names_the_strangers():
    objs = copy.deepcopy(NEMO)
    objs[-2]["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "curious"}}})
    out = judges.judge_databases(inventory(objs), requirements_from_mapping(DB_REQ))
    assert out.status is Status.FAIL
    assert "NetworkPolicy nemo/postgres-from-datastore ingress[0].from[1]: admits tenant-b/curious-0 to postgres 5432/TCP" in out.reason


def test_database_without_policy_fails():
    objs = [o for o in NEMO if o["metadata"].get("name") != "milvus"]
    out = judges.judge_databases(inventory(objs), requirements_from_mapping(DB_REQ))
    assert out.status is Status.FAIL and "nemo/milvus-0: no NetworkPolicy selects it" in out.reason


def test_no_databases_declared_is_not_applicable():
    assert judges.judge_databases(inventory(NEMO), Requirements()).status is Status.NOT_APPLICABLE


# -- NETPOL-METRICS ------------------------------------------------------------------------
def test_named_metrics_port_from_monitoring_passes_and_from_tenant_fails():
    req = requirements_from_mapping({"metrics_ports": [9091]})
    assert judges.judge_metrics_sources(inventory(NEMO), req, "nemo", {"app": "milvus"}).status is Status.PASS
    objs = copy.deepcopy(NEMO)
    objs[-1]["spec"]["ingress"][1]["from"].append({"namespaceSelector": {"matchLabels": {NAME_LABEL: "tenant-b"}}})
    out = judges.judge_metrics_sources(inventory(objs), req, "nemo", {"app": "milvus"})
    assert out.status is Status.FAIL and "milvus ingress[1].from[1]: admits namespace(s) tenant-b to 9091/TCP" in out.reason


def test_metrics_admitted_to_nobody_passes():
    # The seed policy admits nobody on 8002: stricter than "only monitoring".
    assert judges.judge_metrics_sources(seed_with(), Requirements(), "nim-service", NIM).status is Status.PASS


# -- the lab's declared network passes everything, for both deployments -----------------------
@pytest.mark.parametrize("ns, labels", [("nim-hardened", {"app": "triton-hardened"}), ("nim-exposed", {"app": "triton-exposed"})])
def test_lab_network_declares_compliant_policies(ns, labels):
    inv = declared_inventory()
    req = Requirements(workload_namespaces=(ns,))
    for out in (
        judges.judge_default_deny(inv, req),
        judges.judge_api_sources(inv, req, ns, labels),
        judges.judge_egress(inv, req, ns, labels),
        judges.judge_metrics_sources(inv, req, ns, labels),
    ):
        assert out.status is Status.PASS, out.reason


# -- broken probe and bad requirements -----------------------------------------------------------
def test_incomplete_inventory_attempt_is_an_error_for_every_judge():
    broken = Attempt("k8s.snapshot", "read manifests", None, "PolicyError: NetworkPolicy x/y: spec.ingress[0].from[0]: a peer needs podSelector")
    req = Requirements(workload_namespaces=("nim-service",), databases=requirements_from_mapping(DB_REQ).databases)
    for out in (
        judges.judge_default_deny(broken, req),
        judges.judge_api_sources(broken, req, "nim-service", NIM),
        judges.judge_egress(broken, req, "nim-service", NIM),
        judges.judge_metrics_sources(broken, req, "nim-service", NIM),
        judges.judge_databases(broken, req),
    ):
        assert out.status is Status.ERROR and "a peer needs podSelector" in out.reason


def test_requirements_parse_ports_and_reject_ownerless_databases():
    req = requirements_from_mapping({"api_ports": [8000, "50051/TCP"], "egress_allowed": ["443", "53/UDP"]})
    assert req.api_ports == (PortKey(8000), PortKey(50051))
    assert PortKey(53, "UDP") in req.egress_allowed
    with pytest.raises(ValueError, match="owners"):
        requirements_from_mapping({"databases": [{"name": "pg", "namespace": "n", "ports": [5432]}]})


def test_gateway_namespace_missing_from_the_snapshot():
    objs = [o for o in copy.deepcopy(SEED) if o["metadata"]["name"] != "ingress-nginx"]
    # Pinned by the immutable name label: admitted even though the snapshot lacks the namespace.
    objs[-1]["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "ingress-nginx"}}}]
    assert judges.judge_api_sources(inventory(objs), Requirements(), "nim-service", NIM).status is Status.PASS
    # By a mutable label: cannot be confirmed, so no "blocked path" finding, but a note.
    objs[-1]["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}}]
    out = judges.judge_api_sources(inventory(objs), Requirements(), "nim-service", NIM)
    assert out.status is Status.PASS and "cannot be confirmed" in out.evidence["admitted"][-1]["note"]
