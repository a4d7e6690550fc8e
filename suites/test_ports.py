"""Documented ports (family ports): nmap over each deployment's hosts, diffed against the vendor's port
table, and Services that publish the API ports outside the cluster. Thin: probe (one scan per
deployment, from the probe cache), judge, verdict."""

from __future__ import annotations

import pytest

from nimwarden.families.ports import judge, k8s_judge, probe
from nimwarden.k8s import source as k8s


@pytest.mark.control("PORTS-UNDOCUMENTED-001")
def test_only_documented_ports_are_open(deployment, probes, verdict):
    scan = probes(probe.deployment_scan, deployment)
    verdict(judge.judge_undocumented(scan.attempt, scan.plan), subject=scan.subject)


@pytest.mark.control("PORTS-POSITION-001")
def test_internal_ports_not_reachable_from_probe_position(deployment, probes, verdict):
    scan = probes(probe.deployment_scan, deployment)
    verdict(judge.judge_position(scan.attempt, scan.plan), subject=scan.subject)


@pytest.mark.control("PORTS-EXPECTED-001")
def test_declared_entry_points_answer(deployment, probes, verdict):
    scan = probes(probe.deployment_scan, deployment)
    verdict(judge.judge_expected(scan.attempt, scan.plan), subject=scan.subject)


@pytest.mark.control("PORTS-K8SEXPOSE-001")
def test_k8s_services_not_published(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, k8s_judge.services, state=True))
