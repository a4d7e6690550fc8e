"""NIM endpoints (family nim-api): what a caller without credentials reaches from the probe position on
a NIM deployment (kind nim, or a Triton deployment with a NIM front declared as its ``nim`` endpoint),
and what it discloses (redacted). One round of requests per deployment, from the probe cache."""

from __future__ import annotations

import pytest

from nimwarden.families.nim_api import judge, probe


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
