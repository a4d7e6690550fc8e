"""RBAC suite (family rbac): what the service accounts of the deployment's pods may do."""

from __future__ import annotations

import pytest

from nimwarden.judges import k8s_rbac as judge
from nimwarden.outcome import Outcome
from nimwarden.probes import k8s


def _judge(target, deployment, verdict, fn):
    w = k8s.for_deployment(target, deployment)
    if isinstance(w, Outcome):
        return verdict(w)
    accounts = ", ".join(f"ServiceAccount/{ns}/{name}" for ns, name in judge.service_accounts(w.templates))
    verdict(fn(w.state, w.templates), subject=accounts)


@pytest.mark.control("RBAC-WILDCARD-001")
def test_no_wildcard_grants(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.wildcards)


@pytest.mark.control("RBAC-SECRETS-001")
def test_no_cluster_wide_secret_reads(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.secrets_cluster_wide)


@pytest.mark.control("RBAC-EXEC-001")
def test_no_pod_exec(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.pod_exec)


@pytest.mark.control("RBAC-ESCALATE-001")
def test_no_escalation_verbs(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.escalation_verbs)


@pytest.mark.control("RBAC-CLUSTERADMIN-001")
def test_no_cluster_admin(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.cluster_admin)


@pytest.mark.control("RBAC-AUTOMOUNT-001")
def test_no_token_automount(target, deployment, verdict):
    honor = bool(target.kubernetes.options.get("honor_annotations", False))
    _judge(target, deployment, verdict, lambda state, templates: judge.automount_token(state, templates, honor_annotation=honor))
