"""In-cluster probe pods through a real Kubernetes API server (tests/kube_cluster.py).

The pods are created, scheduled (the real scheduler), garbage-collected and deleted by a real
1.20.2 control plane; the lab node (nimwarden.lab.kube.kubelet) runs each probe pod's command — the
reach agent, inline, as the pod's user — inside the network namespace its Kubernetes namespace is
placed in, reports its status through ``pods/status`` and serves its log to the API server, which
proxies ``GET pods/log`` to it. Permissions are the real RBAC authorizer's, through the
ServiceAccount deploy/k8s defines; the server's audit log says what the harness asked.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import yaml

from nimwarden.families.pod_security.pss import evaluate_pod
from nimwarden.k8s.probe_pods import (
    CLEANUP_SELECTOR,
    READINESS_GATE,
    RUN_LABEL,
    PodRunner,
    ProbePodError,
    ProbePodOptions,
    pod_manifest,
    probe_options_from_mapping,
)
from nimwarden.lab.kube import NODE_NAME, PYTHON_IMAGE
from nimwarden.lab.kube.apply import Doc, load_documents
from nimwarden.outcome import Status
from tests.conftest import dead_port
from tests.kube_cluster import AUDIT_SA, sa_user

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy" / "k8s"
PROBE_RBAC = DEPLOY / "opt-in" / "rbac-netpol-probes.yaml"
SOURCE_LABELS = {"app": "tenant-client", "pod-template-hash": "7d9f8", "controller-revision-hash": "abc"}
SA = sa_user(*AUDIT_SA)
TENANT = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-a", "labels": {"tenant": "a"}}}


@pytest.fixture
def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


def _job(*ports: int) -> dict:
    return {"timeout_s": 0.5, "concurrency": 4, "targets": [{"id": str(i), "address": "127.0.0.1", "port": p, "protocol": "TCP"} for i, p in enumerate(ports)]}


def _settings(**kw) -> ProbePodOptions:
    return ProbePodOptions(**{"image": PYTHON_IMAGE, "settle_s": 0.0, "start_timeout_s": 15.0, **kw})


def _probe_role(drop: tuple[tuple[str, str], ...] = ()) -> list[Doc]:
    """deploy/k8s/opt-in/rbac-netpol-probes.yaml (Role + RoleBinding in tenant-a) without the (resource, verb) pairs in ``drop``."""
    docs = load_documents([PROBE_RBAC])
    for d in docs:
        if d.kind == "Role":
            rules = [dict(r, verbs=[v for v in r["verbs"] if not any((x, v) in drop for x in r["resources"])]) for r in d.body["rules"]]
            d.body["rules"] = [r for r in rules if r["verbs"]]
    return docs


@pytest.fixture(scope="module")
def cluster(kube_cluster):
    """tenant-a, and deploy/k8s's ServiceAccount (no role yet: each test binds what it needs)."""
    with kube_cluster.applied(TENANT, DEPLOY / "namespace.yaml", DEPLOY / "serviceaccount.yaml"):
        kube_cluster.token = kube_cluster.service_account_token(*AUDIT_SA)
        yield kube_cluster


def _left(cluster, namespace: str = "tenant-a") -> list[str]:
    """Probe objects still in the cluster (as the admin sees them)."""
    out = []
    for plural in ("pods", "configmaps"):
        _, body = cluster.call("GET", f"/api/v1/namespaces/{namespace}/{plural}", params={"labelSelector": CLEANUP_SELECTOR})
        out += [f"{namespace}/{plural}/{i['metadata']['name']}" for i in body.get("items") or ()]
    return out


def test_a_probe_pod_runs_the_agent_and_leaves_nothing_behind(cluster, listener):
    mark = cluster.mark()
    runner = PodRunner(cluster.configuration(), _settings(), run_id="r1", poll_s=0.1)
    out = json.loads(runner.run("tenant-a", SOURCE_LABELS, _job(listener, dead_port()), agent_deadline_s=10))
    runner.close()
    results = {r["id"]: r["result"] for r in out["results"]}
    assert results == {"0": "allowed", "1": "error"}  # refused: reached, nothing listens
    assert _left(cluster) == []
    assert runner.created == ["tenant-a/configmaps/nimwarden-reach-r1-1", "tenant-a/pods/nimwarden-reach-r1-1"] and not runner.leftovers
    asked = [(e["verb"], e["objectRef"].get("resource"), e["objectRef"].get("subresource"), e["responseStatus"]["code"])
             for e in cluster.requests(user="nimwarden-lab-admin", since=mark) if e.get("objectRef")]
    # the log came through the API server (proxied to the lab node's kubelet endpoint), and both objects were deleted
    assert ("get", "pods", "log", 200) in asked
    assert ("delete", "pods", None, 200) in asked and ("delete", "configmaps", None, 200) in asked


def test_the_probe_pod_is_admitted_as_built(cluster):
    """What the server stored: labels, the anchor as controller owner (real UID), the readiness gate, no token."""
    status, anchor = cluster.call("POST", "/api/v1/namespaces/tenant-a/configmaps",
                                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "anchor-shape", "namespace": "tenant-a"}})
    assert status == 201, anchor
    manifest = pod_manifest("anchor-shape", "tenant-a", SOURCE_LABELS, _job(80), _settings(), "r2", anchor["metadata"]["uid"], 5)
    status, pod = cluster.call("POST", "/api/v1/namespaces/tenant-a/pods", manifest)
    try:
        assert status == 201, pod
        labels = pod["metadata"]["labels"]
        assert labels["app"] == "tenant-client" and labels[RUN_LABEL] == "r2"
        assert "pod-template-hash" not in labels and "controller-revision-hash" not in labels
        assert labels["app.kubernetes.io/managed-by"] == "nimwarden" and labels["nimwarden.dev/role"] == "reach-probe"
        (owner,) = pod["metadata"]["ownerReferences"]
        assert owner == {"apiVersion": "v1", "kind": "ConfigMap", "name": "anchor-shape", "uid": anchor["metadata"]["uid"], "controller": True}
        assert pod["spec"]["readinessGates"] == [{"conditionType": READINESS_GATE}]
        assert pod["spec"]["automountServiceAccountToken"] is False and not pod["spec"].get("volumes")
        assert evaluate_pod(pod, "restricted").allowed
    finally:
        # Deleting the anchor alone: the garbage collector deletes the pod it owns (what `nimwarden cleanup` relies on).
        cluster.call("DELETE", "/api/v1/namespaces/tenant-a/configmaps/anchor-shape")
    deadline = time.monotonic() + 60
    while cluster.call("GET", "/api/v1/namespaces/tenant-a/pods/anchor-shape")[0] != 404:
        assert time.monotonic() < deadline, "the garbage collector left the pod of a deleted anchor"
        time.sleep(0.3)


def test_the_source_keeps_its_own_managed_by_label_a_policy_may_select_on():
    from nimwarden.k8s.probe_pods import probe_labels

    labels = probe_labels({"app": "gw", "app.kubernetes.io/managed-by": "Helm", "nimwarden.dev/role": "spoofed"}, "r9")
    assert labels == {"app": "gw", "app.kubernetes.io/managed-by": "Helm", "nimwarden.dev/role": "reach-probe", "nimwarden.dev/run": "r9"}


@pytest.mark.parametrize(
    ("drop", "match"),
    [
        ((("configmaps", "create"),), "missing permission: create configmaps in namespace tenant-a"),
        ((("pods", "create"),), "missing permission: create pods in namespace tenant-a"),
        ((("pods/log", "get"),), "missing permission: get pods/log in namespace tenant-a"),
    ],
)
def test_a_missing_permission_is_named_and_nothing_is_left(cluster, drop, match, listener):
    """The probe Role less one rule, through the real authorizer: the refusal names the permission; nothing stays."""
    cluster.apply(_probe_role(drop))
    runner = PodRunner(cluster.configuration(token=cluster.token), _settings(), poll_s=0.1)
    with pytest.raises(ProbePodError, match=match) as err:
        runner.run("tenant-a", {"app": "x"}, _job(listener), agent_deadline_s=10)
    assert "rbac-netpol-probes.yaml" in str(err.value)
    assert _left(cluster) == [] and not runner.leftovers


def test_an_image_the_node_cannot_pull_is_an_error_at_once(cluster):
    runner = PodRunner(cluster.configuration(), _settings(image="registry.example/missing:1", start_timeout_s=60), poll_s=0.1)
    t0 = time.monotonic()
    with pytest.raises(ProbePodError, match="cannot start: ErrImagePull"):
        runner.run("tenant-a", {}, _job(80), agent_deadline_s=10)
    assert time.monotonic() - t0 < 30 and _left(cluster) == []


def test_a_pod_that_is_never_scheduled_times_out_with_the_scheduler_reason(cluster):
    """The node cordoned: the real scheduler's reason reaches the error."""
    assert cluster.call("PATCH", f"/api/v1/nodes/{NODE_NAME}", {"spec": {"unschedulable": True}},
                        content_type="application/merge-patch+json")[0] == 200
    try:
        runner = PodRunner(cluster.configuration(), _settings(start_timeout_s=4.0), poll_s=0.1)
        with pytest.raises(ProbePodError, match=r"did not start within 4 s: Unschedulable: 0/1 nodes are available: 1 node\(s\) were unschedulable"):
            runner.run("tenant-a", {}, _job(80), agent_deadline_s=10)
    finally:
        cluster.call("PATCH", f"/api/v1/nodes/{NODE_NAME}", {"spec": {"unschedulable": False}}, content_type="application/merge-patch+json")
    assert _left(cluster) == []


def test_an_agent_that_fails_is_an_error_with_its_exit_status(cluster, listener):
    """tenant-a placed in a network namespace that does not exist: `ip netns exec` fails, as a crashing image would."""
    cluster.place(placement={"tenant-a": {"netns": "nimwarden-no-such-netns", "address": "10.244.9.9"}})
    try:
        runner = PodRunner(cluster.configuration(), _settings(), poll_s=0.1)
        with pytest.raises(ProbePodError, match=r"failed: Error \(exit code [1-9]"):
            runner.run("tenant-a", {}, _job(listener), agent_deadline_s=10)
    finally:
        cluster.place(placement={})
    assert _left(cluster) == []


def test_deletes_that_are_refused_are_leftovers_and_cleanup_removes_them(cluster, listener):
    cluster.apply(_probe_role(drop=(("pods", "delete"), ("configmaps", "delete"))))
    runner = PodRunner(cluster.configuration(token=cluster.token), _settings(), run_id="crash", poll_s=0.1)
    runner.run("tenant-a", {"app": "x"}, _job(listener), agent_deadline_s=10)
    assert sorted(runner.leftovers) == ["tenant-a/configmaps/nimwarden-reach-crash-1", "tenant-a/pods/nimwarden-reach-crash-1"]
    assert sorted(_left(cluster)) == sorted(runner.leftovers)
    removed = PodRunner(cluster.configuration(), _settings()).cleanup(["tenant-a"])
    assert sorted(removed) == sorted(runner.leftovers)
    assert _left(cluster) == []


def test_the_cleanup_command_deletes_only_what_nimwarden_labelled(cluster, tmp_path, listener):
    import subprocess
    import sys

    foreign = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "tenant-a", "labels": {"app": "x"}},
               "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}
    with cluster.applied(foreign):
        cluster.apply(_probe_role(drop=(("pods", "delete"), ("configmaps", "delete"))))
        runner = PodRunner(cluster.configuration(token=cluster.token), _settings(), run_id="crashed", poll_s=0.1)
        runner.run("tenant-a", {"app": "x"}, _job(listener), agent_deadline_s=10)  # its deletes are refused: two leftovers
        proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "cleanup", "--kubeconfig", str(cluster.kubeconfig)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        _, pods = cluster.call("GET", "/api/v1/namespaces/tenant-a/pods")
        _, maps = cluster.call("GET", "/api/v1/namespaces/tenant-a/configmaps", params={"labelSelector": CLEANUP_SELECTOR})
    assert proc.returncode == 0, proc.stderr
    assert "2 object(s) labelled" in proc.stdout and "deleted tenant-a/pods/nimwarden-reach-crashed-1" in proc.stdout
    assert [p["metadata"]["name"] for p in pods["items"]] == ["app"] and maps["items"] == []


def test_the_cleanup_command_with_a_bad_kubeconfig_is_a_usage_error(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "cleanup", "--kubeconfig", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "nope" in proc.stderr


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "probe.image"),
        ({"image": "x", "bogus": 1}, "probe.bogus"),
        ({"image": "x", "max_parallel": 0}, "probe.max_parallel"),
        ({"image": "x", "positions": [{"labels": {}}]}, "probe.positions[0].namespace"),
        ({"image": "x", "positions": [{"namespace": "a", "labels": {"k": 1}}]}, "probe.positions[0].labels.k"),
        ({"image": "x", "image_pull_policy": "Sometimes"}, "probe.image_pull_policy"),
    ],
)
def test_malformed_probe_settings_name_the_field(raw, field):
    with pytest.raises(ValueError) as err:
        probe_options_from_mapping(raw)
    assert str(err.value).startswith(f"network_policy.{field}: ")


def test_the_documented_rbac_grants_exactly_what_probe_pods_use_and_no_exec(cluster, listener):
    """deploy/k8s/opt-in/rbac-netpol-probes.yaml through the real authorizer: a probe run and a cleanup as the
    ServiceAccount bound to exactly that Role succeed (enough), and the audit log shows every grant used (no more)."""
    from nimwarden.families.rbac import judge as rbac
    from nimwarden.k8s import load_manifests, pod_templates

    (role,) = [d.body for d in load_documents([PROBE_RBAC]) if d.kind == "Role"]
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    cluster.apply(_probe_role())
    mark = cluster.mark()
    runner = PodRunner(cluster.configuration(token=cluster.token), _settings(), poll_s=0.1)
    runner.run("tenant-a", {"app": "x"}, _job(listener), agent_deadline_s=10)
    assert not runner.leftovers
    runner.cleanup(["tenant-a"])
    events = cluster.requests(user=SA, since=mark)
    assert all(e["responseStatus"]["code"] < 400 for e in events), [(e["verb"], e["requestURI"]) for e in events]
    used = {(e["objectRef"]["resource"] + (f"/{e['objectRef']['subresource']}" if e["objectRef"].get("subresource") else ""), e["verb"])
            for e in events}
    assert used == granted, f"used {sorted(used)} vs granted {sorted(granted)}"
    state = load_manifests([PROBE_RBAC, *sorted(DEPLOY.glob("*.yaml"))])
    templates = pod_templates(state)
    for check in (rbac.pod_exec, rbac.wildcards, rbac.escalation_verbs, rbac.secrets_cluster_wide):
        assert check(state, templates).status == Status.PASS, check.__name__


# -- the whole control, through the audit, on the lab's real network -----------------------------------------

PROBE = {"image": PYTHON_IMAGE, "settle_s": 0, "connect_timeout_s": 0.8, "start_timeout_s": 15}
STAND_IN = "registry.example/lab-stand-in:1"  # an image the lab node plays with a lab process, never runs
GRPC_READINESS = {"tcpSocket": {"port": "grpc"}}


def _network_objects(readiness: dict | None = None) -> list[dict]:
    """The lab network's declared objects (nimwarden/lab/netpol/network.yaml) as a cluster holds them: its pods
    are the lab's processes in their network namespaces (the lab node stands them in, at their addresses).

    ``readiness`` (a readinessProbe) is given to the Triton pods, which the node then reports Ready: the kubelet's
    proof that the probed port answers, for ports that no position may reach (gRPC 8001 here).
    """
    from nimwarden.lab.netpol import NETWORK

    objects = []
    for item in yaml.safe_load(NETWORK.read_text())["items"]:
        item = json.loads(json.dumps(item))
        if item["kind"] == "Pod":
            for c in item["spec"].get("containers") or ():
                c["image"] = STAND_IN  # never run: the lab's own process plays it
                # No Ray head runs beside these pods' servers in this test (test_ray_head.py audits the lab's):
                # leave its ports out, as a cluster without one would declare them.
                c["ports"] = [p for p in c.get("ports") or () if not str(p.get("name", "")).startswith("ray-")]
            if readiness and item["metadata"]["name"] == "triton":
                item["spec"]["containers"][0]["readinessProbe"] = readiness
        objects.append(item)
    return objects


def _profile(tmp_path, kubeconfig, probe: dict | None, scope=("127.0.0.0/8", "10.213.0.0/24")) -> Path:
    deployments = [
        {"name": name, "kind": "triton", "expect": expect, "endpoints": {"http": "http://127.0.0.1:9"},
         "kubernetes": {"namespace": f"nim-{name}", "selector": {"app": f"triton-{name}"}}}
        for name, expect in (("hardened", "compliant"), ("exposed", "noncompliant"))
    ]
    options = {"network_policy": {"probe": probe}} if probe is not None else {}
    profile = {"name": "lab-network-cluster", "scope": list(scope), "deployments": deployments,
               "kubernetes": {"source": "live", "kubeconfig": str(kubeconfig), "options": options}}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


@pytest.fixture
def lab_network(kube_cluster, lab_state):
    """The session's API server placing each namespace of the lab network in its network namespace, holding
    network.yaml's objects (with a readiness probe on the Triton pods)."""
    from nimwarden.lab import netns

    net = netns.read_state(Path(lab_state["dir"]))
    if not net or not net.get("ready"):
        pytest.skip(f"the lab network is not up ({netns.available()[1]})")
    placement = {p["model_pod"].split("/")[0]: {"netns": p["netns"], "address": p["address"]} for p in net["positions"].values()}
    kube_cluster.place(placement=placement, stand_in_images=[STAND_IN])
    try:
        yield net

    finally:
        kube_cluster.place(placement={}, stand_in_images=[])


def _running(cluster, timeout_s: float = 30.0) -> None:
    """Until every stand-in pod of the lab network is Running at its address."""
    deadline = time.monotonic() + timeout_s
    while True:
        _, pods = cluster.call("GET", "/api/v1/pods", params={"labelSelector": "!nimwarden.dev/role"})
        if pods.get("items") and all((p.get("status") or {}).get("phase") == "Running" for p in pods["items"]):
            return
        assert time.monotonic() < deadline, [(p["metadata"]["name"], (p.get("status") or {}).get("phase")) for p in pods.get("items") or ()]
        time.sleep(0.2)


@pytest.mark.root
@pytest.mark.lab
def test_probe_pods_find_the_unenforced_policy_in_the_lab_network(kube_cluster, lab_network, tmp_path):
    from tests.conftest import results_by, run_audit

    net = lab_network
    with kube_cluster.applied(*_network_objects(GRPC_READINESS)):
        _running(kube_cluster)
        mark = kube_cluster.mark()
        profile = _profile(tmp_path, kube_cluster.kubeconfig, PROBE)
        proc, summary = run_audit(profile, tmp_path / "reports", "-k", "test_network_enforces_declared_policy")
        created = [e for e in kube_cluster.requests(user="nimwarden-lab-admin", since=mark) if e["verb"] == "create"]
        left = {ns: _left(kube_cluster, ns) for ns in ("ingress-nginx", "tenant-a", "monitoring")}
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = {(d, c): r for (d, c, _), r in results_by(summary).items()}
    hardened, exposed = got[("hardened", "NETPOL-ENFORCED-001")], got[("exposed", "NETPOL-ENFORCED-001")]
    assert hardened["status"] == "pass", hardened["reason"]
    assert exposed["status"] == "fail" and exposed["severity"] == "critical", exposed["reason"]
    not_enforced = exposed["evidence"]["not_enforced"]
    assert any("tenant-a/client -> nim-exposed/triton 8000/TCP: declared blocked, observed reachable" in r for r in not_enforced), not_enforced
    assert any("tenant-a/client -> nim-exposed/triton 8002/TCP: declared blocked, observed reachable" in r for r in not_enforced), not_enforced
    # Probe pods were really created through the API server, one per position per deployment, and every one deleted.
    pods = [e for e in created if e["objectRef"]["resource"] == "pods"]
    assert {e["objectRef"]["namespace"] for e in pods} >= {"ingress-nginx", "tenant-a", "monitoring"}
    assert all(e["responseStatus"]["code"] == 201 for e in created)
    assert left == {"ingress-nginx": [], "tenant-a": [], "monitoring": []}
    assert not exposed["evidence"]["leftovers"] and exposed["evidence"]["probe_objects"]
    # Scope: the only addresses probed are the destination pods' (the lab network's), inside the profile's scope.
    assert exposed["evidence"]["destination"].endswith(net["positions"]["exposed"]["address"])
    assert hardened["evidence"]["destination"].endswith(net["positions"]["hardened"]["address"])


@pytest.mark.root
@pytest.mark.lab
def test_a_destination_outside_the_scope_is_never_probed(kube_cluster, lab_network, tmp_path):
    from tests.conftest import results_by, run_audit

    with kube_cluster.applied(*_network_objects()):
        _running(kube_cluster)
        mark = kube_cluster.mark()
        profile = _profile(tmp_path, kube_cluster.kubeconfig, PROBE, scope=("127.0.0.0/8",))
        _, summary = run_audit(profile, tmp_path / "reports", "-k", "test_network_enforces_declared_policy")
        verbs = {e["verb"] for e in kube_cluster.requests(user="nimwarden-lab-admin", since=mark)}
    results = [r for (d, c, _), r in results_by(summary).items() if c == "NETPOL-ENFORCED-001"]
    assert {r["status"] for r in results} == {"error"}
    assert all("outside the scope" in r["reason"] and "10.213.0." in r["reason"] for r in results)
    assert verbs <= {"get", "list"}


@pytest.mark.root
@pytest.mark.lab
def test_a_silent_port_that_nothing_may_reach_is_an_error_not_a_pass(kube_cluster, lab_network, tmp_path):
    """Without the kubelet's readiness evidence for gRPC 8001 (no position may reach it), its silence proves nothing."""
    from tests.conftest import results_by, run_audit

    with kube_cluster.applied(*_network_objects()):
        _running(kube_cluster)
        profile = _profile(tmp_path, kube_cluster.kubeconfig, PROBE)
        _, summary = run_audit(profile, tmp_path / "reports", "-k", "test_network_enforces_declared_policy and hardened")
    (result,) = [r for (d, c, _), r in results_by(summary).items() if c == "NETPOL-ENFORCED-001"]
    assert result["status"] == "error", result["reason"]
    # gRPC 8001 only: every other declared port of the hardened pod answers some position
    assert "cannot be told from a dead service" in result["reason"] and "8001/TCP" in json.dumps(result["evidence"])
    assert all("8001" in e for e in result["evidence"]["errors"])


def test_without_the_opt_in_no_pod_is_created(kube_cluster, tmp_path):
    from tests.conftest import results_by, run_audit

    mark = kube_cluster.mark()
    profile = _profile(tmp_path, kube_cluster.kubeconfig, None)
    _, summary = run_audit(profile, tmp_path / "reports", "-k", "test_network_enforces_declared_policy")
    results = [r for (d, c, _), r in results_by(summary).items() if c == "NETPOL-ENFORCED-001"]
    assert {r["status"] for r in results} == {"not_applicable"}
    assert "network_policy.probe.image" in results[0]["reason"]
    assert {e["verb"] for e in kube_cluster.requests(user="nimwarden-lab-admin", since=mark)} <= {"get", "list"}


def test_a_malformed_probe_section_is_a_configuration_error(kube_cluster, tmp_path):
    from tests.conftest import run_audit

    profile = _profile(tmp_path, kube_cluster.kubeconfig, {"image": "x", "max_parallel": "many"})
    proc, _ = run_audit(profile, tmp_path / "reports", "-k", "test_network_enforces_declared_policy")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    line = [ln for ln in proc.stderr.splitlines() if "network_policy.probe.max_parallel" in ln]
    assert line and str(profile) in line[0]
