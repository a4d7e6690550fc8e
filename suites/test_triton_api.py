"""Triton API security suite (family triton-api): thin tests — parametrize, probe, judge, verdict.

Every probe here is non-destructive (see nimwarden/probes/triton.py).
"""

from __future__ import annotations

import pytest

from nimwarden.judges import triton as judge
from nimwarden.outcome import not_applicable

pytestmark = pytest.mark.kinds("triton")

BOTH = pytest.mark.parametrize("protocol", ["http", "grpc"])


def _needs(deployment, endpoint: str):
    if deployment.endpoint(endpoint) is None:
        return not_applicable(f"deployment {deployment.name} declares no {endpoint} endpoint")
    return None


def _restricted(deployment, triton, protocol, category, verdict):
    missing = _needs(deployment, protocol)
    if missing:
        return verdict(missing)
    verdict(judge.category_restricted(category, triton(deployment).category(category, protocol)))


@pytest.mark.control("TRITON-MODELCTL-001")
@BOTH
def test_model_repository_refuses_unauthenticated(deployment, triton, protocol, verdict):
    _restricted(deployment, triton, protocol, "model-repository", verdict)


@pytest.mark.control("TRITON-DYNLOAD-001")
@BOTH
def test_dynamic_model_loading_disabled(deployment, triton, protocol, verdict):
    missing = _needs(deployment, protocol)
    verdict(missing or judge.dynamic_loading_disabled(triton(deployment).model_load(protocol)))


@pytest.mark.control("TRITON-MODELCONFIG-001")
@BOTH
def test_model_config_restricted(deployment, triton, protocol, verdict):
    _restricted(deployment, triton, protocol, "model-config", verdict)


@pytest.mark.control("TRITON-SHM-001")
@BOTH
def test_shared_memory_restricted(deployment, triton, protocol, verdict):
    _restricted(deployment, triton, protocol, "shared-memory", verdict)


@pytest.mark.control("TRITON-STATS-001")
@BOTH
def test_statistics_restricted(deployment, triton, protocol, verdict):
    _restricted(deployment, triton, protocol, "statistics", verdict)


@pytest.mark.control("TRITON-TRACE-001")
@BOTH
def test_trace_settings_restricted(deployment, triton, protocol, verdict):
    _restricted(deployment, triton, protocol, "trace", verdict)


@pytest.mark.control("TRITON-LOGGING-001")
@BOTH
def test_logging_settings_restricted(deployment, triton, protocol, verdict):
    _restricted(deployment, triton, protocol, "logging", verdict)


@pytest.mark.control("TRITON-TRACE-002")
def test_tracing_is_off(deployment, triton, verdict):
    probe = triton(deployment)
    attempt = probe.trace_setting(with_credentials=False)
    if attempt.completed and attempt.observation.status in (401, 403):
        attempt = probe.trace_setting(with_credentials=True)
    verdict(judge.trace_off(attempt), subject=deployment.endpoint("http").url)


@pytest.mark.control("TRITON-AVAIL-001")
@BOTH
def test_health_and_inference_available(deployment, triton, protocol, verdict):
    missing = _needs(deployment, protocol)
    if missing:
        return verdict(missing)
    probe = triton(deployment)
    infer = None
    if deployment.models:
        from nimwarden.probes.inputs import synthetic_inputs

        model = deployment.models[0]
        spec = synthetic_inputs(probe.model_metadata(model))
        infer = probe.infer(model, spec.observation, protocol) if spec.completed else spec
    verdict(judge.health_and_inference(probe.health(protocol), infer, protocol))


@pytest.mark.control("TRITON-METRICS-001")
def test_metrics_not_exposed(deployment, triton, verdict):
    missing = _needs(deployment, "metrics")
    if missing:
        return verdict(missing)
    probe = triton(deployment)
    outcome = judge.metrics_exposure(
        probe.endpoint_get("metrics", "/metrics"), probe.health("http")[0], allowed="metrics" in deployment.exposure
    )
    verdict(outcome, subject=deployment.endpoint("metrics").url)


@pytest.mark.control("TRITON-FRONTENDS-001")
@pytest.mark.parametrize("frontend", ["sagemaker", "vertex"])
def test_cloud_frontends_off(deployment, triton, frontend, verdict):
    missing = _needs(deployment, frontend)
    if missing:
        return verdict(missing)
    probe = triton(deployment)
    path = "/ping" if frontend == "sagemaker" else "/v1/models"
    verdict(judge.frontend_off(frontend, probe.endpoint_get(frontend, path), probe.health("http")[0]), subject=deployment.endpoint(frontend).url)


@pytest.mark.control("TRITON-CVE-001")
def test_no_reachable_known_vulnerability(deployment, triton, verdict):
    probe = triton(deployment)
    verdict(judge.known_vulnerabilities(probe.server_metadata(), judge.features_open(probe.feature_observations()), version_only=False), subject=deployment.endpoint("http").url)


@pytest.mark.control("TRITON-CVE-002")
def test_no_version_only_vulnerability(deployment, triton, verdict):
    probe = triton(deployment)
    verdict(judge.known_vulnerabilities(probe.server_metadata(), {}, version_only=True), subject=deployment.endpoint("http").url)
