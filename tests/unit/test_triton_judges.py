"""Triton judges: the classification is three-way and only a refusal passes; odd answers are errors.

The answers below are the exact texts tritonserver 2.51.0 gave the lab (see docs/facts.md and
tests/integration/test_triton_suite.py, which checks the same judges against live servers).
"""

from __future__ import annotations

import pytest

from nimwarden.families.triton_api import judge
from nimwarden.families.triton_api.probe import ApiAnswer
from nimwarden.net.http import HttpResponse
from nimwarden.outcome import Attempt

RESTRICTED_HTTP = ApiAnswer("http", "GET /v2/logging", "403", '{"error":"This API is restricted, expecting header \'admin-key\'"}')
RESTRICTED_GRPC = ApiAnswer("grpc", "grpc LogSettings", "UNAVAILABLE", "This protocol is restricted, expecting header 'triton-grpc-protocol-admin-key'")
OPEN_WRONG_METHOD = ApiAnswer("http", "GET /v2/repository/index", "405", '{"error":"Method Not Allowed"}')
OPEN_LOAD = ApiAnswer("http", "POST …/load", "500", "{\"error\":\"failed to load 'nimwarden-probe-x', failed to poll from model repository\"}")
OPEN_GRPC_LOAD = ApiAnswer("grpc", "grpc RepositoryModelLoad", "INTERNAL", "failed to load 'nimwarden-probe-x', failed to poll from model repository")
MODE_NONE = ApiAnswer("http", "POST …/load", "503", '{"error":"explicit model load / unload is not allowed if polling is enabled"}')
PROXY_502 = ApiAnswer("http", "GET /v2/logging", "502", "<html>Bad Gateway</html>")


def ok(answer):
    return Attempt("test", answer.call, answer, None)


@pytest.mark.parametrize(
    "answer, kind",
    [(RESTRICTED_HTTP, "restricted"), (RESTRICTED_GRPC, "restricted"), (OPEN_WRONG_METHOD, "open"), (OPEN_LOAD, "open"),
     (OPEN_GRPC_LOAD, "open"), (MODE_NONE, "open"), (PROXY_502, "unknown"), (ApiAnswer("grpc", "x", "OK", ""), "open")],
)
def test_classify(answer, kind):
    assert judge.classify(answer) == kind


def test_category_needs_every_call_refused():
    assert judge.category_restricted("logging", [ok(RESTRICTED_HTTP)]).status.value == "pass"
    assert judge.category_restricted("model-repository", [ok(RESTRICTED_HTTP), ok(OPEN_LOAD)]).status.value == "fail"
    assert judge.category_restricted("logging", [ok(PROXY_502)]).status.value == "error"
    assert judge.category_restricted("logging", [Attempt("t", "GET", None, "connection refused")]).status.value == "error"
    assert judge.category_restricted("logging", []).status.value == "error"


def test_dynamic_loading():
    assert judge.dynamic_loading_disabled(ok(RESTRICTED_HTTP)).status.value == "pass"
    assert judge.dynamic_loading_disabled(ok(MODE_NONE)).status.value == "pass"
    assert judge.dynamic_loading_disabled(ok(OPEN_LOAD)).status.value == "fail"
    assert judge.dynamic_loading_disabled(ok(PROXY_502)).status.value == "error"


def http(status, body):
    return Attempt("t", "GET", HttpResponse(status, "", {}, body.encode()), None)


def test_trace_off():
    assert judge.trace_off(http(200, '{"trace_level":["OFF"]}')).status.value == "pass"
    assert judge.trace_off(http(200, '{"trace_level":["TIMESTAMPS"]}')).status.value == "fail"
    assert judge.trace_off(http(403, "restricted")).status.value == "error"
    assert judge.trace_off(http(200, "not json")).status.value == "error"


METRICS = '# TYPE nv_inference_request_success counter\nnv_inference_request_success{model="llama",version="1"} 12\nnv_gpu_memory_total_bytes{gpu_uuid="GPU-1234"} 8.0e10\n'


def test_metrics_exposure_needs_a_live_anchor():
    refused = Attempt("t", "GET /metrics", None, "connection refused (nothing listening)")
    alive, dead = http(200, ""), Attempt("t", "GET", None, "connection refused (nothing listening)")
    assert judge.metrics_exposure(refused, alive, allowed=False).status.value == "pass"
    assert judge.metrics_exposure(refused, dead, allowed=False).status.value == "error"
    exposed = judge.metrics_exposure(http(200, METRICS), alive, allowed=False)
    assert exposed.status.value == "fail"
    assert exposed.evidence["disclosed"]["model_names"] == ["llama"] and exposed.evidence["disclosed"]["gpu_uuids"] == ["GPU-1234"]
    assert judge.metrics_exposure(http(200, METRICS), alive, allowed=True).status.value == "pass"
    assert judge.metrics_exposure(Attempt("t", "GET", None, "no answer within 5s"), alive, allowed=False).status.value == "error"
