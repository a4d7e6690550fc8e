"""Fault matrix, second half: the faults of the tools and sources rather than the sockets.

- nmap missing (NIMWARDEN_NMAP names no binary) and nmap killed by SIGKILL mid-scan (a
  wrapper that execs the real nmap and kills it half a second in): every ports control errors
  naming nmap, none passes.
- The Kubernetes API answering 401 (a token it does not know) or 403 (deploy/k8s's ServiceAccount
  with no role bound: every resource refused) — a real API server (tests/kube_cluster.py) holding the
  lab's manifests: no Kubernetes control passes; every one errors naming the status.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest
import yaml

from tests.conftest import ROOT, have, run_audit
from tests.kube_cluster import AUDIT_SA
from tests.reliability.faults import FaultServer, assert_cell_errors

LAB = ROOT / "nimwarden" / "lab" / "manifests"
K8S_SUITES = "test_pod_security or test_secrets or test_rbac or test_spec_ or test_k8s_ or test_network_policy"
# host reads the server processes, not the API: it is not part of these cells.
K8S_FAMILIES = ("pod-security", "secrets", "rbac", "network-policy")


def _ports_profile(tmp, port: int) -> object:
    dep = {"name": "scanned", "kind": "triton", "expect": "compliant", "endpoints": {"http": f"http://127.0.0.140:{port}"},
           "exposure": ["http"], "options": {"ports": {"tcp_ports": str(port)}}}
    path = tmp / "ports.yaml"
    path.write_text(yaml.safe_dump({"name": "nmap-faults", "scope": ["127.0.0.0/8"], "timeouts": {"connect_s": 1, "read_s": 2},
                                    "deployments": [dep]}))
    return path


def _nmap_killed_wrapper(tmp) -> str:
    wrapper = tmp / "nmap-killed"
    real = shutil.which("nmap")
    # `-V` (python-nmap's version check) answers; a scan dies by SIGKILL before it reports (a
    # loopback scan of one port ends in milliseconds, so a timed kill would race the result).
    wrapper.write_text(f'#!/bin/sh\ncase "$*" in *-V*) exec {real} "$@";; esac\nkill -9 $$\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.skipif(not have("nmap"), reason="needs nmap")
@pytest.mark.parametrize("fault", ["nmap-missing", "nmap-killed"])
def test_nmap_fault_errors_every_ports_control(fault, tmp_path):
    server = FaultServer("hang", "127.0.0.140")
    try:
        binary = str(tmp_path / "no-such-nmap") if fault == "nmap-missing" else _nmap_killed_wrapper(tmp_path)
        t0 = time.monotonic()
        proc, summary = run_audit(_ports_profile(tmp_path, server.port), tmp_path / "reports", "suites/test_ports.py", "-k", "not test_k8s_",
                                  env={"NIMWARDEN_NMAP": binary}, timeout=120)
        took = time.monotonic() - t0
    finally:
        server.close()
    assert_cell_errors(summary, "ports", 3, r"nmap", fault, took, proc.stdout + proc.stderr)
    assert proc.returncode == 3 and (tmp_path / "reports" / "latest" / "report.html").exists()


def _k8s_profile(tmp, kubeconfig) -> object:
    deployments = [{"name": n, "kind": "triton", "expect": "compliant", "endpoints": {"http": "http://127.0.0.1:9"},
                    "kubernetes": {"namespace": f"nim-{n}", "selector": {"app": f"triton-{n}"}}} for n in ("hardened", "exposed")]
    path = tmp / "k8s.yaml"
    path.write_text(yaml.safe_dump({"name": "k8s-faults", "scope": ["127.0.0.0/8"], "deployments": deployments,
                                    "kubernetes": {"source": "live", "kubeconfig": str(kubeconfig)}}))
    return path


@pytest.fixture(scope="module")
def unbound_identity(kube_cluster):
    """The lab's manifests on the real API server, and deploy/k8s's ServiceAccount with no role bound to it."""
    deploy = ROOT / "deploy" / "k8s"
    with kube_cluster.applied(LAB / "hardened", LAB / "exposed", deploy / "namespace.yaml", deploy / "serviceaccount.yaml"):
        yield kube_cluster, kube_cluster.service_account_token(*AUDIT_SA)


@pytest.mark.parametrize("fault", ["401", "403"])
def test_kubernetes_api_refusal_errors_every_kubernetes_control(fault, unbound_identity, tmp_path):
    cluster, token = unbound_identity
    kubeconfig = cluster.token_kubeconfig(tmp_path / "kubeconfig", token if fault == "403" else "a-token-nobody-issued")
    t0 = time.monotonic()
    proc, summary = run_audit(_k8s_profile(tmp_path, kubeconfig), tmp_path / "reports", "-k", K8S_SUITES, timeout=180)
    took = time.monotonic() - t0
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [r for r in summary["results"] if r["family"] in K8S_FAMILIES or r["control"].startswith("TRITON-SPEC") or "-K8S" in r["control"]]
    passes = [(r["control"], r["deployment"], r["reason"]) for r in rows if r["status"] == "pass"]
    statuses = sorted({r["status"] for r in rows})
    print(f"\nKubernetes API {fault}: {len(rows)} results in {took:.1f}s, statuses {statuses}, false passes {len(passes)}")
    assert rows and passes == [], passes
    not_error = [(r["control"], r["status"], r["reason"][:160]) for r in rows if r["status"] not in ("error", "not_applicable")]
    assert not_error == [], not_error
    unnamed = [(r["control"], r["reason"][:160]) for r in rows if r["status"] == "error" and not re.search(fault + r"|forbidden|unauthori[sz]ed|denied|permission", r["reason"], re.I)]
    assert unnamed == [], unnamed
    assert (tmp_path / "reports" / "latest" / "report.html").exists()
