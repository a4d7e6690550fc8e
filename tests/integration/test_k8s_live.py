"""The live path through the real ``kubernetes`` client, against the replay server TEST DOUBLE (tests/k8s_replay.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nimwarden.k8s import load_manifests, load_snapshot, take_snapshot
from nimwarden.k8s.live import K8sReadError, read_cluster
from tests.k8s_replay import ReplayServer, load_objects

LAB = Path(__file__).parents[2] / "nimwarden" / "lab" / "manifests"


@pytest.fixture(scope="module")
def lab_objects():
    return load_objects(LAB / "hardened", LAB / "exposed")


def test_live_read_matches_manifests_with_paging(lab_objects):
    with ReplayServer(lab_objects, max_page=2) as server:
        state = read_cluster(server.configuration(), page_size=2)
    expected = load_manifests([LAB / "hardened", LAB / "exposed"])
    assert sorted(o.ref for o in state.objects) == sorted(o.ref for o in expected.objects)
    assert {m for m, _ in server.requests} == {"GET"}
    assert any("continue=" in p for _, p in server.requests), "pagination was not exercised"
    assert "HTTPRoute" in state.absent or "Route" in state.absent or not state.absent


def test_forbidden_resource_is_recorded_with_the_missing_permission(lab_objects):
    with ReplayServer(lab_objects, deny={("secrets", None), ("clusterrolebindings", None)}) as server:
        state = read_cluster(server.configuration())
    assert "list secrets (core) cluster-wide" in state.denied["Secret"]
    assert "clusterrolebindings" in state.unreadable("ClusterRoleBinding")
    assert state.of_kind("Deployment"), "other resources are still read"


def test_namespaced_read_uses_namespaced_paths(lab_objects):
    with ReplayServer(lab_objects, deny={("secrets", "nim-hardened")}) as server:
        state = read_cluster(server.configuration(), namespaces=["nim-hardened"])
    assert {o.namespace for o in state.objects if o.namespace} == {"nim-hardened"}
    assert "in namespace nim-hardened" in state.denied["Secret"]
    assert ("GET", "/api/v1/namespaces/nim-hardened") in server.requests


def test_optional_crd_missing_means_none(lab_objects):
    with ReplayServer(lab_objects, missing={"nimservices"}) as server:
        state = read_cluster(server.configuration())
    assert "NIMService" in state.absent and not state.of_kind("NIMService")


def test_core_api_missing_is_an_error(lab_objects):
    with ReplayServer(lab_objects, missing={"pods"}) as server, pytest.raises(K8sReadError):
        read_cluster(server.configuration())


def test_bad_token_is_an_error_not_an_empty_cluster(lab_objects):
    with ReplayServer(lab_objects) as server, pytest.raises(K8sReadError, match="401"):
        read_cluster(server.configuration(token="wrong"))


def test_unreachable_server_is_an_error():
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = "http://127.0.0.1:9"  # discard port: nothing listens
    cfg.retries = 0
    with pytest.raises(K8sReadError):
        read_cluster(cfg, timeout_s=2)


def test_take_snapshot_writes_a_loadable_file_without_secret_values(lab_objects, tmp_path):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ngc-api", "namespace": "nim-exposed"},
              "type": "Opaque", "data": {"NGC_API_KEY": "bnZhcGktQ0FOQVJZMTIzNDU2Nzg5MA=="}}
    with ReplayServer([*lab_objects, secret], deny={("clusterroles", None)}) as server:
        written = take_snapshot(server.configuration(), tmp_path / "snap.json")
    text = (tmp_path / "snap.json").read_text()
    assert "bnZhcGktQ0FOQVJZ" not in text
    loaded = load_snapshot([tmp_path / "snap.json"])
    assert sorted(o.ref for o in loaded.objects) == sorted(o.ref for o in written.objects)
    assert "ClusterRole" in loaded.denied
    assert json.loads(text)["nimwarden"]["schema"] == "nimwarden/k8s-snapshot/v1"


def test_snapshot_command_through_a_kubeconfig(lab_objects, tmp_path):
    """`nimwarden snapshot` as a user runs it: kubeconfig → replay server (test double) → loadable file."""
    import subprocess
    import sys

    from tests.k8s_replay import TOKEN

    with ReplayServer(lab_objects) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig", token=TOKEN)
        out = tmp_path / "snap.json"
        proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "snapshot", "--kubeconfig", str(kubeconfig), "--out", str(out)],
                              capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr
    assert {m for m, _ in server.requests} == {"GET"}
    state = load_snapshot([out])
    assert len(state.of_kind("Deployment")) == len([o for o in lab_objects if o["kind"] == "Deployment"])
    assert TOKEN not in out.read_text()
    bad = subprocess.run([sys.executable, "-m", "nimwarden.cli", "snapshot", "--kubeconfig", str(tmp_path / "missing"), "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
