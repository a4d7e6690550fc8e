"""The live path through the real ``kubernetes`` client against a real Kubernetes API server (1.20.2,
tests/kube_cluster.py): the lab's manifests applied to it, read back with paging, as the admin and as
deploy/k8s's ServiceAccount through the real RBAC authorizer; the server's audit log says what was asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nimwarden.k8s import load_manifests, load_snapshot, take_snapshot
from nimwarden.k8s.live import K8sReadError, read_cluster
from nimwarden.k8s.resources import BY_KIND, Resource
from tests.kube_cluster import AUDIT_SA, read_role, refused, sa_user

ROOT = Path(__file__).parents[2]
LAB = ROOT / "nimwarden" / "lab" / "manifests"
DEPLOY = ROOT / "deploy" / "k8s"
SA = sa_user(*AUDIT_SA)
CANARY = "nvapi-LIVECANARY0123456789abcdefghijklmnop"


@pytest.fixture(scope="module")
def cluster(kube_cluster):
    """The lab's manifests, a Secret holding a canary value, and deploy/k8s's ServiceAccount bound to the
    read role minus clusterrolebindings (the one read it is refused)."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ngc-api-live", "namespace": "nim-exposed"},
              "type": "Opaque", "stringData": {"NGC_API_KEY": CANARY}}
    with kube_cluster.applied(LAB / "hardened", LAB / "exposed", secret, DEPLOY / "namespace.yaml", DEPLOY / "serviceaccount.yaml",
                              *read_role(drop=("clusterrolebindings",))):
        kube_cluster.token = kube_cluster.service_account_token(*AUDIT_SA)
        yield kube_cluster


def test_live_read_holds_every_manifest_object_and_pages(cluster):
    mark = cluster.mark()
    state = read_cluster(cluster.configuration(), page_size=2)
    expected = load_manifests([LAB / "hardened", LAB / "exposed"])
    judged = {o.ref for o in expected.objects if o.kind in BY_KIND}
    assert judged <= {o.ref for o in state.objects}, judged - {o.ref for o in state.objects}
    # What the API server added in the lab's namespaces: the default ServiceAccounts, their token Secrets, the
    # root CA ConfigMap, the Deployments' pods (owned: judged through their Deployment) — and the test's Secret.
    extra = [o for o in state.objects if o.namespace in ("nim-hardened", "nim-exposed") and o.ref not in judged]
    kinds = {(o.kind, o.body.get("type") or o.name if o.kind != "Pod" else "owned") for o in extra}
    assert kinds <= {("ServiceAccount", "default"), ("Secret", "kubernetes.io/service-account-token"), ("ConfigMap", "kube-root-ca.crt"),
                     ("Pod", "owned"), ("Secret", "Opaque")}, kinds
    assert all(o.metadata.get("ownerReferences") for o in extra if o.kind == "Pod")
    asked = cluster.requests(user="nimwarden-lab-admin", since=mark)
    assert {e["verb"] for e in asked} <= {"list", "get"}
    assert any("continue=" in e["requestURI"] for e in asked), "pagination was not exercised"
    assert not state.denied and not state.absent  # every CRD nimwarden reads is installed


def test_a_refused_resource_is_recorded_with_the_missing_permission(cluster):
    mark = cluster.mark()
    state = read_cluster(cluster.configuration(token=cluster.token))
    assert "list secrets (core) cluster-wide" in state.denied["Secret"]
    assert "list clusterrolebindings (rbac.authorization.k8s.io) cluster-wide" in state.unreadable("ClusterRoleBinding")
    assert set(state.denied) == {"Secret", "ClusterRoleBinding"}
    assert state.of_kind("Deployment") and state.of_kind("NIMService"), "other resources are still read"
    assert sorted(refused(cluster.requests(user=SA, since=mark))) == [
        "list /api/v1/secrets?limit=500", "list /apis/rbac.authorization.k8s.io/v1/clusterrolebindings?limit=500"]


def test_namespaced_read_uses_namespaced_paths(cluster):
    mark = cluster.mark()
    state = read_cluster(cluster.configuration(token=cluster.token), namespaces=["nim-hardened"])
    assert {o.namespace for o in state.objects if o.namespace} == {"nim-hardened"}
    assert "in namespace nim-hardened" in state.denied["Secret"]
    uris = [e["requestURI"] for e in cluster.requests(user=SA, since=mark)]
    assert "/api/v1/namespaces/nim-hardened" in uris
    assert all("/namespaces/nim-hardened" in u for u in uris if "/namespaces/" in u)


def test_a_crd_that_is_not_installed_means_none(cluster):
    widgets = Resource("Widget", "widgets.example.nimwarden.dev", "v1", "widgets", True, optional=True)
    state = read_cluster(cluster.configuration(), resources=[BY_KIND["NIMService"], widgets])
    assert state.absent == ("Widget",) and [o.ref for o in state.of_kind("NIMService")] == ["NIMService/nim-exposed/llama-exposed"]


def test_a_core_api_that_is_not_served_is_an_error(cluster):
    with pytest.raises(K8sReadError, match="is not served"):
        read_cluster(cluster.configuration(), resources=[Resource("Pod", "", "v9", "pods", True)])


def test_an_older_cluster_serves_cronjobs_at_v1beta1(cluster):
    job = {"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "nim-hardened"},
           "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
               "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36", "command": ["true"]}]}}}}}}
    with cluster.applied(job):
        state = read_cluster(cluster.configuration(), kinds=["CronJob"])
    assert [(o.ref, o.api_version) for o in state.of_kind("CronJob")] == [("CronJob/nim-hardened/nightly", "batch/v1beta1")]


def test_bad_token_is_an_error_not_an_empty_cluster(cluster):
    with pytest.raises(K8sReadError, match="401"):
        read_cluster(cluster.configuration(token="not-a-token"))


def test_unreachable_server_is_an_error():
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = "http://127.0.0.1:9"  # discard port: nothing listens
    cfg.retries = 0
    with pytest.raises(K8sReadError):
        read_cluster(cfg, timeout_s=2)


def test_take_snapshot_writes_a_loadable_file_without_secret_values(cluster, tmp_path):
    written = take_snapshot(cluster.configuration(), tmp_path / "snap.json")
    text = (tmp_path / "snap.json").read_text()
    assert "Secret/nim-exposed/ngc-api-live" in {o.ref for o in written.objects}
    assert CANARY not in text and "LIVECANARY" not in text
    loaded = load_snapshot([tmp_path / "snap.json"])
    assert sorted(o.ref for o in loaded.objects) == sorted(o.ref for o in written.objects)
    assert json.loads(text)["nimwarden"]["schema"] == "nimwarden/k8s-snapshot/v1"


def test_snapshot_command_as_the_service_account(cluster, tmp_path):
    """`nimwarden snapshot` as a user runs it, with deploy/k8s's ServiceAccount's token: gets and lists only,
    the refused read recorded in the file, the token nowhere in it."""
    kubeconfig = cluster.token_kubeconfig(tmp_path / "kubeconfig", cluster.token)
    out = tmp_path / "snap.json"
    mark = cluster.mark()
    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "snapshot", "--kubeconfig", str(kubeconfig), "--out", str(out),
                           "-n", "nim-hardened", "-n", "nim-exposed"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    asked = cluster.requests(user=SA, since=mark)
    assert asked and {e["verb"] for e in asked} <= {"get", "list"}
    state = load_snapshot([out])
    assert len(state.of_kind("Deployment")) == 4 and "ClusterRoleBinding" in state.denied
    assert cluster.token not in out.read_text()
    bad = subprocess.run([sys.executable, "-m", "nimwarden.cli", "snapshot", "--kubeconfig", str(tmp_path / "missing"), "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
