"""Triton flags judged from pod specs (family triton-api): the API suite's concerns read from the
container's command/args, so they are caught even when the endpoint is unreachable from the probe."""

from __future__ import annotations

import pytest

from nimwarden.judges import k8s_triton_flags as judge
from nimwarden.outcome import Outcome
from nimwarden.probes import k8s


def _judge(target, deployment, verdict, fn):
    w = k8s.for_deployment(target, deployment)
    if isinstance(w, Outcome):
        return verdict(w)
    verdict(fn(w.templates), subject=w.subject)


@pytest.mark.control("TRITON-SPEC-MODELCTL-001")
def test_spec_model_control(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.model_control)


@pytest.mark.control("TRITON-SPEC-RESTRICTED-001")
def test_spec_restricted_apis(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.restricted_apis)


@pytest.mark.control("TRITON-SPEC-METRICS-001")
def test_spec_metrics(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.metrics)


@pytest.mark.control("TRITON-SPEC-TRACE-001")
def test_spec_tracing(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.tracing)


@pytest.mark.control("TRITON-SPEC-CLOUD-001")
def test_spec_cloud_endpoints(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.cloud_endpoints)


@pytest.mark.control("TRITON-SPEC-EXITONERROR-001")
def test_spec_exit_on_error(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.exit_on_error)


@pytest.mark.control("TRITON-SPEC-READINESS-001")
def test_spec_strict_readiness(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.strict_readiness)


@pytest.mark.control("TRITON-SPEC-AUTOCOMPLETE-001")
def test_spec_auto_complete_config(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.auto_complete_config)


@pytest.mark.control("TRITON-SPEC-GRPCSSL-001")
def test_spec_grpc_tls(target, deployment, verdict):
    _judge(target, deployment, verdict, judge.grpc_tls)
