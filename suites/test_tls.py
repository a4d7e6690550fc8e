"""TLS (family tls): every TLS endpoint of the profile (HTTPS gateway, gRPC with --grpc-use-ssl)
scanned once with sslyze, judged against the TLS policy; plain-text endpoints where TLS is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from nimwarden.judges import tls as judge
from nimwarden.outcome import not_applicable
from nimwarden.probes import tls

TLS_ENDPOINTS = pytest.mark.parametrize("endpoint", ["gateway", "grpc"])


def _scan(target, deployment, name):
    """(attempt, policy) for a TLS endpoint, or (not-applicable outcome, None)."""
    ep = deployment.endpoint(name)
    if ep is None:
        return not_applicable(f"deployment {deployment.name} declares no {name} endpoint"), None
    if not ep.tls:
        return not_applicable(f"{name} endpoint {ep.url} is not TLS (see TLS-PLAINTEXT-001 for whether it must be)"), None
    s = judge.settings(target, deployment)
    client = None
    if name in s.mutual and s.client_cert and s.client_key:
        client = tls.ClientCredentials(Path(s.client_cert), Path(s.client_key))
    a = tls.probe_tls(ep.host, ep.port, guard=target.guard, server_name=s.server_name, ca_file=s.ca_file,
                      client=client, timeout_s=target.timeouts.read_s)
    return a, s.policy(name)


def _run(target, deployment, name, verdict, fn):
    a, policy = _scan(target, deployment, name)
    if policy is None:
        return verdict(a)
    verdict(fn(a, policy), subject=deployment.endpoint(name).url)


@pytest.mark.control("TLS-PROTOCOL-001")
@TLS_ENDPOINTS
def test_only_tls12_or_newer(target, deployment, endpoint, verdict):
    _run(target, deployment, endpoint, verdict, judge.judge_protocols)


@pytest.mark.control("TLS-CIPHERS-001")
@TLS_ENDPOINTS
def test_no_weak_cipher_suites(target, deployment, endpoint, verdict):
    _run(target, deployment, endpoint, verdict, judge.judge_ciphers)


@pytest.mark.control("TLS-FORWARDSEC-001")
@TLS_ENDPOINTS
def test_forward_secrecy(target, deployment, endpoint, verdict):
    _run(target, deployment, endpoint, verdict, judge.judge_forward_secrecy)


@pytest.mark.control("TLS-CHAIN-001")
@TLS_ENDPOINTS
def test_chain_verifies_against_configured_ca(target, deployment, endpoint, verdict):
    _run(target, deployment, endpoint, verdict, judge.judge_chain)


@pytest.mark.control("TLS-HOSTNAME-001")
@TLS_ENDPOINTS
def test_certificate_names_the_host(target, deployment, endpoint, verdict):
    _run(target, deployment, endpoint, verdict, judge.judge_hostname)


@pytest.mark.control("TLS-EXPIRY-001")
@TLS_ENDPOINTS
def test_certificate_not_expired_or_expiring(target, deployment, endpoint, verdict):
    _run(target, deployment, endpoint, verdict, judge.judge_expiry)


@pytest.mark.control("TLS-KEYSIZE-001")
@TLS_ENDPOINTS
def test_certificate_key_size(target, deployment, endpoint, verdict):
    _run(target, deployment, endpoint, verdict, judge.judge_key_size)


@pytest.mark.control("TLS-MTLS-001")
@TLS_ENDPOINTS
def test_mutual_tls_refuses_clients_without_certificate(target, deployment, endpoint, verdict):
    if endpoint not in judge.settings(target, deployment).mutual:
        return verdict(not_applicable(f"the profile does not require mutual TLS on {deployment.name}'s {endpoint} endpoint"))
    _run(target, deployment, endpoint, verdict, judge.judge_mutual)


@pytest.mark.control("TLS-PLAINTEXT-001")
def test_no_plaintext_where_tls_expected(target, deployment, verdict):
    required = judge.settings(target, deployment).require
    names = [n for n in (*required, "gateway_http") if deployment.endpoint(n) is not None]
    if not names:
        return verdict(not_applicable(f"{deployment.name} declares none of the endpoints required to be TLS ({', '.join(required)})"))
    checks = []
    for name in dict.fromkeys(names):
        ep = deployment.endpoint(name)
        a = tls.probe_plaintext(ep.host, ep.port, guard=target.guard, timeout_s=target.timeouts.read_s)
        checks.append((name, a, name in required))
    verdict(judge.judge_plaintext_all(checks), subject=" ".join(deployment.endpoint(n).url for n in dict.fromkeys(names)))
