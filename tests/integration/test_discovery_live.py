"""`nimwarden discover --kubeconfig` and `nimwarden audit --kubeconfig` against a real API server holding the
recorded cluster of tests/fixtures/discovery/cluster.yaml (a NIMService with the Deployment its operator rendered,
a Triton Deployment behind a LoadBalancer and an Ingress, a KServe InferenceService, unrelated workloads).
Discovery runs as deploy/k8s's ServiceAccount through the real RBAC authorizer; the server's audit log shows
it only gets and lists, within deploy/k8s/rbac-read.yaml."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from nimwarden import cli
from nimwarden.families import load_profile
from nimwarden.k8s.discovery import discovery_resources
from tests.kube_cluster import AUDIT_SA, read_role, refused, sa_user
from tests.unit.test_discovery import EXPECTED, FIXTURE, ROOT

DEPLOY = ROOT / "deploy" / "k8s"
SA = sa_user(*AUDIT_SA)


def _granted() -> set[tuple[str, str, str]]:
    role = next(d for d in yaml.safe_load_all((DEPLOY / "rbac-read.yaml").read_text()) if d["kind"] == "ClusterRole")
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


@pytest.fixture(scope="module")
def cluster(kube_cluster, tmp_path_factory):
    """The recorded cluster, and deploy/k8s's ServiceAccount with the read role; its token in a kubeconfig."""
    with kube_cluster.applied(FIXTURE, DEPLOY / "namespace.yaml", DEPLOY / "serviceaccount.yaml", *read_role()):
        token = kube_cluster.service_account_token(*AUDIT_SA)
        kube_cluster.sa_kubeconfig = kube_cluster.token_kubeconfig(tmp_path_factory.mktemp("sa") / "kubeconfig", token)
        yield kube_cluster


def _found(profile) -> set[tuple[str, str]]:
    return {(x.name, x.kind) for x in load_profile(profile).deployments}


def test_discover_live_only_gets_and_lists_within_theread_role(cluster, tmp_path):
    out = tmp_path / "p.yaml"
    mark = cluster.mark()
    assert cli.main(["discover", "--kubeconfig", str(cluster.sa_kubeconfig), "--out", str(out)]) == 0
    asked = cluster.requests(user=SA, since=mark)
    target = load_profile(out)
    assert target.name == "nimwarden-lab"  # the context's name: the next run compares with this one
    assert _found(out) == {(n, k) for n, k, _, _ in EXPECTED}
    assert target.kubernetes.source == "live" and target.kubernetes.kubeconfig == cluster.sa_kubeconfig.resolve()
    assert asked and refused(asked) == []
    needed = {((e["objectRef"].get("apiGroup") or ""), e["objectRef"]["resource"], e["verb"]) for e in asked}
    assert needed <= _granted(), needed - _granted()
    assert {r for _, r, _ in needed} == {r.plural for r in discovery_resources()}


def test_discover_live_in_namespaces_asks_only_there(cluster, tmp_path):
    out = tmp_path / "p.yaml"
    mark = cluster.mark()
    assert cli.main(["discover", "--kubeconfig", str(cluster.sa_kubeconfig), "-n", "triton", "--out", str(out)]) == 0
    uris = [e["requestURI"] for e in cluster.requests(user=SA, since=mark)]
    assert {x.name for x in load_profile(out).deployments} == {"triton"}
    namespaced = [u for u in uris if "/namespaces/" in u]
    assert namespaced and all("/namespaces/triton/" in u for u in namespaced)
    assert {u.split("?")[0] for u in uris if "/namespaces/" not in u} == {"/apis/serving.kserve.io/v1alpha1/clusterservingruntimes"}


def test_discover_reports_a_refused_kind_and_an_unreachable_server(cluster, tmp_path, capsys):
    cluster.apply(read_role(drop=("inferenceservices",)))
    try:
        out = tmp_path / "p.yaml"
        assert cli.main(["discover", "--kubeconfig", str(cluster.sa_kubeconfig), "--out", str(out)]) == 0
    finally:
        cluster.apply(read_role())
    printed = capsys.readouterr().out
    assert "could not read: InferenceService (missing permission: list inferenceservices" in printed
    (tmp_path / "dead").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}], "contexts": [{"name": "x", "context": {"cluster": "x", "user": "u"}}]}))
    assert cli.main(["discover", "--kubeconfig", str(tmp_path / "dead"), "--out", str(tmp_path / "q.yaml"), "--api-timeout", "2"]) == 2
    assert "discovery could not read the cluster" in capsys.readouterr().err


def test_audit_with_a_kubeconfig_discovers_writes_the_profile_and_reports(cluster, tmp_path):
    """`nimwarden audit --kubeconfig F` (what ./scripts/audit --kubeconfig F runs): one command, a full report."""
    reports = tmp_path / "reports"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NIMWARDEN_PROGRESS="0")
    env.pop("NIMWARDEN_RUN_DIR", None)
    mark = cluster.mark()
    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "audit", "--kubeconfig", str(cluster.kubeconfig), "--no-probes",
                           "--reports-dir", str(reports), "--", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    writes = [e for e in cluster.requests(user="nimwarden-lab-admin", since=mark) if e["verb"] not in ("get", "list")]
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]  # the recorded cluster has failures
    run = (reports / "latest").resolve()
    assert (run / "target.yaml").is_file() and (run / "report.html").is_file() and (run / "report.sarif").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["target_file"] == str(run / "target.yaml")
    verdicts = {d["name"]: d["verdict"] for d in summary["deployments"]}
    assert set(verdicts) == {"llama3-8b", "triton", "resnet"}
    assert "could not evaluate" not in verdicts.values()
    for name in verdicts:  # every discovered deployment was judged from cluster state, not only skipped
        assert any(r["deployment"] == name and r["status"] in ("pass", "fail") for r in summary["results"]), name
    errors = [r for r in summary["results"] if r["status"] == "error"]
    # NIM 1.0.3's bundled engines are not in the NIM engine table: NIM-ENGINECVE-001 says so (fail closed); nothing else errs
    assert [(r["control"], "is not in the NIM engine table" in r["reason"]) for r in errors] == [("NIM-ENGINECVE-001", True)]
    assert writes == []
    assert "profile written to" in proc.stderr and str(run / "target.yaml") in proc.stderr
    load_profile(run / "target.yaml")  # reusable as it is
