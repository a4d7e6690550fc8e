"""Choosing probe positions from the model, and the kubelet's liveness evidence (no cluster needed)."""

from __future__ import annotations

import yaml

from nimwarden.families.network_policy.incluster import derive_sources, destination_pod, kubelet_checked_ports
from nimwarden.lab.netpol import NETWORK
from nimwarden.netpol.matrix import PortKey
from nimwarden.netpol.objects import inventory

KEYS = (PortKey(8000), PortKey(8001), PortKey(8002))


def _objects(*extra):
    items = yaml.safe_load(NETWORK.read_text())["items"]
    return [*items, *extra]


def _pod(ns, name, labels):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": ns, "name": name, "labels": labels}, "spec": {"containers": [{"name": "c"}]}}


def test_positions_cover_each_port_with_an_allowed_source_then_blocked_ones():
    inv = inventory(_objects(
        _pod("kube-system", "coredns", {"k8s-app": "kube-dns"}),
        _pod("nim-exposed", "triton-2", {"app": "triton-exposed", "nimwarden.dev/deployment": "exposed"}),  # a replica
        _pod("tenant-a", "client-2", {"app": "tenant-client", "pod-template-hash": "abc"}),  # same group as client
        _pod("tenant-b", "batch", {"app": "batch"}),
    ))
    dest = inv.pod("nim-exposed/triton")
    chosen = [p.key for p in derive_sources(inv, dest, KEYS, max_positions=10, exclude={"app": "triton-exposed"})]
    assert chosen[:2] == ["ingress-nginx/gateway", "monitoring/prometheus"]  # allowed on 8000 / on 8002: liveness
    assert "kube-system/coredns" not in chosen and "nim-exposed/triton-2" not in chosen
    assert "tenant-a/client" in chosen and "tenant-a/client-2" not in chosen  # one per (namespace, labels)
    assert {"tenant-b/batch", "nim-hardened/triton"} <= set(chosen)
    assert len(chosen) == len(set(chosen))


def test_the_cap_keeps_liveness_and_interleaves_namespaces():
    extra = [_pod("tenant-a", f"app{i}", {"app": f"a{i}"}) for i in range(5)] + [_pod("tenant-b", "b", {"app": "b"})]
    inv = inventory(_objects(*extra))
    dest = inv.pod("nim-exposed/triton")
    chosen = [p.key for p in derive_sources(inv, dest, KEYS, max_positions=4)]
    assert len(chosen) == 4
    assert chosen[:2] == ["ingress-nginx/gateway", "monitoring/prometheus"]
    assert len({c.split("/")[0] for c in chosen[2:]}) == 2, chosen  # not four pods of tenant-a


def test_kubelet_evidence_needs_ready_and_a_readiness_probe_on_the_port():
    pod = {"spec": {"containers": [{"name": "t", "ports": [{"name": "grpc", "containerPort": 8001}],
                                    "readinessProbe": {"tcpSocket": {"port": "grpc"}}}]},
           "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert kubelet_checked_ports(pod) == {PortKey(8001)}
    pod["status"]["conditions"][0]["status"] = "False"
    assert kubelet_checked_ports(pod) == set()
    http = {"spec": {"containers": [{"name": "t", "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8000}},
                                     "livenessProbe": {"tcpSocket": {"port": 8002}}}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert kubelet_checked_ports(http) == {PortKey(8000)}  # liveness probes are not evidence: Ready says nothing of them


def test_the_destination_is_a_running_pod_with_an_ip():
    from nimwarden.k8s.model import ClusterState, make_object

    def obj(name, phase, ip):
        body = dict(_pod("nim", name, {"app": "t"}), status={"phase": phase, **({"podIP": ip} if ip else {})})
        return make_object(body, f"test#{name}", default_namespace=None)

    state = ClusterState("test", (obj("a-pending", "Pending", None), obj("b", "Running", "10.0.0.7"), obj("c", "Running", "10.0.0.8")), {}, ())
    pod, body = destination_pod(state, "nim", {"app": "t"})
    assert (pod.key, pod.ip) == ("nim/b", "10.0.0.7")
    assert destination_pod(state, "nim", {"app": "other"}) is None
