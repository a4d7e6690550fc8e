"""The rest of the stack, current: the GPU driver against bulletin 5861 (per branch), the DCGM Exporter's
cluster-wide pod reader (GPU Operator 26.3.2+), and the Ray head's version against Ray's advisories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nimwarden.families.gpu_platform import judge, ray_versions, stack
from nimwarden.k8s import load_manifests
from nimwarden.k8s.model import ClusterState, make_object
from nimwarden.net.http import HttpResponse
from nimwarden.outcome import Attempt, Status

FIXTURES = Path(__file__).parents[1] / "fixtures" / "gpu_platform"


def objects(*bodies: dict) -> ClusterState:
    return ClusterState("test", tuple(make_object(b, "test") for b in bodies))


def driver_daemonset(tag: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "nvidia-driver-daemonset", "namespace": "gpu-operator"},
            "spec": {"template": {"spec": {"containers": [{"name": "nvidia-driver-ctr", "image": f"nvcr.io/nvidia/driver:{tag}"}]}}}}


@pytest.mark.parametrize("tag, status, fixed", [
    ("580.126.20-ubuntu22.04", Status.FAIL, "580.178.04 (branch R580)"),   # GPU Operator 26.3.x's driver
    ("580.178.04-ubuntu22.04", Status.PASS, None),
    ("595.91.07-ubuntu24.04", Status.PASS, None),                           # GPU Operator 26.7.0's driver
    ("610.40.01-rhel9.6", Status.FAIL, "610.57.04 (branch R610)"),
    ("570.195.03-ubuntu22.04", Status.FAIL, "earlier branches might also be affected"),  # a branch 5861 does not list
    ("620.10.02-ubuntu24.04", Status.PASS, None),                           # newer than every listed branch
])
def test_the_gpu_driver_is_judged_per_branch_against_bulletin_5861(tag, status, fixed):
    out = judge.versions_in(objects(driver_daemonset(tag)))
    assert out.status is status, out.reason
    if fixed:
        (row,) = [c for c in out.evidence["cves"] if c["component"] == "driver"]
        assert fixed in row["fixed_in"] + " ".join(out.evidence["findings"]) and row["bulletin"] == "5861"
        assert out.severity == "high"


def test_the_fixtures_carry_the_driver_the_operator_pins():
    assert ("driver", "580.126.20") in {(c.product, c.version) for c in stack.components(load_manifests([FIXTURES / "vulnerable"]))}
    assert any("5861" in c["bulletin"] for c in judge.versions_in(load_manifests([FIXTURES / "vulnerable"])).evidence["cves"])
    assert judge.versions_in(load_manifests([FIXTURES / "fixed"])).status is Status.PASS


OPERATOR = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gpu-operator", "namespace": "gpu-operator"},
            "spec": {"template": {"spec": {"containers": [{"name": "gpu-operator", "image": "nvcr.io/nvidia/gpu-operator:v26.3.2"}]}}}}
POLICY = {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "cluster-policy"},
          "spec": {"dcgmExporter": {"enabled": True, "enablePodLabels": True}}}
ROLE = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "nvidia-dcgm-exporter-read-pods"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]}
BINDING = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "nvidia-dcgm-exporter-read-pods"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "nvidia-dcgm-exporter-read-pods"},
           "subjects": [{"kind": "ServiceAccount", "name": "nvidia-dcgm-exporter", "namespace": "gpu-operator"}]}


def test_the_dcgm_exporter_pod_reader_is_an_rbac_finding_with_its_reason():
    live = judge.pod_reader_in(objects(OPERATOR, POLICY, ROLE, BINDING))
    assert live.status is Status.FAIL and live.severity == "medium"
    text = " ".join(live.evidence["findings"])
    assert "ServiceAccount/gpu-operator/nvidia-dcgm-exporter" in text and "get/list/watch every pod" in text
    assert "spec.dcgmExporter.enablePodLabels: true" in text
    rendered = judge.pod_reader_in(objects(OPERATOR, POLICY))  # manifests: the operator will create the role
    assert rendered.status is Status.FAIL and "GPU Operator v26.3.2 creates ClusterRole nvidia-dcgm-exporter-read-pods" in " ".join(rendered.evidence["findings"])
    env_on = {**POLICY, "spec": {"dcgmExporter": {"env": [{"name": "DCGM_EXPORTER_KUBERNETES_ENABLE_POD_UID", "value": "true"}]}}}
    assert judge.pod_reader_in(objects(OPERATOR, env_on)).status is Status.FAIL


def test_no_pod_metadata_or_an_older_operator_passes_and_unknown_errors():
    off = {**POLICY, "spec": {"dcgmExporter": {"enabled": True}}}
    assert judge.pod_reader_in(objects(OPERATOR, off)).status is Status.PASS
    older = {**OPERATOR, "spec": {"template": {"spec": {"containers": [{"name": "o", "image": "nvcr.io/nvidia/gpu-operator:v26.3.1"}]}}}}
    assert judge.pod_reader_in(objects(older, POLICY)).status is Status.PASS  # 26.3.1 has no such role
    unknown = {**OPERATOR, "spec": {"template": {"spec": {"containers": [{"name": "o", "image": "nvcr.io/nvidia/gpu-operator@sha256:0"}]}}}}
    assert judge.pod_reader_in(objects(unknown, POLICY)).status is Status.ERROR
    assert judge.pod_reader_in(ClusterState("test", ())).status is Status.NOT_APPLICABLE
    denied = ClusterState("test", (), denied={"ClusterRole": "list clusterroles"})
    assert judge.pod_reader_in(denied).status is Status.ERROR
    assert judge.pod_reader_in(load_manifests([FIXTURES / "fixed"])).status is Status.PASS


def version(ray: str, status: int = 200) -> Attempt:
    body = json.dumps({"version": "3", "ray_version": ray, "ray_commit": "abc"}).encode()
    return Attempt("ray.version", "GET /api/version", HttpResponse(status, "OK", {"Content-Type": "application/json"}, body), None)


@pytest.mark.parametrize("ray, status, named", [
    ("2.51.1", Status.FAIL, "CVE-2025-62593"),
    ("2.57.1", Status.FAIL, "fixed in 2.57.2"),
    ("2.57.2", Status.PASS, None),
    ("2.58.1", Status.FAIL, "fixed in 2.58.2"),
    ("2.59.1", Status.PASS, None),
    ("2.60.0", Status.PASS, None),   # the lab's heads
    ("2.56.0", Status.FAIL, "fixed in 2.60.0"),  # a branch the security releases do not name
])
def test_the_ray_head_version_against_rays_advisories(ray, status, named):
    out = ray_versions.ray_version(version(ray))
    assert out.status is status, out.reason
    if named:
        assert named in out.reason and f"Ray {ray} is likely vulnerable" in out.reason
    assert out.evidence["ray_advisories"]["checked"] == "2026-12-06"


def test_the_ray_version_fails_closed():
    assert ray_versions.ray_version(version("2.60.0", 401)).status is Status.ERROR
    assert "credentials.ray" in ray_versions.ray_version(version("2.60.0", 403)).reason
    assert ray_versions.ray_version(Attempt("ray.version", "GET /api/version", None, "connection refused")).status is Status.ERROR
    garbage = Attempt("ray.version", "GET /api/version", HttpResponse(200, "OK", {}, b"<html>"), None)
    assert ray_versions.ray_version(garbage).status is Status.ERROR
    assert ray_versions.ray_version(version("banana")).status is Status.ERROR
