"""NeMo microservices (family nemo): the NeMo Platform, the Guardrails server and the legacy per-port
services probed read-only from the probe position (GET and OPTIONS, random nonexistent names only), and
NeMo resources judged from cluster state. One round of requests per deployment, from the probe cache."""

from __future__ import annotations

import pytest

from nimwarden.families.nemo import judge, probe, spec_judge
from nimwarden.k8s import source as k8s


@pytest.mark.control("NEMO-AUTH-001")
def test_platform_authentication_on(deployment, probes, verdict):
    rounds = probes(probe.deployment_nemo, deployment)
    verdict(judge.each(rounds.platform, judge.auth_enabled, "NeMo Platform URL"), subject=rounds.subject)


@pytest.mark.control("NEMO-ANON-001")
def test_no_anonymous_reads(deployment, probes, verdict):
    rounds = probes(probe.deployment_nemo, deployment)
    verdict(judge.anonymous_reads(rounds.platform, rounds.legacy), subject=rounds.subject)


@pytest.mark.control("NEMO-SECRETS-001")
def test_secret_values_guarded(deployment, probes, verdict):
    rounds = probes(probe.deployment_nemo, deployment)
    verdict(judge.each(rounds.platform, judge.secret_access, "NeMo Platform URL"), subject=rounds.subject)


@pytest.mark.control("NEMO-FORGE-001")
def test_forged_identity_refused(deployment, probes, verdict):
    rounds = probes(probe.deployment_nemo, deployment)
    verdict(judge.each(rounds.platform, judge.identity_forgery, "NeMo Platform URL"), subject=rounds.subject)


@pytest.mark.control("NEMO-HFTOKEN-001")
def test_hf_routes_refuse_service_bearer(deployment, probes, verdict):
    rounds = probes(probe.deployment_nemo, deployment)
    verdict(judge.each(rounds.platform, judge.hf_service_bearer, "NeMo Platform URL"), subject=rounds.subject)


@pytest.mark.control("NEMO-CORS-001")
def test_cors_refuses_foreign_origins(deployment, probes, verdict):
    rounds = probes(probe.deployment_nemo, deployment)
    verdict(judge.cors(rounds.platform, rounds.guardrails), subject=rounds.subject)


@pytest.mark.control("NEMO-DOCS-001")
def test_api_docs_not_served(deployment, probes, verdict):
    rounds = probes(probe.deployment_nemo, deployment)
    verdict(judge.docs(rounds.platform, rounds.guardrails), subject=rounds.subject)


@pytest.mark.control("NEMO-RATELIMIT-001")
def test_rate_limit_in_front(deployment, probes, verdict):
    probes(probe.deployment_nemo, deployment)  # the rounds first: the burst may leave a limiter counting
    bursts = probes(probe.deployment_bursts, deployment)
    verdict(judge.rate_limits(bursts.attempts), subject=bursts.subject)


@pytest.mark.control("NEMO-GUARDRAILS-001")
def test_guardrails_not_open(deployment, probes, verdict):
    rounds = probes(probe.deployment_nemo, deployment)
    verdict(judge.each(rounds.guardrails, judge.guardrails_anonymous, "NeMo Guardrails URL"), subject=rounds.subject)


@pytest.mark.control("NEMO-GUARDRAILS-MODELS-001")
def test_guardrails_no_anonymous_model_list(deployment, probes, verdict):
    rounds = probes(probe.deployment_nemo, deployment)
    verdict(judge.each(rounds.guardrails, judge.guardrails_models, "NeMo Guardrails URL"), subject=rounds.subject)



# ----------------------------------------------------------------------------------- from cluster state


@pytest.mark.control("NEMO-SPEC-AUTH-001")
def test_spec_platform_authentication_on(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.platform_auth, state=True))


@pytest.mark.control("NEMO-SPEC-EXPOSE-001")
def test_spec_nemo_not_published(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.not_published, state=True))


@pytest.mark.control("NEMO-SPEC-NETPOL-001")
def test_spec_nemo_isolated_by_network_policy(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.isolated, state=True))
