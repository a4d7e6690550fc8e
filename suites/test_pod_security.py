"""Pod security suite (family pod-security): the deployment's pod templates against the Pod Security
Standards and the NIM-specific securityContext controls. Thin: select workloads, judge, verdict."""

from __future__ import annotations

import pytest

from nimwarden.judges import k8s_context as judge
from nimwarden.outcome import Outcome
from nimwarden.probes import k8s


def _judge(target, deployment, verdict, fn, *args):
    w = k8s.for_deployment(target, deployment)
    if isinstance(w, Outcome):
        return verdict(w)
    verdict(fn(w.templates, *args), subject=w.subject)


@pytest.mark.control("POD-PSS-001")
def test_pod_security_standard(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.pss, target.kubernetes.pss_level, k8s.option(target, "pss_version", "latest"))


@pytest.mark.control("POD-NSLABELS-001")
def test_namespace_pss_labels(target, deployment, verdict):
    w = k8s.for_deployment(target, deployment)
    if isinstance(w, Outcome):
        return verdict(w)
    namespace = w.namespace or w.templates[0].owner.namespace
    verdict(judge.namespace_labels(namespace, w.state.get("Namespace", None, namespace), target.kubernetes.pss_level),
            subject=f"Namespace/{namespace}")


@pytest.mark.control("POD-NONROOT-001")
def test_non_root(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.non_root)


@pytest.mark.control("POD-SECCOMP-001")
def test_seccomp_profile(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.seccomp)


@pytest.mark.control("POD-PRIVESC-001")
def test_no_privilege_escalation(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.no_privilege_escalation)


@pytest.mark.control("POD-CAPS-001")
def test_capabilities_dropped(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.capabilities)


@pytest.mark.control("POD-ROROOT-001")
def test_read_only_root_filesystem(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.read_only_root)


@pytest.mark.control("POD-MODELRO-001")
def test_model_volumes_read_only(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.model_volumes_read_only)


@pytest.mark.control("POD-GPUPRIV-001")
def test_gpu_without_privilege(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.gpu_without_privilege)


@pytest.mark.control("POD-HOSTPATH-001")
def test_no_host_path(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.no_host_path)
