"""Parsing, selector semantics and model/matrix agreement of the reachability model."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nimwarden.netpol.matrix import ReachabilityMatrix, bits
from nimwarden.netpol.model import ReachabilityModel
from nimwarden.netpol.objects import NAME_LABEL, PolicyError, inventory, parse_policy
from nimwarden.netpol.selectors import SelectorError, parse_selector


def policy(spec, name="p", ns="x"):
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def pod(key, labels=None, ports=(), ip=None):
    ns, name = key.split("/")
    return {
        "kind": "Pod",
        "metadata": {"namespace": ns, "name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "c", "ports": list(ports)}]},
        "status": {"podIP": ip} if ip else {},
    }


# -- selectors ----------------------------------------------------------------
def test_notin_and_doesnotexist_match_objects_without_the_key():
    sel = parse_selector({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]})
    assert sel.matches({}) and sel.matches({"tier": "db"}) and not sel.matches({"tier": "web"})
    absent = parse_selector({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})
    assert absent.matches({"a": "b"}) and not absent.matches({"tier": ""})


def test_empty_selector_selects_everything_and_labels_are_anded():
    assert parse_selector({}).matches({"anything": "x"})
    sel = parse_selector({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]})
    assert sel.matches({"a": "1", "b": ""}) and not sel.matches({"a": "1"})


@pytest.mark.parametrize(
    "raw",
    [
        {"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]},
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchLabels": ["a"]},
    ],
)
def test_selectors_the_api_server_rejects_are_refused(raw):
    with pytest.raises(SelectorError):
        parse_selector(raw)


def test_pinned_values_reads_the_immutable_name_label():
    sel = parse_selector({"matchLabels": {NAME_LABEL: "ingress-nginx"}})
    assert sel.pinned_values(NAME_LABEL) == {"ingress-nginx"}
    assert parse_selector({"matchLabels": {"name": "ingress-nginx"}}).pinned_values(NAME_LABEL) is None


# -- parsing ------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, problem",
    [
        ({"ingress": [{"from": [{}]}]}, "needs podSelector"),
        ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]}, "cannot be combined"),
        ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}]}, "not inside"),
        ({"ingress": [{"ports": [{"port": "serve", "endPort": 90}]}]}, "named port"),
        ({"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}, "below port"),
        ({"ingress": [{"ports": [{"port": "8000"}]}]}, "string of digits"),
        ({"ingress": [{"ports": [{"protocol": "ICMP"}]}]}, "unknown protocol"),
        ({"policyTypes": ["Sideways"]}, "unknown"),
        ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, "at least one value"),
    ],
)
def test_invalid_policies_are_errors_not_allow(spec, problem):
    with pytest.raises(PolicyError, match=problem):
        parse_policy(policy(spec))


def test_policy_types_default_from_egress_rules():
    assert parse_policy(policy({"podSelector": {}})).types == {"Ingress"}
    assert parse_policy(policy({"egress": [{}]})).types == {"Ingress", "Egress"}
    assert parse_policy(policy({"egress": []})).types == {"Ingress"}


def test_list_objects_are_flattened_and_host_network_pods_skipped():
    inv = inventory(
        [
            {"kind": "PodList", "items": [{"metadata": {"name": "a", "namespace": "x"}}, {"metadata": {"name": "h", "namespace": "x"}, "spec": {"hostNetwork": True}}]},
            {"kind": "List", "items": [policy({}, name="deny")]},
        ]
    )
    assert [p.key for p in inv.pods] == ["x/a"]
    assert [p.key for p in inv.policies] == ["x/deny"]
    assert "hostNetwork" in inv.skipped[0]
    assert inv.namespace("x").labels == {NAME_LABEL: "x"}


def test_verdict_explains_which_rule_allowed():
    inv = inventory(
        [
            pod("x/a", {"app": "nim"}, [{"name": "http", "containerPort": 8000}]),
            pod("gw/g", {"app": "gw"}),
            policy({"podSelector": {"matchLabels": {"app": "nim"}}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "gw"}}}], "ports": [{"port": "http"}]}]}, name="nim"),
        ]
    )
    v = ReachabilityModel(inv).evaluate("gw/g", "x/a", 8000)
    assert v.allowed and v.ingress.allowed_by[0].describe() == "NetworkPolicy x/nim ingress[0]"
    blocked = ReachabilityModel(inv).evaluate("gw/g", "x/a", 8002)
    assert not blocked.allowed and "isolated by x/nim" in blocked.explain()


def test_bits_enumerates_set_bits():
    assert list(bits(0b101001)) == [0, 3, 5]


# -- model and matrix agree on random clusters --------------------------------
LABELS = st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["a", "b"]), max_size=2)
SELECTOR = st.one_of(
    st.just({}),
    st.builds(lambda labels: {"matchLabels": labels}, LABELS),
    st.builds(
        lambda key, op, vals: {"matchExpressions": [{"key": key, "operator": op, **({"values": vals} if op in ("In", "NotIn") else {})}]},
        st.sampled_from(["app", "tier", "team"]),
        st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]),
        st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2),
    ),
)
PEER = st.one_of(
    st.builds(lambda p: {"podSelector": p}, SELECTOR),
    st.builds(lambda n: {"namespaceSelector": n}, SELECTOR),
    st.builds(lambda p, n: {"podSelector": p, "namespaceSelector": n}, SELECTOR, SELECTOR),
    st.builds(lambda c: {"ipBlock": {"cidr": c, "except": ["10.0.1.0/24"] if c == "10.0.0.0/16" else []}}, st.sampled_from(["10.0.0.0/16", "10.0.1.0/24", "0.0.0.0/0"])),
)
PORT = st.one_of(
    st.builds(lambda p: {"port": p}, st.sampled_from([80, 81])),
    st.builds(lambda p: {"port": p, "protocol": "UDP"}, st.sampled_from([80, "serve-80"])),
    st.just({"port": "serve-80"}),
    st.just({"port": 79, "endPort": 80}),
    st.just({"protocol": "TCP"}),
)
RULE = st.fixed_dictionaries({}, optional={"peers": st.lists(PEER, max_size=2), "ports": st.lists(PORT, max_size=2)})
POLICY = st.fixed_dictionaries(
    {"ns": st.sampled_from(["x", "y"]), "podSelector": SELECTOR, "ingress": st.lists(RULE, max_size=2), "egress": st.lists(RULE, max_size=2)},
    optional={"policyTypes": st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]])},
)


def _to_objects(pods, policies, ns_labels):
    objs = [{"kind": "Namespace", "metadata": {"name": n, "labels": ns_labels[i]}} for i, n in enumerate(["x", "y", "z"])]
    for i, labels in enumerate(pods):
        ns = "xyz"[i % 3]
        ports = [{"name": "serve-80", "containerPort": 80 + (i % 2), "protocol": "TCP" if i % 4 else "UDP"}]
        objs.append(pod(f"{ns}/p{i}", labels, ports, ip=f"10.0.{i % 3}.{i + 1}"))
    for j, p in enumerate(policies):
        spec = {"podSelector": p["podSelector"], "ingress": [], "egress": []}
        for direction, field in (("ingress", "from"), ("egress", "to")):
            for r in p[direction]:
                rule = {}
                if "peers" in r:
                    rule[field] = r["peers"]
                if "ports" in r:
                    rule["ports"] = r["ports"]
                spec[direction].append(rule)
        if "policyTypes" in p:
            spec["policyTypes"] = p["policyTypes"]
        objs.append(policy(spec, name=f"np{j}", ns=p["ns"]))
    return objs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods=st.lists(LABELS, min_size=1, max_size=6), policies=st.lists(POLICY, max_size=4), ns_labels=st.lists(LABELS, min_size=3, max_size=3))
def test_matrix_equals_reference_model(pods, policies, ns_labels):
    inv = inventory(_to_objects(pods, policies, ns_labels))
    keys = [(80, "TCP"), (81, "TCP"), (80, "UDP")]
    matrix = ReachabilityMatrix(inv, keys)
    model = ReachabilityModel(inv)
    for port, proto in keys:
        for s in inv.pods:
            for d in inv.pods:
                assert matrix.allowed(s.key, d.key, port, proto) == model.allowed(s, d, port, proto), model.evaluate(s, d, port, proto).explain()
