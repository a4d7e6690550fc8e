"""Network-policy suite (family network-policy): what the policies declare, and what the network does.

Static controls judge the target's NetworkPolicies (kubernetes source of the
profile) against the deployment's requirements (kubernetes.options.network_policy,
seeds as defaults); NETPOL-ENFORCED-001 probes the network from each source
position (the lab's network namespaces, or short-lived probe pods in a cluster
when the profile opts in) and compares with the declared policy.
"""

from __future__ import annotations

import pytest

from nimwarden.judges import netpol as judge
from nimwarden.netpol.cluster import inventory_attempt, requirements_for
from nimwarden.outcome import Outcome, not_applicable
from nimwarden.probes.reach import live_attempt


def _static(target, deployment, verdict, fn):
    inv = inventory_attempt(target)
    if isinstance(inv, Outcome):
        return verdict(inv)
    ref = deployment.kubernetes
    if not ref.namespace and not ref.selector:
        return verdict(not_applicable(f"deployment {deployment.name} declares no kubernetes namespace or selector"))
    verdict(fn(inv, requirements_for(target), ref), subject=f"{ref.namespace or '*'}/{','.join(f'{k}={v}' for k, v in ref.selector.items()) or '*'}")


@pytest.mark.control("NETPOL-DEFAULTDENY-001")
def test_default_deny_covers_the_namespace(target, deployment, verdict):
    _static(target, deployment, verdict, lambda inv, req, ref: judge.judge_default_deny(inv, req, [ref.namespace] if ref.namespace else None))


@pytest.mark.control("NETPOL-NIMAPI-001")
def test_api_port_only_from_gateway(target, deployment, verdict):
    _static(target, deployment, verdict, lambda inv, req, ref: judge.judge_api_sources(inv, req, ref.namespace, ref.selector))


@pytest.mark.control("NETPOL-EGRESS-001")
def test_egress_only_https_and_dns(target, deployment, verdict):
    _static(target, deployment, verdict, lambda inv, req, ref: judge.judge_egress(inv, req, ref.namespace, ref.selector))


@pytest.mark.control("NETPOL-METRICS-001")
def test_metrics_only_from_monitoring(target, deployment, verdict):
    _static(target, deployment, verdict, lambda inv, req, ref: judge.judge_metrics_sources(inv, req, ref.namespace, ref.selector))


@pytest.mark.control("NETPOL-DB-001")
def test_databases_only_from_owners(target, verdict):
    inv = inventory_attempt(target)
    verdict(inv if isinstance(inv, Outcome) else judge.judge_databases(inv, requirements_for(target)))


@pytest.mark.control("NETPOL-ENFORCED-001")
def test_network_enforces_declared_policy(target, deployment, verdict):
    probed = live_attempt(target, deployment)
    if isinstance(probed, Outcome):
        return verdict(probed)
    verdict(judge.judge_enforcement(probed.attempt, declared_by=probed.declared_by, extra=probed.evidence), subject=probed.subject)
