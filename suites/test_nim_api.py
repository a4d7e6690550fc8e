"""NIM endpoints (family nim-api): what a caller without credentials reaches from the probe position on
a NIM deployment (kind nim, or a Triton deployment with a NIM front declared as its ``nim`` endpoint),
and what it discloses (redacted). One round of requests per deployment, from the probe cache."""

from __future__ import annotations

import pytest

from nimwarden.families.nim_api import engines, grpc, judge, probe, spec_judge
from nimwarden.k8s import source as k8s


@pytest.mark.control("NIM-INFERENCE-001")
def test_inference_needs_credentials(deployment, probes, verdict):
    answers = probes(probe.deployment_answers, deployment)
    verdict(judge.judge_anonymous_all(answers.attempts, "inference"), subject=answers.subject)


@pytest.mark.control("NIM-METADATA-001")
def test_metadata_not_disclosed(deployment, probes, verdict):
    answers = probes(probe.deployment_answers, deployment)
    verdict(judge.judge_anonymous_all(answers.attempts, "metadata"), subject=answers.subject)


@pytest.mark.control("NIM-METRICS-001")
def test_metrics_not_reachable(deployment, probes, verdict):
    answers = probes(probe.deployment_answers, deployment)
    verdict(judge.judge_anonymous_all(answers.attempts, "metrics"), subject=answers.subject)


@pytest.mark.control("NIM-DOCS-001")
def test_openapi_explorer_not_reachable(deployment, probes, verdict):
    answers = probes(probe.deployment_answers, deployment)
    verdict(judge.judge_anonymous_all(answers.attempts, "docs"), subject=answers.subject)


@pytest.mark.control("NIM-CORS-001")
def test_cors_refuses_foreign_origins(target, deployment, probes, verdict):
    answers = probes(probe.deployment_answers, deployment)
    verdict(judge.judge_cors(probe.deployment_cors(target, deployment), answers.attempts), subject=answers.subject)


@pytest.mark.control("NIM-SPEC-SSL-001")
def test_spec_nim_serves_tls(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.ssl_mode))


@pytest.mark.control("NIM-SPEC-CORS-001")
def test_spec_nim_cors_origins(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.cors_origins))


@pytest.mark.control("NIM-SPEC-QUEUE-001")
def test_spec_nim_queue_bound(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.queue_bound))


@pytest.mark.control("NIM-ENGINECVE-001")
def test_engines_inside_the_nim_past_their_advisories(target, deployment, verdict):
    verdict(engines.engine_cves(probe.nim_release(target, deployment)))


@pytest.mark.control("NIM-GRPC-001")
def test_nim_grpc_not_published(target, deployment, verdict):
    verdict(grpc.grpc_verdict(grpc.live_half(target, deployment, probe.grpc_connect), grpc.workload_half(target, deployment)))
