"""NeMo microservices (family nemo): the NeMo Platform, the Guardrails server and the legacy per-port
services probed read-only from the probe position (GET and OPTIONS, random nonexistent names only), and
NeMo resources judged from cluster state."""

from __future__ import annotations

import pytest

from nimwarden.families.nemo import spec_judge
from nimwarden.k8s import source as k8s

# ----------------------------------------------------------------------------------- from cluster state


@pytest.mark.control("NEMO-SPEC-AUTH-001")
def test_spec_platform_authentication_on(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.platform_auth, state=True))


@pytest.mark.control("NEMO-SPEC-EXPOSE-001")
def test_spec_nemo_not_published(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.not_published, state=True))


@pytest.mark.control("NEMO-SPEC-NETPOL-001")
def test_spec_nemo_isolated_by_network_policy(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.isolated, state=True))
