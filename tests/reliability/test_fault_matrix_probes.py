"""Fault matrix, third part: the live network-policy probes and the host probes.

- **network-policy** (NETPOL-ENFORCED-001 through in-cluster probe pods): the Kubernetes
  side fails in every way a probe pod can — creating it is forbidden, reading its log is
  forbidden, its image cannot be pulled, it is never scheduled, its agent crashes: through a
  real API server (tests/kube_cluster.py: the real RBAC authorizer, a cordoned node, the lab
  node's ErrImagePull). Two faults no real server produces on demand — a 5xx on every delete
  and an agent that never finishes — stay with the ClusterDouble TEST DOUBLE
  (tests/k8s_replay.py). Every cell: the control is `error` naming the fault, never `pass`;
  nothing the harness created is left behind; the run ends within a bound derived from the
  probe settings.
- **host** (HOST-*, testinfra): the process to inspect is gone, or the backend cannot be
  reached (ssh to a refused port, ssh to a server that accepts and never answers, kubectl
  exec refused by the API). Every HOST control errors naming the fault.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
import yaml

from nimwarden.lab.kube import NODE_NAME, PYTHON_IMAGE
from nimwarden.lab.kube.apply import load_documents
from tests.conftest import ROOT, dead_port, have, run_audit
from tests.k8s_replay import ClusterDouble, FakeKubelet
from tests.kube_cluster import AUDIT_SA
from tests.reliability.faults import FaultServer, assert_cell_errors

# --- network-policy: probe-pod faults ---------------------------------------------------------------------


def _objects() -> list[dict]:
    """A tiny cluster: a gateway and a tenant, and one Triton pod whose IP is on loopback (in scope)."""

    def pod(ns, name, labels, ip, ports=()):
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": ns, "name": name, "labels": labels},
                "spec": {"containers": [{"name": "c", "ports": [{"containerPort": p} for p in ports]}]},
                "status": {"phase": "Running", "podIP": ip}}

    deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "nim"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gw"}}}]}]}}
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("gw", "tenant", "nim")] + [
        pod("gw", "gateway", {"app": "gw"}, "127.0.0.150"),
        pod("tenant", "client", {"app": "client"}, "127.0.0.151"),
        pod("nim", "triton", {"app": "triton"}, "127.0.0.152", (8000,)),
        deny,
    ]


PROBE = {"image": "registry.example/python:3.12-slim", "settle_s": 0, "connect_timeout_s": 0.5, "start_timeout_s": 2}
STAND_IN = "registry.example/stand-in:1"  # an image the lab node plays with a lab process, never runs
ADDRESSES = {"gw": "127.0.0.150", "tenant": "127.0.0.151", "nim": "127.0.0.152"}

# fault -> (double's settings, what the error must say): what no real API server does on demand
POD_FAULTS = {
    "agent-hang": ({"placement": ("sh", "-c", "exec sleep 300", "--")}, r"did not finish within"),
    "api-5xx-on-delete": ({"fail_deletes": True}, r"could not be deleted"),
}
# fault -> (what the real cluster is made to do, what the error must say)
REAL_FAULTS = {
    "create-forbidden": ({"drop": ("pods", "create")}, r"missing permission: create pods"),
    "anchor-forbidden": ({"drop": ("configmaps", "create")}, r"missing permission: create configmaps"),
    "log-forbidden": ({"drop": ("pods/log", "get")}, r"missing permission: get pods/log"),
    "image-pull": ({"image": "registry.example/missing:1"}, r"cannot start: ErrImagePull"),
    "unschedulable": ({"cordon": True}, r"did not start within 2 s: Unschedulable"),
    "agent-crash": ({"netns": "nimwarden-no-such-netns"}, r"failed: Error \(exit code"),
}


def _netpol_profile(tmp, kubeconfig, probe: dict = PROBE) -> object:
    dep = {"name": "triton", "kind": "triton", "expect": "compliant", "endpoints": {"http": "http://127.0.0.152:8000"},
           "kubernetes": {"namespace": "nim", "selector": {"app": "triton"}}}
    path = tmp / "netpol.yaml"
    path.write_text(yaml.safe_dump({"name": "probe-pod-faults", "scope": ["127.0.0.0/8"], "deployments": [dep],
                                    "kubernetes": {"source": "live", "kubeconfig": str(kubeconfig),
                                                   "options": {"network_policy": {"probe": probe}}}}))
    return path


def _probe_roles(drop: tuple[str, str] | None) -> list:
    """deploy/k8s/opt-in/rbac-netpol-probes.yaml in each source namespace (gw, tenant), less the ``drop`` grant."""
    docs = []
    for ns in ("gw", "tenant"):
        for d in load_documents([ROOT / "deploy" / "k8s" / "opt-in" / "rbac-netpol-probes.yaml"]):
            d.body["metadata"]["namespace"] = ns
            if d.kind == "Role" and drop:
                rules = [dict(r, verbs=[v for v in r["verbs"] if (drop[0] not in r["resources"] or v != drop[1])]) for r in d.body["rules"]]
                d.body["rules"] = [r for r in rules if r["verbs"]]
            docs.append(d)
    return docs


@pytest.fixture(scope="module")
def fault_cluster(kube_cluster):
    """The tiny cluster on the real API server: its pods stood in by the lab node at their loopback addresses; deploy/k8s's
    ServiceAccount with the read role."""
    deploy = ROOT / "deploy" / "k8s"
    objects = _objects()
    for o in objects:
        if o["kind"] == "Pod":
            o.pop("status")
            o["spec"]["containers"][0]["image"] = STAND_IN
    kube_cluster.place(placement={ns: {"address": a} for ns, a in ADDRESSES.items()}, stand_in_images=[STAND_IN])
    try:
        with kube_cluster.applied(*objects, deploy / "namespace.yaml", deploy / "serviceaccount.yaml", deploy / "rbac-read.yaml"):
            yield kube_cluster, kube_cluster.service_account_token(*AUDIT_SA)
    finally:
        kube_cluster.place(placement={}, stand_in_images=[])


@pytest.mark.parametrize("fault", sorted(REAL_FAULTS))
def test_probe_pod_fault_in_a_real_cluster_errors_and_leaves_nothing(fault, fault_cluster, tmp_path):
    cluster, token = fault_cluster
    how, names = REAL_FAULTS[fault]
    cluster.apply(_probe_roles(how.get("drop")))
    if "netns" in how:
        cluster.place(placement={ns: {"address": a, **({"netns": how["netns"]} if ns != "nim" else {})} for ns, a in ADDRESSES.items()})
    if how.get("cordon"):
        cluster.call("PATCH", f"/api/v1/nodes/{NODE_NAME}", {"spec": {"unschedulable": True}}, content_type="application/merge-patch+json")
    try:
        probe = dict(PROBE, image=how.get("image", PYTHON_IMAGE))
        t0 = time.monotonic()
        proc, summary = run_audit(_netpol_profile(tmp_path, cluster.token_kubeconfig(tmp_path / "kubeconfig", token), probe),
                                  tmp_path / "reports", "-k", "test_network_enforces_declared_policy", timeout=120)
        took = time.monotonic() - t0
    finally:
        cluster.call("PATCH", f"/api/v1/nodes/{NODE_NAME}", {"spec": {"unschedulable": False}}, content_type="application/merge-patch+json")
        cluster.place(placement={ns: {"address": a} for ns, a in ADDRESSES.items()})
    left = []
    for ns in ("gw", "tenant"):
        for plural in ("pods", "configmaps"):
            _, body = cluster.call("GET", f"/api/v1/namespaces/{ns}/{plural}", params={"labelSelector": "nimwarden.dev/role=reach-probe"})
            left += [i["metadata"]["name"] for i in body.get("items") or ()]
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    (result,) = [r for r in summary["results"] if r["control"] == "NETPOL-ENFORCED-001"]
    print(f"\nprobe-pod fault {fault} (real API server): {result['status']} in {took:.1f}s: {result['reason'][:160]}")
    assert result["status"] == "error", result
    assert re.search(names, result["reason"]), result["reason"]
    assert left == []
    assert took < 60, took


@pytest.mark.parametrize("fault", sorted(POD_FAULTS))
def test_probe_pod_fault_errors_and_leaves_nothing(fault, tmp_path):
    settings, names = POD_FAULTS[fault]
    settings = dict(settings)
    placement = settings.pop("placement", ())
    kubelet = FakeKubelet(lambda pod: placement, image_errors=settings.pop("image_errors", None))
    with ClusterDouble(_objects(), kubelet, **settings) as cluster:
        t0 = time.monotonic()
        proc, summary = run_audit(_netpol_profile(tmp_path, cluster.kubeconfig(tmp_path / "kubeconfig")), tmp_path / "reports",
                                  "-k", "test_network_enforces_declared_policy", timeout=120)
        took = time.monotonic() - t0
        cluster.fail_deletes = False
        left = cluster.created()
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    (result,) = [r for r in summary["results"] if r["control"] == "NETPOL-ENFORCED-001"]
    print(f"\nprobe-pod fault {fault}: {result['status']} in {took:.1f}s: {result['reason'][:160]}")
    assert result["status"] == "error", result
    assert re.search(names, result["reason"]), result["reason"]
    if fault == "api-5xx-on-delete":
        assert len(left) == 4 and len(result["evidence"]["leftovers"]) == 4  # 2 positions x (pod + anchor), all named
    else:
        assert left == [] and not kubelet.running()
    # Bound: start timeout, agent deadline (5 s + one wave) and its 10 s grace, plus audit start-up.
    assert took < 60, took
    assert (tmp_path / "reports" / "latest" / "report.html").exists()


# --- host: testinfra faults -------------------------------------------------------------------------------


def _host_profile(tmp, host_options: dict) -> object:
    dep = {"name": "server", "kind": "triton", "expect": "compliant", "endpoints": {"http": "http://127.0.0.160:8000"},
           "options": {"host": host_options}}
    path = tmp / "host.yaml"
    path.write_text(yaml.safe_dump({"name": "host-faults", "scope": ["127.0.0.0/8"], "deployments": [dep]}))
    return path


def _gone_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


HOST_FAULTS = {
    "process-gone": (lambda srv, kc: {"pid": _gone_pid()}, r"is not a running tritonserver"),
    "ssh-refused": (lambda srv, kc: {"testinfra": f"ssh://nobody@127.0.0.161:{dead_port()}"}, r"refused|ssh|exit 255"),
    "ssh-hang": (lambda srv, kc: {"testinfra": f"ssh://nobody@127.0.0.162:{srv.port}"}, r"timed out|timeout|ssh|exit 255|banner"),
    "kubectl-exec-refused": (lambda srv, kc: {"testinfra": f"kubectl://triton-0?namespace=nim&kubeconfig={kc}"}, r"kubectl|exit|error|refused|connect"),
}


@pytest.mark.parametrize("fault", sorted(HOST_FAULTS))
def test_host_fault_errors_every_host_control(fault, tmp_path):
    make, names = HOST_FAULTS[fault]
    if fault.startswith("ssh") and not have("ssh"):
        pytest.skip("needs the ssh client")
    if fault.startswith("kubectl") and not have("kubectl"):
        pytest.skip("needs kubectl")
    server = FaultServer("hang", "127.0.0.162")
    double = ClusterDouble([], FakeKubelet(lambda pod: ()))
    try:
        with double:
            options = make(server, double.kubeconfig(tmp_path / "kubeconfig"))
            t0 = time.monotonic()
            proc, summary = run_audit(_host_profile(tmp_path, options), tmp_path / "reports", "suites/test_host.py", timeout=180)
            took = time.monotonic() - t0
    finally:
        server.close()
    assert_cell_errors(summary, "host", 4, names, f"host fault {fault}", took, proc.stdout + proc.stderr)
    assert proc.returncode == 3
    assert took < 90, took
