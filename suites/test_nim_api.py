"""NIM endpoints (family nim-api): what a caller without credentials reaches from the probe
position on a NIM deployment (kind nim, or a Triton deployment with a NIM front declared as
its ``nim`` endpoint), and what it discloses (redacted)."""

from __future__ import annotations

import pytest

from nimwarden.judges import nim as judge
from nimwarden.outcome import not_applicable
from nimwarden.probes import nim


@pytest.fixture(scope="session")
def nim_answers(target):
    made: dict = {}

    def get(deployment):
        if deployment.name not in made:
            urls = nim.reachable_base_urls(target, deployment)
            timeout = (target.timeouts.connect_s, target.timeouts.read_s)
            made[deployment.name] = (urls, [nim.probe_nim(u, guard=target.guard, timeout=timeout) for u in urls])
        return made[deployment.name]

    return get


def _run(deployment, nim_answers, verdict, category):
    if not nim.serves_nim(deployment):
        return verdict(not_applicable(f"deployment {deployment.name} is not a NIM and declares no nim endpoint"))
    urls, attempts = nim_answers(deployment)
    if not urls:
        return verdict(not_applicable(f"deployment {deployment.name} has no HTTP endpoint reachable from the probe position"))
    verdict(judge.judge_anonymous_all(attempts, category), subject=" ".join(urls))


@pytest.mark.control("NIM-INFERENCE-001")
def test_inference_needs_credentials(deployment, nim_answers, verdict):
    _run(deployment, nim_answers, verdict, "inference")


@pytest.mark.control("NIM-METADATA-001")
def test_metadata_not_disclosed(deployment, nim_answers, verdict):
    _run(deployment, nim_answers, verdict, "metadata")


@pytest.mark.control("NIM-METRICS-001")
def test_metrics_not_reachable(deployment, nim_answers, verdict):
    _run(deployment, nim_answers, verdict, "metrics")


@pytest.mark.control("NIM-DOCS-001")
def test_openapi_explorer_not_reachable(deployment, nim_answers, verdict):
    _run(deployment, nim_answers, verdict, "docs")
