"""The lab's own Kubernetes API server (nimwarden.lab.kube): started by `lab up`, holding the lab's manifests,
audited through; the harness's least privilege proven by its real RBAC authorizer; and nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nimwarden.lab import kube
from nimwarden.lab.kube import control_plane
from nimwarden.lab.kube.apply import load_documents
from tests.conftest import ROOT, lab_profile, run_audit
from tests.kube_cluster import AUDIT_SA, KubeCluster, read_role, refused, sa_user

DEPLOY = ROOT / "deploy" / "k8s"
SA = sa_user(*AUDIT_SA)
LAB_NAMESPACES = ("nim-hardened", "nim-exposed")
NOT_PERFORMANCE = ("-k", "not test_performance")


@pytest.fixture(scope="module")
def lab_cluster(lab_state):
    if not (lab_state.get("kube") or {}).get("running"):
        pytest.skip(f"the lab runs no API server: {(lab_state.get('kube') or {}).get('reason')}")
    directory = Path(lab_state["dir"])
    return KubeCluster(directory, kube.read_state(directory))


def _secrets_opt_in() -> list:
    """deploy/k8s/opt-in/rbac-read-secrets.yaml, once per audited namespace (as its comments say to)."""
    docs = []
    for ns in LAB_NAMESPACES:
        for d in load_documents([DEPLOY / "opt-in" / "rbac-read-secrets.yaml"]):
            d.body["metadata"]["namespace"] = ns
            docs.append(d)
    return docs


@pytest.fixture(scope="module")
def audit_identity(lab_cluster, tmp_path_factory):
    """deploy/k8s applied to the lab's cluster: its namespace, ServiceAccount, read role, the secrets opt-in in the
    audited namespaces and the probe-pod Role; a kubeconfig holding the ServiceAccount's token. Removed afterwards."""
    tenant = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-a"}}
    with lab_cluster.applied(DEPLOY / "namespace.yaml", DEPLOY / "serviceaccount.yaml", *read_role(), *_secrets_opt_in(),
                             tenant, DEPLOY / "opt-in" / "rbac-netpol-probes.yaml"):
        token = lab_cluster.service_account_token(*AUDIT_SA)
        yield lab_cluster.token_kubeconfig(tmp_path_factory.mktemp("sa") / "kubeconfig", token)


def _sa_profile(tmp_path: Path, lab_state: dict, kubeconfig: Path) -> Path:
    """targets/lab.yaml read live as the ServiceAccount, in the audited namespaces (the in-cluster profile's shape)."""
    path = lab_profile(tmp_path, lab_state)
    profile = yaml.safe_load(path.read_text())
    profile["kubernetes"].update(kubeconfig=str(kubeconfig), namespaces=list(LAB_NAMESPACES))
    path.write_text(yaml.safe_dump(profile))
    return path


def test_lab_up_runs_a_real_api_server_with_the_lab_on_it(lab_state, lab_cluster):
    from nimwarden.lab import netns

    k = lab_state["kube"]
    assert k["running"] and k["version"] == "1.20.2" and Path(k["kubeconfig"]) == Path(lab_state["dir"]) / "kubeconfig"
    status, node = lab_cluster.call("GET", f"/api/v1/nodes/{kube.NODE_NAME}")
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
    net = netns.read_state(Path(lab_state["dir"])) or {}
    for name in ("hardened", "exposed"):
        _, pods = lab_cluster.call("GET", f"/api/v1/namespaces/nim-{name}/pods", params={"labelSelector": f"app=triton-{name}"})
        (pod,) = pods["items"]  # the Deployment's one replica, scheduled by the real scheduler onto the lab node
        assert pod["spec"]["nodeName"] == kube.NODE_NAME and pod["status"]["phase"] == "Running"
        if net.get("ready"):  # the lab's tritonserver plays the pod, at its network namespace's address
            assert pod["status"]["podIP"] == net["positions"][name]["address"]


def test_the_audit_identity_reads_the_whole_lab_without_one_refusal(lab_state, lab_cluster, audit_identity, tmp_path):
    """A full audit, snapshot and discovery as deploy/k8s's ServiceAccount: 0 Forbidden (the API server's audit log),
    gets and lists only, and the same (control, deployment, status) set as from the lab's manifests.

    Every family but performance: it reads no cluster state (its verdicts are this machine's timing), and its load
    windows were half of each audit here (17 of 37 s on two cores); tests/reliability/test_harm_and_secrets.py audits
    the lab with it."""
    mark = lab_cluster.mark()
    proc, summary = run_audit(_sa_profile(tmp_path, lab_state, audit_identity), tmp_path / "reports", *NOT_PERFORMANCE,
                              timeout=900)
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    snap = subprocess.run([sys.executable, "-m", "nimwarden.cli", "snapshot", "--kubeconfig", str(audit_identity), "--out",
                           str(tmp_path / "snap.json"), *[a for ns in LAB_NAMESPACES for a in ("-n", ns)]],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    found = subprocess.run([sys.executable, "-m", "nimwarden.cli", "discover", "--kubeconfig", str(audit_identity), "--out",
                            str(tmp_path / "found.yaml"), *[a for ns in LAB_NAMESPACES for a in ("-n", ns)]],
                           capture_output=True, text=True, timeout=120, cwd=ROOT)
    asked = lab_cluster.requests(user=SA, since=mark)
    assert snap.returncode == 0 and found.returncode == 0, snap.stderr + found.stderr
    assert asked and refused(asked) == []
    assert {e["verb"] for e in asked} <= {"get", "list"}
    assert not [r for r in summary["results"] if "missing permission" in r["reason"]]
    assert {d["name"] for d in yaml.safe_load((tmp_path / "found.yaml").read_text())["deployments"]} == {
        "triton-hardened", "triton-exposed", "llama-exposed", "nemo-hardened", "nemo-exposed"}

    (tmp_path / "m").mkdir()
    manifests = lab_profile(tmp_path / "m", lab_state)
    profile = yaml.safe_load(manifests.read_text())
    profile["kubernetes"] = {**profile["kubernetes"], "source": "manifests"}
    profile["kubernetes"].pop("kubeconfig")
    manifests.write_text(yaml.safe_dump(profile))
    proc, from_manifests = run_audit(manifests, tmp_path / "m" / "reports", *NOT_PERFORMANCE, timeout=900)
    assert from_manifests is not None, proc.stdout[-3000:]

    def verdicts(s):
        return {(r["control"], r["deployment"], r["status"]) for r in s["results"]}
    live, static = verdicts(summary), verdicts(from_manifests)
    assert live == static, (sorted(live - static), sorted(static - live))
    assert {r["family"] for r in summary["results"]} >= {"pod-security", "rbac", "secrets", "network-policy", "nemo"}
    assert "performance" not in {r["family"] for r in summary["results"]}


def test_a_rule_removed_from_the_read_role_is_named_never_passed(lab_state, lab_cluster, audit_identity, tmp_path):
    """networkpolicies taken out of deploy/k8s/rbac-read.yaml: the real authorizer refuses the list, and every
    network-policy control that needs it reports error naming that read."""
    lab_cluster.apply(read_role(drop=("networkpolicies",)))
    try:
        mark = lab_cluster.mark()
        proc, summary = run_audit(_sa_profile(tmp_path, lab_state, audit_identity), tmp_path / "reports", "-k", "test_network_policy")
    finally:
        lab_cluster.apply(read_role())
    assert summary is not None, proc.stdout[-3000:]
    netpol = [r for r in summary["results"] if r["control"] in ("NETPOL-DEFAULTDENY-001", "NETPOL-NIMAPI-001", "NETPOL-EGRESS-001",
                                                                "NETPOL-METRICS-001")]
    assert netpol and {r["status"] for r in netpol} == {"error"}, [(r["control"], r["status"]) for r in netpol]
    assert all("list networkpolicies (networking.k8s.io) in namespace nim-" in r["reason"] for r in netpol)
    assert any("/networkpolicies" in u for u in refused(lab_cluster.requests(user=SA, since=mark)))


def test_kube_down_leaves_nothing_even_after_a_crash(tmp_path):
    """A control plane whose state file is lost (a crashed lab): down() still finds its processes by their
    command lines, and removes the folder; nothing of it runs afterwards."""
    ok, why = kube.available()
    if not ok:
        pytest.skip(why)
    directory = tmp_path / "lab"
    state = kube.up(directory, log=lambda *_: None)
    pids = [p["pid"] for p in state["processes"].values()]
    (directory / control_plane.STATE_FILE).unlink()  # the crash: no record of the PIDs
    assert kube.down(directory, log=lambda *_: None) >= len(pids)
    deadline = time.monotonic() + 10
    while any(control_plane.running(p) for p in pids):
        assert time.monotonic() < deadline, "a control-plane process survived down()"
        time.sleep(0.1)
    assert not (directory / "kube").exists() and not (directory / "kubeconfig").exists()


def test_a_control_plane_that_cannot_start_is_one_line_naming_its_log(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in control_plane.BINARIES:
        script = fake / name
        script.write_text("#!/bin/sh\necho 'error: flag provided but not defined: --broken' >&2\nexit 1\n")
        script.chmod(0o755)
    monkeypatch.setenv("NIMWARDEN_KUBE_BIN", str(fake))
    with pytest.raises(control_plane.ControlPlaneError) as err:
        kube.up(tmp_path / "lab", log=lambda *_: None)
    message = str(err.value)
    assert "\n" not in message and "exited with status 1" in message and ("kube-apiserver.log" in message or "etcd.log" in message)
    assert "flag provided but not defined" in message
    assert not (tmp_path / "lab" / "kube").exists()
    monkeypatch.setenv("NIMWARDEN_KUBE_BIN", str(tmp_path / "nowhere"))
    ok, why = kube.available()
    assert not ok and "missing etcd, kube-apiserver" in why and "NIMWARDEN_KUBE_BIN" in why


def test_without_an_api_server_the_lab_profile_reads_its_manifests(tmp_path):
    from nimwarden.families import load_profile
    from nimwarden.lab import profile_for

    state_dir = tmp_path / "lab"
    state_dir.mkdir()
    (state_dir / "state.json").write_text(json.dumps({"deployments": {}}))
    state = {"dir": str(state_dir), "kube": {"running": False, "reason": "no Kubernetes 1.20.2 control plane in /x"}}
    out = profile_for(ROOT / "targets" / "lab.yaml", state)
    profile = yaml.safe_load(out.read_text())
    assert out.parent == state_dir and profile["kubernetes"]["source"] == "manifests" and "kubeconfig" not in profile["kubernetes"]
    assert all(Path(p).is_dir() and os.path.isabs(p) for p in profile["kubernetes"]["paths"])
    assert "no Kubernetes 1.20.2 control plane" in out.read_text().splitlines()[0]
    with pytest.raises(Exception, match="lab state has no"):  # a real lab state is needed to load it; the section itself is valid
        load_profile(out)
    assert profile_for(ROOT / "targets" / "lab.yaml", {"dir": str(state_dir), "kube": {"running": True}}) == ROOT / "targets" / "lab.yaml"
