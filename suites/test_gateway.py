"""Gateway (family gateway): the external API entry point authenticates, rate-limits, and does
not forward management or internal paths."""

from __future__ import annotations

import pytest

from nimwarden.judges import gateway as judge
from nimwarden.outcome import not_applicable
from nimwarden.probes import gateway as gw


def _entry(deployment, verdict):
    s = gw.settings(deployment)
    if s.base_url is None:
        verdict(not_applicable(f"deployment {deployment.name} declares neither a gateway nor an exposed HTTP endpoint"))
        return None
    return s


def _timeout(target):
    return (target.timeouts.connect_s, target.timeouts.read_s)


@pytest.mark.control("GATEWAY-AUTHN-001")
def test_unauthenticated_requests_refused(target, deployment, verdict):
    s = _entry(deployment, verdict)
    if s:
        a = gw.probe_auth(s.base_url, s.requests, credential=s.credential, guard=target.guard, timeout=_timeout(target))
        verdict(judge.judge_authentication(a), subject=s.base_url)


@pytest.mark.control("GATEWAY-RATELIMIT-001")
def test_rate_limit_enforced(target, deployment, verdict):
    s = _entry(deployment, verdict)
    if s:
        a = gw.probe_burst(s.burst_url, credential=s.credential, max_requests=s.burst_max_requests,
                           max_duration_s=s.burst_max_duration_s, guard=target.guard, timeout=_timeout(target))
        verdict(judge.judge_rate_limit(a, judge.RateLimitPolicy(documented_burst=s.documented_burst)), subject=s.burst_url)


@pytest.mark.control("GATEWAY-INTERNAL-001")
def test_internal_paths_not_forwarded(target, deployment, verdict):
    s = _entry(deployment, verdict)
    if s:
        a = gw.probe_internal_paths(s.base_url, credential=s.credential, guard=target.guard, timeout=_timeout(target))
        verdict(judge.judge_internal_paths(a), subject=s.base_url)
