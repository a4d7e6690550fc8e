"""Gateway (family gateway): the external API entry point authenticates, rate-limits, and does not
forward management or internal paths; routes do not publish /."""

from __future__ import annotations

import pytest

from nimwarden.families.gateway import judge, k8s_judge, probe
from nimwarden.k8s import source as k8s


@pytest.mark.control("GATEWAY-AUTHN-001")
def test_unauthenticated_requests_refused(target, deployment, verdict):
    s = probe.entry_point(deployment)
    verdict(judge.judge_authentication(probe.probe_auth(s.base_url, s.requests, credential=s.credential, guard=target.guard,
                                                        timeout=probe.timeout_of(target))), subject=s.base_url)


@pytest.mark.control("GATEWAY-RATELIMIT-001")
def test_rate_limit_enforced(target, deployment, verdict):
    s = probe.entry_point(deployment)
    a = probe.probe_burst(s.burst_url, credential=s.credential, max_requests=s.burst_max_requests,
                          max_duration_s=s.burst_max_duration_s, guard=target.guard, timeout=probe.timeout_of(target))
    verdict(judge.judge_rate_limit(a, judge.RateLimitPolicy(documented_burst=s.documented_burst)), subject=s.burst_url)


@pytest.mark.control("GATEWAY-INTERNAL-001")
def test_internal_paths_not_forwarded(target, deployment, verdict):
    s = probe.entry_point(deployment)
    a = probe.probe_internal_paths(s.base_url, credential=s.credential, guard=target.guard, timeout=probe.timeout_of(target))
    verdict(judge.judge_internal_paths(a), subject=s.base_url)


@pytest.mark.control("GATEWAY-K8SROOT-001")
def test_k8s_routes_do_not_publish_root(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, k8s_judge.root_path, state=True))
