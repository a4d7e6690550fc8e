"""Network policy (family network-policy): what the policies declare, and what the network does.

Static controls judge the target's NetworkPolicies (kubernetes source of the profile) against the
deployment's requirements (kubernetes.options.network_policy, seeds as defaults);
NETPOL-ENFORCED-001 probes the network from each source position (the lab's network namespaces, or
short-lived probe pods in a cluster when the profile opts in) and compares with the declared policy.
"""

from __future__ import annotations

import pytest

from nimwarden.families.network_policy import judge
from nimwarden.families.network_policy.inventory import judged, requirements_for
from nimwarden.families.network_policy.live import live_attempt


def _scope(deployment) -> str:
    ref = deployment.kubernetes
    return f"{ref.namespace or '*'}/{','.join(f'{k}={v}' for k, v in ref.selector.items()) or '*'}"


@pytest.mark.control("NETPOL-DEFAULTDENY-001")
def test_default_deny_covers_the_namespace(target, deployment, verdict):
    ns = deployment.kubernetes.namespace
    verdict(judged(target, deployment, judge.judge_default_deny, requirements_for(target), [ns] if ns else None), subject=_scope(deployment))


@pytest.mark.control("NETPOL-NIMAPI-001")
def test_api_port_only_from_gateway(target, deployment, verdict):
    ref = deployment.kubernetes
    verdict(judged(target, deployment, judge.judge_api_sources, requirements_for(target), ref.namespace, ref.selector), subject=_scope(deployment))


@pytest.mark.control("NETPOL-EGRESS-001")
def test_egress_only_https_and_dns(target, deployment, verdict):
    ref = deployment.kubernetes
    verdict(judged(target, deployment, judge.judge_egress, requirements_for(target), ref.namespace, ref.selector), subject=_scope(deployment))


@pytest.mark.control("NETPOL-METRICS-001")
def test_metrics_only_from_monitoring(target, deployment, verdict):
    ref = deployment.kubernetes
    verdict(judged(target, deployment, judge.judge_metrics_sources, requirements_for(target), ref.namespace, ref.selector), subject=_scope(deployment))


@pytest.mark.control("NETPOL-DB-001")
def test_databases_only_from_owners(target, verdict):
    verdict(judged(target, None, judge.judge_databases, requirements_for(target)))


@pytest.mark.control("NETPOL-ENFORCED-001")
def test_network_enforces_declared_policy(target, deployment, verdict):
    probed = live_attempt(target, deployment)
    verdict(judge.judge_live(probed))
