"""Documented ports (family ports): nmap over each deployment's hosts, diffed against the
vendor's port table. Thin: plan, probe (one scan per deployment), judge, verdict."""

from __future__ import annotations

import pytest

from nimwarden.judges import ports as judge
from nimwarden.outcome import not_applicable
from nimwarden.probes import ports


@pytest.fixture(scope="session")
def port_scan(target):
    """One nmap scan per deployment, shared by the three port controls."""
    made: dict = {}

    def get(deployment):
        if deployment.name not in made:
            plan = ports.plan(target, deployment)
            made[deployment.name] = (plan, ports.probe_plan(plan, target.guard) if plan.hosts else None)
        return made[deployment.name]

    return get


def _run(deployment, port_scan, verdict, fn):
    plan, scan = port_scan(deployment)
    if scan is None:
        return verdict(not_applicable(f"deployment {deployment.name} declares no host reachable from {plan.position}"))
    verdict(fn(scan, plan), subject=f"{deployment.name}:{','.join(plan.hosts)}")


@pytest.mark.control("PORTS-UNDOCUMENTED-001")
def test_only_documented_ports_are_open(deployment, port_scan, verdict):
    _run(deployment, port_scan, verdict, judge.judge_undocumented)


@pytest.mark.control("PORTS-POSITION-001")
def test_internal_ports_not_reachable_from_probe_position(deployment, port_scan, verdict):
    _run(deployment, port_scan, verdict, judge.judge_position)


@pytest.mark.control("PORTS-EXPECTED-001")
def test_declared_entry_points_answer(deployment, port_scan, verdict):
    _run(deployment, port_scan, verdict, judge.judge_expected)
