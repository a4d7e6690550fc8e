"""Pod security (family pod-security): the deployment's pod templates against the Pod Security
Standards and the NIM-specific securityContext controls. Thin: judge the workloads, verdict."""

from __future__ import annotations

import pytest

from nimwarden.families.pod_security import judge
from nimwarden.k8s import source as k8s


@pytest.mark.control("POD-PSS-001")
def test_pod_security_standard(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.pss, target.kubernetes.pss_level, k8s.option(target, "pss_version", "latest")))


@pytest.mark.control("POD-NSLABELS-001")
def test_namespace_pss_labels(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.namespace_labels_of, target.kubernetes.pss_level, state=True))


@pytest.mark.control("POD-NONROOT-001")
def test_non_root(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.non_root))


@pytest.mark.control("POD-SECCOMP-001")
def test_seccomp_profile(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.seccomp))


@pytest.mark.control("POD-PRIVESC-001")
def test_no_privilege_escalation(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.no_privilege_escalation))


@pytest.mark.control("POD-CAPS-001")
def test_capabilities_dropped(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.capabilities))


@pytest.mark.control("POD-ROROOT-001")
def test_read_only_root_filesystem(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.read_only_root))


@pytest.mark.control("POD-MODELRO-001")
def test_model_volumes_read_only(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.model_volumes_read_only))


@pytest.mark.control("POD-GPUPRIV-001")
def test_gpu_without_privilege(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.gpu_without_privilege))


@pytest.mark.control("POD-HOSTPATH-001")
def test_no_host_path(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.no_host_path))
