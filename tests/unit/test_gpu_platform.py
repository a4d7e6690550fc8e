"""The gpu-platform family on fixtures shaped like a GPU Operator install (tests/fixtures/gpu_platform):
a vulnerable and a fixed operand set give fail and pass with the CVEs named; an unknown version errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nimwarden.families.gpu_platform import judge, stack
from nimwarden.k8s import load_manifests
from nimwarden.k8s.model import ClusterState, make_object
from nimwarden.outcome import Status

FIXTURES = Path(__file__).parents[1] / "fixtures" / "gpu_platform"


def state(name: str) -> ClusterState:
    return load_manifests([FIXTURES / name])


def test_components_are_found_by_image_and_version():
    found = {(c.product, c.version) for c in stack.components(state("vulnerable"))}
    assert {("gpu-operator", "v26.3.1"), ("container-toolkit", "v1.19.0"), ("device-plugin", "v0.19.0"),
            ("dcgm-exporter", "4.5.1-4.8.0-distroless")} <= found
    assert stack.parse_version("dcgm-exporter", "4.5.1-4.8.0-distroless") == (4, 8, 0)
    assert stack.parse_version("container-toolkit", "v1.17.8-ubuntu20.04") == (1, 17, 8)
    assert stack.parse_version("container-toolkit", "sha256:abc") is None


def test_vulnerable_stack_fails_naming_the_cves():
    out = judge.versions_in(state("vulnerable"))
    assert out.status is Status.FAIL
    named = {c["id"] for c in out.evidence["cves"]}
    assert {"CVE-2026-24260", "CVE-2026-47483"} <= named  # toolkit 1.19.0 (< 1.19.1), exporter 4.8.0 (< 4.8.2)
    assert "CVE-2026-24260" in out.reason or "CVE-2026-24260" in str(out.evidence["findings"])
    assert out.severity in ("high", "critical")


def test_fixed_stack_passes():
    out = judge.versions_in(state("fixed"))
    assert out.status is Status.PASS, out.reason
    assert out.evidence["cve_table"]["as_of"] == judge.load_table().as_of.isoformat()


def test_an_unknown_version_is_an_error_not_a_pass():
    body = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "nvidia-container-toolkit-daemonset", "namespace": "gpu-operator"},
            "spec": {"template": {"spec": {"containers": [{"name": "ctr", "image": "nvcr.io/nvidia/k8s/container-toolkit@sha256:0123"}]}}}}
    out = judge.versions_in(ClusterState("test", (make_object(body, "test"),)))
    assert out.status is Status.ERROR and "cannot tell the version" in out.reason


def test_no_stack_is_not_applicable():
    assert judge.versions_in(ClusterState("test", ())).status is Status.NOT_APPLICABLE


def test_an_unreadable_kind_is_an_error():
    denied = ClusterState("test", (), denied={"DaemonSet": "list daemonsets.apps"})
    assert judge.versions_in(denied).status is Status.ERROR


def test_risky_settings():
    bad = judge.settings_in(state("vulnerable"))
    assert bad.status is Status.FAIL
    text = " ".join(bad.evidence["findings"])
    assert "allow-cuda-compat-libs-from-container" in text
    assert judge.settings_in(state("fixed")).status is Status.PASS


def test_ray_head_published():
    bad = judge.ray_in(state("vulnerable"))
    assert bad.status is Status.FAIL and bad.severity == "critical"
    assert "Ray dashboard and Jobs API" in bad.reason
    assert judge.ray_in(state("fixed")).status is Status.PASS
    assert judge.ray_in(ClusterState("test", ())).status is Status.NOT_APPLICABLE


def test_table_rows_are_sourced_and_dated():
    table = judge.load_table()
    assert len(table.cves) >= 12 and table.as_of >= dt.date(2026, 9, 30)
    assert table.dates.checked >= dt.date(2026, 12, 6) and not table.stamp(table.dates.checked)["stale"]
    for c in table.cves:
        assert c.bulletin.isdigit() and c.url.endswith(f"/{c.bulletin}/{c.bulletin}.md") and (c.fixed or c.branches), c.id
        assert c.url.startswith("https://github.com/NVIDIA/product-security/blob/main/20"), c.id
    with pytest.raises(ValueError, match="fixed"):
        judge.parse_table({"version": "x", "as_of": "2026-01-01", "checked": {"date": "2026-01-02"},
                           "cves": [{"id": "CVE-1", "cvss": 1, "component": "c", "title": "t", "fixed": {}, "bulletin": "1", "url": "u/1"}]})
    with pytest.raises(ValueError, match="checked.date missing"):
        judge.parse_table({"version": "x", "as_of": "2026-01-01", "cves": []})


def test_leaderworkerset_workers_get_the_same_pod_checks_as_leaders():
    from nimwarden.families.pod_security import judge as pod
    from nimwarden.k8s import pod_templates

    templates = pod_templates(load_manifests([FIXTURES / "multinode"]))
    paths = sorted(t.spec_path for t in templates)
    assert paths == ["spec.leaderWorkerTemplate.leaderTemplate.spec", "spec.leaderWorkerTemplate.workerTemplate.spec"]
    leader = [t for t in templates if ".leaderTemplate." in t.spec_path]
    worker = [t for t in templates if ".workerTemplate." in t.spec_path]
    assert pod.no_privilege_escalation(leader).status is Status.PASS
    bad = pod.no_privilege_escalation(worker)
    assert bad.status is Status.FAIL and "workerTemplate" in str(bad.evidence["findings"])
    assert pod.non_root(templates).status is Status.FAIL  # the worker, not the leader
    assert all(t.labels.get("leaderworkerset.sigs.k8s.io/name") == "llama-405b-lws" for t in templates)


def test_inter_node_traffic_is_in_the_network_policy_model():
    """Leader and workers are two pods of the model: the API policy covers both, and leader ↔ worker traffic
    (Ray GCS 6379) is judged like any other flow — here the policy admits only the gateway on 8000."""
    from nimwarden.families.network_policy.inventory import inventory_from_state
    from nimwarden.netpol.model import ReachabilityModel

    inv = inventory_from_state(load_manifests([FIXTURES / "multinode"]))
    pods = {p.name: p for p in inv.pods}
    assert {"LeaderWorkerSet-llama-405b-lws-leader", "LeaderWorkerSet-llama-405b-lws-worker"} <= set(pods)
    model = ReachabilityModel(inv)
    leader, worker = pods["LeaderWorkerSet-llama-405b-lws-leader"], pods["LeaderWorkerSet-llama-405b-lws-worker"]
    assert model.allowed(worker, leader, 6379, "TCP") is False  # workers cannot reach the head's GCS: the policy must admit it


# ----------------------------------------------------------------------------- Ray head ports and isolation

LAB_MANIFESTS = Path(__file__).resolve().parents[2] / "nimwarden" / "lab" / "manifests"


def _head(namespace="ray", labels=None, ports=(8265,), host_network=False, command=None) -> dict:
    spec = {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0", "command": command or ["ray", "start", "--head"],
                            "ports": [{"containerPort": p} for p in ports]}]}
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "head", "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": "ray"}},
                     "template": {"metadata": {"labels": {"app": "ray", **(labels or {})}}, "spec": spec}}}


def _policy(namespace="ray", ingress=None, selector=None) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": namespace},
            "spec": {"podSelector": selector or {}, "policyTypes": ["Ingress"], "ingress": ingress or []}}


def _state(*bodies) -> ClusterState:
    return ClusterState("test", tuple(make_object(b, "test") for b in bodies))


def _isolation(state: ClusterState, namespace="ray"):
    return judge.ray_isolation(state, (), namespace)


def test_ray_heads_are_found_by_label_command_or_port():
    lws = stack.ray_heads(load_manifests([FIXTURES / "multinode"]))
    assert [t.spec_path for t in lws] == ["spec.leaderWorkerTemplate.leaderTemplate.spec"]  # `nim-serve-ray --head`, not the worker
    lab = stack.ray_heads(load_manifests([LAB_MANIFESTS / "hardened", LAB_MANIFESTS / "exposed"]))
    assert sorted(t.ref for t in lab) == ["Deployment/nim-exposed/triton-exposed", "Deployment/nim-hardened/triton-hardened"]
    kuberay = _head(labels={"ray.io/node-type": "head"}, ports=(), command=["/bin/start"])
    assert len(stack.ray_heads(_state(kuberay))) == 1
    redis = _head(ports=(6379,), command=["redis-server"])
    assert stack.ray_heads(_state(redis)) == []  # 6379 alone is Redis's port too


def test_lab_hardened_head_is_isolated_and_exposed_is_not():
    state = load_manifests([LAB_MANIFESTS / "hardened", LAB_MANIFESTS / "exposed"])
    good = _isolation(state, "nim-hardened")
    assert good.status is Status.PASS, good.reason
    bad = _isolation(state, "nim-exposed")
    assert bad.status is Status.FAIL
    assert len(bad.evidence["findings"]) == 6  # three Ray ports x (another namespace, an unlabelled pod of its own)
    assert "triton-exposed-allow-all" in bad.reason and bad.severity == "critical"


def test_a_head_no_policy_selects_is_open_to_every_pod():
    out = _isolation(_state(_head()))
    assert out.status is Status.FAIL and "not isolated (no policy selects it)" in out.reason
    # a policy that admits the head's ports only from the Ray cluster's own pods isolates it
    ray_only = _policy(ingress=[{"from": [{"podSelector": {"matchLabels": {"ray.io/cluster": "c1"}}}]}])
    assert _isolation(_state(_head(), ray_only)).status is Status.PASS
    # ... one that admits every namespace on the dashboard does not
    dash_open = _policy(ingress=[{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8265}]}])
    out = _isolation(_state(_head(), dash_open))
    assert out.status is Status.FAIL and [f for f in out.evidence["findings"] if "8265" in f] and not [f for f in out.evidence["findings"] if "6379" in f]


def test_a_host_network_head_cannot_be_isolated():
    out = _isolation(_state(_head(host_network=True), _policy()))
    assert out.status is Status.FAIL and "hostNetwork" in out.reason


def test_no_head_is_not_applicable_and_unreadable_policies_an_error():
    assert _isolation(_state(_policy())).status is Status.NOT_APPLICABLE
    denied = ClusterState("test", (make_object(_head(), "test"),), denied={"NetworkPolicy": "403 Forbidden"})
    assert _isolation(denied).status is Status.ERROR


def _connect(state, error=None):
    from nimwarden.outcome import Attempt

    return Attempt("ray.port", "TCP connect 127.0.0.3:6379", None if error else state, error)


def test_ray_ports_open_from_outside_fail_refused_pass_timeout_error():
    out = judge.ray_ports({"ray_gcs": _connect("open"), "ray_client": _connect("closed")})
    assert out.status is Status.FAIL and "Ray GCS (6379)" in out.reason and "127.0.0.3:6379" in out.reason
    assert judge.ray_ports({"ray_gcs": _connect("closed"), "ray_client": _connect("closed")}).status is Status.PASS
    assert judge.ray_ports({"ray_gcs": _connect(None, error="timed out after 2 s")}).status is Status.ERROR
    assert judge.ray_ports({"ray_gcs": _connect("open")}, allowed=["ray_gcs"]).status is Status.PASS


def test_a_kuberay_raycluster_head_and_workers_are_pods_of_the_model():
    """KubeRay's RayCluster: the head and each worker group are pod templates (judged like any pod), labelled
    as KubeRay labels them; the fixture's policy admits the head's Ray ports only from the cluster's own pods."""
    state = load_manifests([FIXTURES / "kuberay"])
    heads = stack.ray_heads(state)
    assert [t.spec_path for t in heads] == ["spec.headGroupSpec.template.spec"]
    assert heads[0].labels["ray.io/cluster"] == "llm-ray"
    assert _isolation(state, "serving").status is Status.PASS
    from nimwarden.k8s.network import inventory_from_state
    from nimwarden.netpol.model import ReachabilityModel

    inv = inventory_from_state(state)
    pods = {p.name: p for p in inv.pods}
    assert {"RayCluster-llm-ray-head", "RayCluster-llm-ray-worker-0"} <= set(pods)
    assert ReachabilityModel(inv).allowed(pods["RayCluster-llm-ray-worker-0"], pods["RayCluster-llm-ray-head"], 6379) is True
    # without the policy, every pod of the cluster reaches the head's dashboard
    open_state = ClusterState("test", tuple(o for o in state.objects if o.kind != "NetworkPolicy"))
    out = _isolation(open_state, "serving")
    assert out.status is Status.FAIL and "RayCluster/serving/llm-ray" in out.reason
