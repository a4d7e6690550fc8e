"""RBAC (family rbac): what the service accounts of the deployment's pods may do."""

from __future__ import annotations

import pytest

from nimwarden.families.rbac import judge
from nimwarden.k8s import source as k8s


@pytest.mark.control("RBAC-WILDCARD-001")
def test_no_wildcard_grants(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.wildcards, state=True, subject=judge.accounts_subject))


@pytest.mark.control("RBAC-SECRETS-001")
def test_no_cluster_wide_secret_reads(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.secrets_cluster_wide, state=True, subject=judge.accounts_subject))


@pytest.mark.control("RBAC-EXEC-001")
def test_no_pod_exec(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.pod_exec, state=True, subject=judge.accounts_subject))


@pytest.mark.control("RBAC-ESCALATE-001")
def test_no_escalation_verbs(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.escalation_verbs, state=True, subject=judge.accounts_subject))


@pytest.mark.control("RBAC-CLUSTERADMIN-001")
def test_no_cluster_admin(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, judge.cluster_admin, state=True, subject=judge.accounts_subject))


@pytest.mark.control("RBAC-AUTOMOUNT-001")
def test_no_token_automount(target, deployment, verdict):
    honor = bool(target.kubernetes.options.get("honor_annotations", False))
    verdict(k8s.judge_workloads(target, deployment, judge.automount_token, honor, state=True, subject=judge.accounts_subject))


@pytest.mark.control("RBAC-UNBOUNDROLE-001")
def test_no_wildcard_or_escalating_role_outside_the_audit(target, verdict):
    verdict(k8s.judge_target(target, judge.unaudited_roles))
