"""Fault matrix, third part: the live network-policy probes and the host probes.

- **network-policy** (NETPOL-ENFORCED-001 through in-cluster probe pods): the Kubernetes
  side fails in every way a probe pod can — creating it is forbidden, the API answers 5xx,
  its image cannot be pulled, it is never scheduled, its agent crashes, it never finishes.
  The API server and kubelet are the ClusterDouble TEST DOUBLE (tests/k8s_replay.py; none
  can run here); the agent, its process and the sockets are real. Every cell: the control
  is `error` naming the fault, never `pass`; nothing the harness created is left behind;
  the run ends within a bound derived from the probe settings.
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

from tests.conftest import dead_port, have, run_audit
from tests.k8s_replay import ClusterDouble, FakeKubelet
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

# fault -> (double's settings, what the error must say)
POD_FAULTS = {
    "create-forbidden": ({"deny_writes": {("create", "pods", "gw"), ("create", "pods", "tenant")}}, r"missing permission: create pods"),
    "anchor-forbidden": ({"deny_writes": {("create", "configmaps", "gw"), ("create", "configmaps", "tenant")}}, r"missing permission: create configmaps"),
    "log-forbidden": ({"deny_writes": {("get", "pods/log", "gw"), ("get", "pods/log", "tenant")}}, r"missing permission: get pods/log"),
    "image-pull": ({"image_errors": {PROBE["image"]: "ImagePullBackOff"}}, r"cannot start: ImagePullBackOff"),
    "unschedulable": ({"placement": None}, r"did not start within 2 s: Unschedulable"),
    "agent-crash": ({"placement": ("ip", "netns", "exec", "nimwarden-no-such-netns")}, r"failed: Error \(exit code"),
    "agent-hang": ({"placement": ("sh", "-c", "exec sleep 300", "--")}, r"did not finish within"),
    "api-5xx-on-delete": ({"fail_deletes": True}, r"could not be deleted"),
}


def _netpol_profile(tmp, kubeconfig) -> object:
    dep = {"name": "triton", "kind": "triton", "expect": "compliant", "endpoints": {"http": "http://127.0.0.152:8000"},
           "kubernetes": {"namespace": "nim", "selector": {"app": "triton"}}}
    path = tmp / "netpol.yaml"
    path.write_text(yaml.safe_dump({"name": "probe-pod-faults", "scope": ["127.0.0.0/8"], "deployments": [dep],
                                    "kubernetes": {"source": "live", "kubeconfig": str(kubeconfig),
                                                   "options": {"network_policy": {"probe": PROBE}}}}))
    return path


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
