"""TLS (family tls): every TLS endpoint of the profile (HTTPS gateway, gRPC with --grpc-use-ssl)
scanned once with sslyze, judged against the TLS policy; plain-text endpoints where TLS is expected;
Ingress and Route objects without TLS."""

from __future__ import annotations

import pytest

from nimwarden.families.tls import judge, k8s_judge, probe
from nimwarden.k8s import source as k8s

TLS_ENDPOINTS = pytest.mark.parametrize("endpoint", ["gateway", "grpc"])


@pytest.mark.control("TLS-PROTOCOL-001")
@TLS_ENDPOINTS
def test_only_tls12_or_newer(target, deployment, endpoint, verdict):
    verdict(judge.judge_protocols(*probe.endpoint_scan(target, deployment, endpoint)), subject=deployment.endpoint(endpoint).url)


@pytest.mark.control("TLS-CIPHERS-001")
@TLS_ENDPOINTS
def test_no_weak_cipher_suites(target, deployment, endpoint, verdict):
    verdict(judge.judge_ciphers(*probe.endpoint_scan(target, deployment, endpoint)), subject=deployment.endpoint(endpoint).url)


@pytest.mark.control("TLS-FORWARDSEC-001")
@TLS_ENDPOINTS
def test_forward_secrecy(target, deployment, endpoint, verdict):
    verdict(judge.judge_forward_secrecy(*probe.endpoint_scan(target, deployment, endpoint)), subject=deployment.endpoint(endpoint).url)


@pytest.mark.control("TLS-CHAIN-001")
@TLS_ENDPOINTS
def test_chain_verifies_against_configured_ca(target, deployment, endpoint, verdict):
    verdict(judge.judge_chain(*probe.endpoint_scan(target, deployment, endpoint)), subject=deployment.endpoint(endpoint).url)


@pytest.mark.control("TLS-HOSTNAME-001")
@TLS_ENDPOINTS
def test_certificate_names_the_host(target, deployment, endpoint, verdict):
    verdict(judge.judge_hostname(*probe.endpoint_scan(target, deployment, endpoint)), subject=deployment.endpoint(endpoint).url)


@pytest.mark.control("TLS-EXPIRY-001")
@TLS_ENDPOINTS
def test_certificate_not_expired_or_expiring(target, deployment, endpoint, verdict):
    verdict(judge.judge_expiry(*probe.endpoint_scan(target, deployment, endpoint)), subject=deployment.endpoint(endpoint).url)


@pytest.mark.control("TLS-KEYSIZE-001")
@TLS_ENDPOINTS
def test_certificate_key_size(target, deployment, endpoint, verdict):
    verdict(judge.judge_key_size(*probe.endpoint_scan(target, deployment, endpoint)), subject=deployment.endpoint(endpoint).url)


@pytest.mark.control("TLS-MTLS-001")
@TLS_ENDPOINTS
def test_mutual_tls_refuses_clients_without_certificate(target, deployment, endpoint, verdict):
    verdict(judge.judge_mutual(*probe.endpoint_scan(target, deployment, endpoint)), subject=deployment.endpoint(endpoint).url)


@pytest.mark.control("TLS-PLAINTEXT-001")
def test_no_plaintext_where_tls_expected(target, deployment, verdict):
    checks = probe.plaintext_checks(target, deployment)
    verdict(judge.judge_plaintext_all(checks), subject=" ".join(deployment.endpoint(name).url for name, _, _ in checks))


@pytest.mark.control("TLS-K8SROUTE-001")
def test_k8s_routes_terminate_tls(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, k8s_judge.ingress_tls, state=True))
