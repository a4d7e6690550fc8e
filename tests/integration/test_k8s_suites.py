"""The Kubernetes suites end to end (`nimwarden audit` in a subprocess) against the lab manifests and the
live path through a real Kubernetes API server holding the same manifests (tests/kube_cluster.py): the
same (control, deployment, status) set from both, and a refused read named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nimwarden.catalog import load_catalog
from tests.conftest import ROOT, dead_port, run_audit
from tests.kube_cluster import AUDIT_SA, sa_user

LAB = ROOT / "nimwarden" / "lab" / "manifests"
# `nimwarden audit` always collects suites/: select the Kubernetes suites by module name.
SUITES = ["-k", "test_pod_security or test_secrets or test_rbac or test_spec_ or test_k8s_"]
TARGET_WIDE = ("RBAC-UNBOUNDROLE-001",)  # judged once for the whole target (deployment "-")
K8S_CONTROLS = sorted(
    c.id for c in load_catalog().values()
    if (c.family in ("pod-security", "secrets", "rbac") or c.id.startswith("TRITON-SPEC-") or "-K8S" in c.id) and c.id not in TARGET_WIDE)


def _profile(tmp: Path, kubernetes: dict) -> Path:
    port = dead_port()
    deployments = []
    for name in ("hardened", "exposed"):
        deployments.append({
            "name": name, "kind": "triton", "expect": "compliant" if name == "hardened" else "noncompliant",
            "endpoints": {"http": f"http://127.0.0.1:{port}"},
            "kubernetes": {"namespace": f"nim-{name}", "selector": {"app": f"triton-{name}"}},
        })
    profile = {"name": "k8s-lab", "scope": ["127.0.0.0/8"], "deployments": deployments, "kubernetes": kubernetes}
    path = tmp / "target.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def _by(summary, deployment):
    out = {}
    for r in summary["results"]:
        if r["deployment"] == deployment:
            out.setdefault(r["control"], []).append(r)
    return out


@pytest.fixture(scope="module")
def manifest_audit(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("k8s-audit")
    profile = _profile(tmp, {"source": "manifests", "paths": [str(LAB / "hardened"), str(LAB / "exposed")], "pss_level": "restricted"})
    proc, summary = run_audit(profile, tmp / "reports", *SUITES)
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    return summary


def test_every_k8s_control_has_a_result(manifest_audit):
    for deployment in ("hardened", "exposed"):
        got = _by(manifest_audit, deployment)
        assert set(K8S_CONTROLS) <= set(got), sorted(set(K8S_CONTROLS) - set(got))
    # every lab role is bound to an audited workload: the target-wide row is evaluated, and passes
    assert [r["status"] for r in _by(manifest_audit, "-")["RBAC-UNBOUNDROLE-001"]] == ["pass"]


def test_hardened_has_no_fail_or_error(manifest_audit):
    bad = [(r["control"], r["status"], r["reason"]) for r in manifest_audit["results"]
           if r["deployment"] == "hardened" and r["status"] in ("fail", "error") and r["control"] in K8S_CONTROLS]
    assert not bad, bad


@pytest.mark.parametrize("family", ["pod-security", "secrets", "rbac", "triton-api"])
def test_exposed_fails_in_each_family(manifest_audit, family):
    fails = [r for r in manifest_audit["results"] if r["deployment"] == "exposed" and r["family"] == family and r["status"] == "fail"]
    assert fails, f"exposed has no failure in {family}"


def test_exposed_findings_name_object_container_and_field(manifest_audit):
    [pss] = _by(manifest_audit, "exposed")["POD-PSS-001"]
    assert pss["status"] == "fail"
    assert "Deployment/nim-exposed/triton-exposed → tritonserver: spec.template.spec.containers[0].securityContext" in pss["reason"]
    text = json.dumps(manifest_audit)
    assert "CANARY1111" not in text and "CANARY0000" not in text and "CANARYpassw0rd" not in text


def test_broken_manifest_is_a_configuration_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: [oops\n")
    profile = _profile(tmp_path, {"source": "manifests", "paths": [str(bad)]})
    proc, _ = run_audit(profile, tmp_path / "reports", "-k", "test_pod_security")
    assert proc.returncode in (2, 3), proc.stdout[-2000:]
    assert "bad.yaml" in proc.stdout + proc.stderr and "document 1" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def lab_cluster(kube_cluster):
    """The lab's manifests applied to the session's real API server, and deploy/k8s's ServiceAccount with the read role."""
    deploy = ROOT / "deploy" / "k8s"
    with kube_cluster.applied(LAB / "hardened", LAB / "exposed", deploy / "namespace.yaml", deploy / "serviceaccount.yaml",
                              deploy / "rbac-read.yaml"):
        yield kube_cluster


def test_live_source_gives_the_same_verdicts_as_the_manifests(manifest_audit, lab_cluster, tmp_path):
    """The same objects read live from a real API server (defaulted, with its token Secrets, default roles and
    pods) and from the manifests: the same (control, deployment, status) set."""
    profile = _profile(tmp_path, {"source": "live", "kubeconfig": str(lab_cluster.kubeconfig), "pss_level": "restricted"})
    proc, summary = run_audit(profile, tmp_path / "reports", *SUITES)
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    live = {(r["control"], r["deployment"], r["status"]) for r in summary["results"]}
    manifests = {(r["control"], r["deployment"], r["status"]) for r in manifest_audit["results"]}
    assert live == manifests, (sorted(live - manifests), sorted(manifests - live))


def test_live_source_with_a_denied_resource_errors_naming_the_permission(lab_cluster, tmp_path):
    """deploy/k8s's read role grants no secrets (an opt-in): the real authorizer refuses the list, the controls that
    need it say which permission is missing, the others judge."""
    kubeconfig = lab_cluster.token_kubeconfig(tmp_path / "kubeconfig", lab_cluster.service_account_token(*AUDIT_SA))
    profile = _profile(tmp_path, {"source": "live", "kubeconfig": str(kubeconfig)})
    mark = lab_cluster.mark()
    proc, summary = run_audit(profile, tmp_path / "reports", "-k", "test_secrets or test_pod_security")
    assert summary is not None, proc.stdout[-3000:]
    pull = _by(summary, "hardened")["SECRETS-PULL-001"][0]
    assert pull["status"] == "error" and "list secrets (core) cluster-wide" in pull["reason"]
    assert _by(summary, "hardened")["POD-PSS-001"][0]["status"] == "pass"
    assert _by(summary, "exposed")["POD-PSS-001"][0]["status"] == "fail"
    asked = lab_cluster.requests(user=sa_user(*AUDIT_SA), since=mark)
    assert asked and {e["verb"] for e in asked} <= {"get", "list"}
