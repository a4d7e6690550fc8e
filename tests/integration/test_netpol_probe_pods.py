"""In-cluster probe pods, against the ClusterDouble TEST DOUBLE (tests/k8s_replay.py).

No Kubernetes API server or kubelet runs on these machines, so the double
stands in for both: it accepts the creates and deletes, and its fake kubelet
runs the pod's real command (the reach agent, inline, as the pod's user) as a
local process. Everything else is real: the ``kubernetes`` client, the agent,
the TCP connects, the sockets probed.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from nimwarden.families.pod_security.pss import evaluate_pod
from nimwarden.k8s.probe_pods import (
    CLEANUP_SELECTOR,
    READINESS_GATE,
    RUN_LABEL,
    PodRunner,
    ProbePodError,
    ProbePodOptions,
    probe_options_from_mapping,
)
from nimwarden.outcome import Status
from tests.conftest import dead_port
from tests.k8s_replay import ClusterDouble, FakeKubelet

SOURCE_LABELS = {"app": "tenant-client", "pod-template-hash": "7d9f8", "controller-revision-hash": "abc"}


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
    return ProbePodOptions(**{"image": "registry.example/python:3.12-slim", "settle_s": 0.0, "start_timeout_s": 3.0, **kw})


def test_a_probe_pod_runs_the_agent_and_leaves_nothing_behind(listener):
    kubelet = FakeKubelet(lambda pod: ())
    with ClusterDouble([], kubelet) as cluster:
        runner = PodRunner(cluster.configuration(), _settings(), run_id="r1", poll_s=0.1)
        out = json.loads(runner.run("tenant-a", SOURCE_LABELS, _job(listener, dead_port()), agent_deadline_s=10))
        runner.close()
        left = cluster.created()
    results = {r["id"]: r["result"] for r in out["results"]}
    assert results == {"0": "allowed", "1": "error"}  # refused: reached, nothing listens
    assert left == [] and not kubelet.running()
    assert runner.created == ["tenant-a/configmaps/nimwarden-reach-r1-1", "tenant-a/pods/nimwarden-reach-r1-1"] and not runner.leftovers
    (pod,) = kubelet.started
    labels = pod["metadata"]["labels"]
    assert labels["app"] == "tenant-client" and labels[RUN_LABEL] == "r1"
    assert "pod-template-hash" not in labels and "controller-revision-hash" not in labels
    assert labels["app.kubernetes.io/managed-by"] == "nimwarden" and labels["nimwarden.dev/role"] == "reach-probe"

    (owner,) = pod["metadata"]["ownerReferences"]
    (anchor,) = [o for o in cluster.history if o["kind"] == "ConfigMap"]
    assert owner == {"apiVersion": "v1", "kind": "ConfigMap", "name": anchor["metadata"]["name"], "uid": anchor["metadata"]["uid"], "controller": True}
    assert pod["spec"]["readinessGates"] == [{"conditionType": READINESS_GATE}]
    assert pod["spec"]["automountServiceAccountToken"] is False and pod["spec"]["activeDeadlineSeconds"] >= 30
    verdict = evaluate_pod(pod, "restricted")
    assert verdict.allowed, verdict


def test_the_source_keeps_its_own_managed_by_label_a_policy_may_select_on():
    from nimwarden.k8s.probe_pods import probe_labels

    labels = probe_labels({"app": "gw", "app.kubernetes.io/managed-by": "Helm", "nimwarden.dev/role": "spoofed"}, "r9")
    assert labels == {"app": "gw", "app.kubernetes.io/managed-by": "Helm", "nimwarden.dev/role": "reach-probe", "nimwarden.dev/run": "r9"}


@pytest.mark.parametrize(
    ("deny", "match"),
    [
        ({("create", "configmaps", "tenant-a")}, "missing permission: create configmaps in namespace tenant-a"),
        ({("create", "pods", "tenant-a")}, "missing permission: create pods in namespace tenant-a"),
        ({("get", "pods/log", "tenant-a")}, "missing permission: get pods/log in namespace tenant-a"),
    ],
)
def test_a_missing_permission_is_named_and_nothing_is_left(deny, match, listener):
    with ClusterDouble([], FakeKubelet(lambda pod: ()), deny_writes=deny) as cluster:
        runner = PodRunner(cluster.configuration(), _settings(), poll_s=0.1)
        with pytest.raises(ProbePodError, match=match) as err:
            runner.run("tenant-a", {"app": "x"}, _job(listener), agent_deadline_s=10)
        assert "rbac-netpol-probes.yaml" in str(err.value)
        assert cluster.created() == []


def test_an_image_that_cannot_be_pulled_is_an_error_at_once():
    kubelet = FakeKubelet(lambda pod: (), image_errors={"registry.example/missing:1": "ErrImagePull"})
    with ClusterDouble([], kubelet) as cluster:
        runner = PodRunner(cluster.configuration(), _settings(image="registry.example/missing:1", start_timeout_s=60), poll_s=0.1)
        with pytest.raises(ProbePodError, match="cannot start: ErrImagePull"):
            runner.run("tenant-a", {}, _job(80), agent_deadline_s=10)
        assert cluster.created() == []


def test_a_pod_that_is_never_scheduled_times_out_with_the_scheduler_reason():
    with ClusterDouble([], FakeKubelet(lambda pod: None)) as cluster:
        runner = PodRunner(cluster.configuration(), _settings(start_timeout_s=1.0), poll_s=0.1)
        with pytest.raises(ProbePodError, match=r"did not start within 1 s: Unschedulable"):
            runner.run("tenant-a", {}, _job(80), agent_deadline_s=10)
        assert cluster.created() == []


def test_an_agent_that_fails_is_an_error_with_its_exit_status(listener):
    # A position whose "network namespace" does not exist: ip netns exec fails, as a crashing image would.
    kubelet = FakeKubelet(lambda pod: ("ip", "netns", "exec", "nimwarden-no-such-netns"))
    with ClusterDouble([], kubelet) as cluster:
        runner = PodRunner(cluster.configuration(), _settings(), poll_s=0.1)
        with pytest.raises(ProbePodError, match=r"failed: Error \(exit code [1-9]"):
            runner.run("tenant-a", {}, _job(listener), agent_deadline_s=10)
        assert cluster.created() == []


def test_deletes_that_fail_are_reported_as_leftovers_and_cleanup_removes_them(listener):
    kubelet = FakeKubelet(lambda pod: ())
    with ClusterDouble([], kubelet, fail_deletes=True) as cluster:
        runner = PodRunner(cluster.configuration(), _settings(), run_id="crash", poll_s=0.1)
        runner.run("tenant-a", {"app": "x"}, _job(listener), agent_deadline_s=10)
        assert sorted(runner.leftovers) == ["tenant-a/configmaps/nimwarden-reach-crash-1", "tenant-a/pods/nimwarden-reach-crash-1"]
        assert len(cluster.created()) == 2
        cluster.fail_deletes = False
        removed = PodRunner(cluster.configuration(), _settings()).cleanup(["tenant-a"])
        assert sorted(removed) == sorted(runner.leftovers)
        assert cluster.created() == []
        assert any("labelSelector=" in p and "reach-probe" in p for _, p in cluster.requests), CLEANUP_SELECTOR


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


# -- the whole control, through the audit, on the lab's real network -----------------------------------------


def _cluster_objects(net: dict, readiness: dict | None = None) -> list[dict]:
    """The lab network's declared objects as a cluster would serve them: pods Running at their lab addresses.

    ``readiness`` (a readinessProbe) is given to the Triton pods, which are then Ready: the kubelet's
    proof that the probed port answers, for ports that no position may reach (gRPC 8001 here).
    """
    import yaml

    from nimwarden.lab.netpol import NETWORK

    address = {p["model_pod"]: p["address"] for p in net["positions"].values()}
    objects = []
    for item in yaml.safe_load(NETWORK.read_text())["items"]:
        item = json.loads(json.dumps(item))
        if item["kind"] == "Pod":
            key = f"{item['metadata']['namespace']}/{item['metadata']['name']}"
            item["status"] = {"phase": "Running", "podIP": address[key]}
            # No Ray head runs beside these pods' stand-in servers here (the lab's Ray heads are audited in
            # test_ray_head.py): leave its ports out, as a cluster without one would declare them.
            for c in item["spec"].get("containers") or ():
                c["ports"] = [p for p in c.get("ports") or () if not str(p.get("name", "")).startswith("ray-")]
            if readiness and item["metadata"]["name"] == "triton":
                item["spec"]["containers"][0]["readinessProbe"] = readiness
                item["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        objects.append(item)
    return objects


def _placement(net: dict):
    by_namespace = {p["model_pod"].split("/")[0]: p["netns"] for p in net["positions"].values()}

    def place(pod: dict):
        ns = by_namespace.get(pod["metadata"]["namespace"])
        return None if ns is None else ("ip", "netns", "exec", ns)

    return place


def _profile(tmp_path, kubeconfig, probe: dict | None, scope=("127.0.0.0/8", "10.213.0.0/24")) -> Path:
    import yaml

    deployments = [
        {"name": name, "kind": "triton", "expect": expect, "endpoints": {"http": "http://127.0.0.1:9"},
         "kubernetes": {"namespace": f"nim-{name}", "selector": {"app": f"triton-{name}"}}}
        for name, expect in (("hardened", "compliant"), ("exposed", "noncompliant"))
    ]
    options = {"network_policy": {"probe": probe}} if probe is not None else {}
    profile = {"name": "cluster-double", "scope": list(scope), "deployments": deployments,
               "kubernetes": {"source": "live", "kubeconfig": str(kubeconfig), "options": options}}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def _lab_net(lab_state) -> dict:
    from pathlib import Path

    from nimwarden.lab import netns

    net = netns.read_state(Path(lab_state["dir"]))
    if not net or not net.get("ready"):
        pytest.skip(f"the lab network is not up ({netns.available()[1]})")
    return net


GRPC_READINESS = {"tcpSocket": {"port": "grpc"}}
PROBE = {"image": "registry.example/python:3.12-slim", "settle_s": 0, "connect_timeout_s": 0.8, "start_timeout_s": 10}


@pytest.mark.root
@pytest.mark.lab
def test_probe_pods_find_the_unenforced_policy_in_the_lab_network(lab_state, tmp_path):
    from tests.conftest import results_by, run_audit

    net = _lab_net(lab_state)
    kubelet = FakeKubelet(_placement(net))
    with ClusterDouble(_cluster_objects(net, GRPC_READINESS), kubelet) as cluster:
        profile = _profile(tmp_path, cluster.kubeconfig(tmp_path / "kubeconfig"), PROBE)
        proc, summary = run_audit(profile, tmp_path / "reports", "-k", "test_network_enforces_declared_policy")
        left = cluster.created()
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = {(d, c): r for (d, c, _), r in results_by(summary).items()}
    hardened, exposed = got[("hardened", "NETPOL-ENFORCED-001")], got[("exposed", "NETPOL-ENFORCED-001")]
    assert hardened["status"] == "pass", hardened["reason"]
    assert exposed["status"] == "fail" and exposed["severity"] == "critical", exposed["reason"]
    not_enforced = exposed["evidence"]["not_enforced"]
    assert any("tenant-a/client -> nim-exposed/triton 8000/TCP: declared blocked, observed reachable" in r for r in not_enforced), not_enforced
    assert any("tenant-a/client -> nim-exposed/triton 8002/TCP: declared blocked, observed reachable" in r for r in not_enforced), not_enforced
    # Probe pods were really used: one per position per deployment, every one deleted.
    pods = [o for o in cluster.history if o["kind"] == "Pod"]
    assert {p["metadata"]["namespace"] for p in pods} >= {"ingress-nginx", "tenant-a", "monitoring"}
    assert left == [] and not kubelet.running()
    assert not exposed["evidence"]["leftovers"] and exposed["evidence"]["probe_objects"]
    # Scope: every address any probe pod was told to connect to is a destination pod's IP inside the profile's scope.
    import ipaddress

    addresses = set()
    for p in pods:
        command = p["spec"]["containers"][0]["command"]
        job = json.loads(command[command.index("--job") + 1])
        addresses |= {t["address"] for t in job["targets"]}
    assert addresses == {net["positions"]["hardened"]["address"], net["positions"]["exposed"]["address"]}
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("10.213.0.0/24") for a in addresses)


@pytest.mark.root
@pytest.mark.lab
def test_a_destination_outside_the_scope_is_never_probed(lab_state, tmp_path):
    from tests.conftest import results_by, run_audit

    net = _lab_net(lab_state)
    kubelet = FakeKubelet(_placement(net))
    with ClusterDouble(_cluster_objects(net), kubelet) as cluster:
        profile = _profile(tmp_path, cluster.kubeconfig(tmp_path / "kubeconfig"), PROBE, scope=("127.0.0.0/8",))
        _, summary = run_audit(profile, tmp_path / "reports", "-k", "test_network_enforces_declared_policy")
    results = [r for (d, c, _), r in results_by(summary).items() if c == "NETPOL-ENFORCED-001"]
    assert {r["status"] for r in results} == {"error"}
    assert all("outside the scope" in r["reason"] and "10.213.0." in r["reason"] for r in results)
    assert kubelet.started == [] and not [m for m, _ in cluster.requests if m != "GET"]


@pytest.mark.root
@pytest.mark.lab
def test_a_silent_port_that_nothing_may_reach_is_an_error_not_a_pass(lab_state, tmp_path):
    """Without the kubelet's readiness evidence for gRPC 8001 (no position may reach it), its silence proves nothing."""
    from tests.conftest import results_by, run_audit

    net = _lab_net(lab_state)
    with ClusterDouble(_cluster_objects(net), FakeKubelet(_placement(net))) as cluster:
        profile = _profile(tmp_path, cluster.kubeconfig(tmp_path / "kubeconfig"), PROBE)
        _, summary = run_audit(profile, tmp_path / "reports", "-k", "test_network_enforces_declared_policy and hardened")
    (result,) = [r for (d, c, _), r in results_by(summary).items() if c == "NETPOL-ENFORCED-001"]
    assert result["status"] == "error", result["reason"]
    assert "8001/TCP" in result["reason"] and "cannot be told from a dead service" in result["reason"]
    assert all("8001" in e for e in result["evidence"]["errors"])


def test_without_the_opt_in_no_pod_is_created(tmp_path):
    from tests.conftest import results_by, run_audit

    kubelet = FakeKubelet(lambda pod: ())
    with ClusterDouble([], kubelet) as cluster:
        profile = _profile(tmp_path, cluster.kubeconfig(tmp_path / "kubeconfig"), None)
        _, summary = run_audit(profile, tmp_path / "reports", "-k", "test_network_enforces_declared_policy")
    results = [r for (d, c, _), r in results_by(summary).items() if c == "NETPOL-ENFORCED-001"]
    assert {r["status"] for r in results} == {"not_applicable"}
    assert "network_policy.probe.image" in results[0]["reason"]
    assert {m for m, _ in cluster.requests} <= {"GET"}


def test_the_cleanup_command_deletes_only_what_nimwarden_labelled(tmp_path, listener):
    import subprocess
    import sys

    foreign = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "tenant-a", "labels": {"app": "x"}}}
    with ClusterDouble([foreign], FakeKubelet(lambda pod: ()), fail_deletes=True) as cluster:
        runner = PodRunner(cluster.configuration(), _settings(), run_id="crashed", poll_s=0.1)
        runner.run("tenant-a", {"app": "x"}, _job(listener), agent_deadline_s=10)  # its deletes fail: two leftovers
        cluster.fail_deletes = False
        kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
        proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "cleanup", "--kubeconfig", str(kubeconfig)],
                              capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
        remaining = [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in cluster.objects]
    assert proc.returncode == 0, proc.stderr
    assert "2 object(s) labelled" in proc.stdout and "deleted tenant-a/pods/nimwarden-reach-crashed-1" in proc.stdout
    assert remaining == ["tenant-a/app"]


def test_the_cleanup_command_with_a_bad_kubeconfig_is_a_usage_error(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "cleanup", "--kubeconfig", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "nope" in proc.stderr


def test_a_malformed_probe_section_is_a_configuration_error(tmp_path):
    from tests.conftest import run_audit

    with ClusterDouble([], FakeKubelet(lambda pod: ())) as cluster:
        profile = _profile(tmp_path, cluster.kubeconfig(tmp_path / "kubeconfig"), {"image": "x", "max_parallel": "many"})
        proc, _ = run_audit(profile, tmp_path / "reports", "-k", "test_network_enforces_declared_policy")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    line = [ln for ln in proc.stderr.splitlines() if "network_policy.probe.max_parallel" in ln]
    assert line and str(profile) in line[0]


def test_the_documented_rbac_grants_exactly_what_probe_pods_use_and_no_exec(listener):
    """deploy/k8s/opt-in/rbac-netpol-probes.yaml against the requests a probe run and a cleanup really make."""
    import yaml

    from nimwarden.families.rbac import judge as rbac
    from nimwarden.k8s import load_manifests, pod_templates

    rbac_file = Path(__file__).parents[2] / "deploy" / "k8s" / "opt-in" / "rbac-netpol-probes.yaml"
    (role,) = [d for d in yaml.safe_load_all(rbac_file.read_text()) if d["kind"] == "Role"]
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    with ClusterDouble([], FakeKubelet(lambda pod: ())) as cluster:
        runner = PodRunner(cluster.configuration(), _settings(), poll_s=0.1)
        runner.run("tenant-a", {"app": "x"}, _job(listener), agent_deadline_s=10)
        runner.cleanup(["tenant-a"])
    used = set()
    for method, path in cluster.requests:
        parts = path.split("?")[0].strip("/").split("/")  # api v1 namespaces <ns> <plural> [<name> [<sub>]]
        resource = parts[4] + (f"/{parts[6]}" if len(parts) > 6 else "")
        verb = {"POST": "create", "DELETE": "delete", "GET": "get" if len(parts) > 5 else "list"}[method]
        used.add((resource, verb))
    assert used == granted, f"used {sorted(used)} vs granted {sorted(granted)}"
    state = load_manifests([rbac_file, *sorted((Path(__file__).parents[2] / "deploy" / "k8s").glob("*.yaml"))])
    templates = pod_templates(state)
    for check in (rbac.pod_exec, rbac.wildcards, rbac.escalation_verbs, rbac.secrets_cluster_wide):
        assert check(state, templates).status == Status.PASS, check.__name__
