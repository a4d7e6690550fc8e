"""GPU platform (family gpu-platform): the GPU Operator stack and the multi-node runtime a NIM or Triton
deployment runs on. Versions and settings from cluster state (target-wide); DCGM Exporter and Ray
dashboard exposure probed live where the profile declares them (read-only)."""

from __future__ import annotations

import pytest

from nimwarden.families.gpu_platform import judge, probe, ray_versions
from nimwarden.k8s import source as k8s


@pytest.mark.control("GPUSTACK-VERSION-001")
def test_gpu_stack_versions_past_the_fixes(target, verdict):
    verdict(k8s.judge_state(target, judge.versions_in))


@pytest.mark.control("GPUSTACK-SETTINGS-001")
def test_no_risky_gpu_operator_setting(target, verdict):
    verdict(k8s.judge_state(target, judge.settings_in))


@pytest.mark.control("GPUSTACK-PODREAD-001")
def test_dcgm_exporter_reads_no_pod_cluster_wide(target, verdict):
    verdict(k8s.judge_state(target, judge.pod_reader_in))


@pytest.mark.control("RAY-EXPOSE-001")
def test_ray_head_not_published(target, verdict):
    verdict(k8s.judge_state(target, judge.ray_in))


@pytest.mark.control("GPUSTACK-DCGM-001")
def test_dcgm_exporter_not_exposed(target, deployment, verdict):
    metrics, pprof = probe.dcgm(target, deployment)
    verdict(judge.dcgm_exposure(metrics, pprof, target.probe_position == "external", "dcgm" in deployment.exposure),
            subject=deployment.endpoint("dcgm").url)


@pytest.mark.control("RAY-DASHBOARD-001")
def test_ray_dashboard_needs_a_token(target, deployment, verdict):
    verdict(judge.ray_dashboard(*probe.ray(target, deployment)), subject=deployment.endpoint("ray").url)


@pytest.mark.control("RAY-VERSION-001")
def test_ray_head_past_its_advisories(target, deployment, verdict):
    verdict(ray_versions.ray_version(probe.ray_version(target, deployment)), subject=deployment.endpoint("ray").url)


@pytest.mark.control("RAY-PORTS-001")
def test_ray_gcs_and_client_not_reachable(target, deployment, verdict):
    verdict(judge.ray_ports(probe.ray_ports(target, deployment), deployment.exposure), subject=probe.ray_port_urls(deployment))


@pytest.mark.control("RAY-NETPOL-001")
def test_ray_head_isolated_by_network_policy(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.ray_isolation, deployment.kubernetes.namespace, state=True))
