"""Triton API (family triton-api): thin tests — parametrize, probe, judge, verdict.

Live controls ask the server itself, over every protocol the deployment declares; TRITON-SPEC-*
read the same concerns from the pod's tritonserver flags, so they are caught even when the endpoint
is unreachable from the probe position. Every probe is non-destructive
(nimwarden/families/triton_api/probe.py).
"""

from __future__ import annotations

import pytest

from nimwarden.families.triton_api import cves, exposure, judge, spec_judge
from nimwarden.families.triton_api.probe import TritonProbe
from nimwarden.k8s import source as k8s

BOTH = pytest.mark.parametrize("protocol", ["http", "grpc"])
live = pytest.mark.kinds("triton")


@live
@pytest.mark.control("TRITON-MODELCTL-001")
@BOTH
def test_model_repository_refuses_unauthenticated(deployment, probes, protocol, verdict):
    verdict(judge.category_restricted("model-repository", probes(TritonProbe, deployment).category("model-repository", protocol)))


@live
@pytest.mark.control("TRITON-DYNLOAD-001")
@BOTH
def test_dynamic_model_loading_disabled(deployment, probes, protocol, verdict):
    verdict(judge.dynamic_loading_disabled(probes(TritonProbe, deployment).model_load(protocol)))


@live
@pytest.mark.control("TRITON-MODELCONFIG-001")
@BOTH
def test_model_config_restricted(deployment, probes, protocol, verdict):
    verdict(judge.category_restricted("model-config", probes(TritonProbe, deployment).category("model-config", protocol)))


@live
@pytest.mark.control("TRITON-CONFIGSECRET-001")
@BOTH
def test_model_configuration_discloses_no_secret(deployment, probes, protocol, verdict):
    verdict(judge.model_config_secrets(probes(TritonProbe, deployment).model_documents(protocol)))


@live
@pytest.mark.control("TRITON-SHM-001")
@BOTH
def test_shared_memory_restricted(deployment, probes, protocol, verdict):
    verdict(judge.category_restricted("shared-memory", probes(TritonProbe, deployment).category("shared-memory", protocol)))


@live
@pytest.mark.control("TRITON-STATS-001")
@BOTH
def test_statistics_restricted(deployment, probes, protocol, verdict):
    verdict(judge.category_restricted("statistics", probes(TritonProbe, deployment).category("statistics", protocol)))


@live
@pytest.mark.control("TRITON-TRACE-001")
@BOTH
def test_trace_settings_restricted(deployment, probes, protocol, verdict):
    verdict(judge.category_restricted("trace", probes(TritonProbe, deployment).category("trace", protocol)))


@live
@pytest.mark.control("TRITON-LOGGING-001")
@BOTH
def test_logging_settings_restricted(deployment, probes, protocol, verdict):
    verdict(judge.category_restricted("logging", probes(TritonProbe, deployment).category("logging", protocol)))


@live
@pytest.mark.control("TRITON-TRACE-002")
def test_tracing_is_off(deployment, probes, verdict):
    verdict(judge.trace_off(probes(TritonProbe, deployment).trace_settings()), subject=deployment.endpoint("http").url)


@live
@pytest.mark.control("TRITON-AVAIL-001")
@BOTH
def test_health_and_inference_available(deployment, probes, protocol, verdict):
    health, infer = probes(TritonProbe, deployment).inference_check(protocol)
    verdict(judge.health_and_inference(health, infer, protocol))


@live
@pytest.mark.control("TRITON-METRICS-001")
def test_metrics_not_exposed(deployment, probes, verdict):
    probe = probes(TritonProbe, deployment)
    verdict(judge.metrics_exposure(probe.endpoint_get("metrics", "/metrics"), probe.health("http")[0],
                                   allowed="metrics" in deployment.exposure), subject=deployment.endpoint("metrics").url)


@live
@pytest.mark.control("TRITON-FRONTENDS-001")
@pytest.mark.parametrize("frontend", ["sagemaker", "vertex"])
def test_cloud_frontends_off(deployment, probes, frontend, verdict):
    probe = probes(TritonProbe, deployment)
    verdict(judge.frontend_off(frontend, probe.frontend(frontend), probe.health("http")[0]), subject=deployment.endpoint(frontend).url)


@live
@pytest.mark.control("TRITON-SMINVOKE-001")
def test_sagemaker_invoke_route_refuses_unauthenticated(deployment, probes, verdict):
    probe = probes(TritonProbe, deployment)
    verdict(judge.sagemaker_invoke_refused(probe.sagemaker_invoke(), probe.health("http")[0]), subject=deployment.endpoint("sagemaker").url)


@live
@pytest.mark.control("TRITON-CVE-001")
def test_no_reachable_known_vulnerability(deployment, probes, verdict):
    probe = probes(TritonProbe, deployment)
    verdict(cves.reachable(probe.server_metadata(), exposure.exposure_from(probe.exposure_observations())),
            subject=deployment.endpoint("http").url)


@live
@pytest.mark.control("TRITON-CVE-002")
def test_no_version_only_vulnerability(target, deployment, probes, verdict):
    verdict(cves.version_only(probes(TritonProbe, deployment).server_metadata(), image=cves.image_of(target, deployment)),
            subject=deployment.endpoint("http").url)


@pytest.mark.control("TRITON-SPEC-MODELCTL-001")
def test_spec_model_control(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.model_control))


@pytest.mark.control("TRITON-SPEC-RESTRICTED-001")
def test_spec_restricted_apis(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.restricted_apis))


@pytest.mark.control("TRITON-SPEC-METRICS-001")
def test_spec_metrics(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.metrics))


@pytest.mark.control("TRITON-SPEC-TRACE-001")
def test_spec_tracing(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.tracing))


@pytest.mark.control("TRITON-SPEC-CLOUD-001")
def test_spec_cloud_endpoints(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.cloud_endpoints))


@pytest.mark.control("TRITON-SPEC-EXITONERROR-001")
def test_spec_exit_on_error(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.exit_on_error))


@pytest.mark.control("TRITON-SPEC-READINESS-001")
def test_spec_strict_readiness(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.strict_readiness))


@pytest.mark.control("TRITON-SPEC-AUTOCOMPLETE-001")
def test_spec_auto_complete_config(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.auto_complete_config))


@pytest.mark.control("TRITON-SPEC-GRPCSSL-001")
def test_spec_grpc_tls(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.grpc_tls))


@pytest.mark.control("TRITON-SPEC-CLIENTSHM-001")
def test_spec_client_shared_memory(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.client_shared_memory))


@pytest.mark.control("TRITON-SPEC-BOUNDS-001")
def test_spec_request_bounds(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.request_bounds))


@pytest.mark.control("TRITON-SPEC-OPENAI-001")
def test_spec_openai_frontend(target, deployment, verdict):
    verdict(k8s.judge_workloads(target, deployment, spec_judge.openai_frontend))
