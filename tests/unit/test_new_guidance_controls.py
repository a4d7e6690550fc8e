"""Controls from NVIDIA's guidance newer than the lab's 2.51.0 server, judged from pod specs (labelled as
such in their catalog entries), and the live CORS and SageMaker-invoke judges: a good case, a bad case
and a broken-probe case each."""

from __future__ import annotations

import pytest

from nimwarden.families.nim_api import judge as nim_judge
from nimwarden.families.nim_api import spec_judge as nim_spec
from nimwarden.families.nim_api.probe import FOREIGN_ORIGIN, CorsObservation
from nimwarden.families.triton_api import judge as triton_judge
from nimwarden.families.triton_api import spec_judge as flags
from nimwarden.k8s import pod_templates
from nimwarden.k8s.model import ClusterState, make_object
from nimwarden.net.http import HttpResponse
from nimwarden.outcome import Attempt, Status


def deployment(image: str, args: list[str] | None = None, env: list[dict] | None = None, command: list[str] | None = None):
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "namespace": "ns"},
            "spec": {"template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [
                {"name": "c", "image": image, "command": command or ["tritonserver"], "args": args or [], "env": env or []}]}}}}
    state = ClusterState("test", (make_object(body, "test"),))
    return pod_templates(state)


def test_client_shm_by_server_version():
    # 2.68.0+ (26.04): off unless --allow-client-shm
    assert flags.client_shared_memory(deployment("nvcr.io/nvidia/tritonserver:26.04-py3")).status is Status.PASS
    bad = flags.client_shared_memory(deployment("nvcr.io/nvidia/tritonserver:26.04-py3", ["--allow-client-shm=true"]))
    assert bad.status is Status.FAIL and "--allow-client-shm" in bad.reason
    # before 2.68.0 (24.01 = 2.42.0): on by default; the shared-memory API must be restricted on both protocols
    old = flags.client_shared_memory(deployment("nvcr.io/nvidia/tritonserver:24.01-py3"))
    assert old.status is Status.FAIL and "2.42.0" in old.reason
    restricted = ["--http-restricted-api=shared-memory:k=v", "--grpc-restricted-protocol=shared-memory:k=v"]
    assert flags.client_shared_memory(deployment("nvcr.io/nvidia/tritonserver:24.01-py3", restricted)).status is Status.PASS
    # an image tag that names no release: the version is unknown, and the finding says so
    unknown = flags.client_shared_memory(deployment("registry.local/triton:latest"))
    assert unknown.status is Status.FAIL and "unknown" in unknown.reason


def test_request_bounds_by_server_version():
    assert flags.request_bounds(deployment("nvcr.io/nvidia/tritonserver:25.10-py3")).status is Status.PASS  # 2.62: 64 MB default
    old = flags.request_bounds(deployment("nvcr.io/nvidia/tritonserver:24.01-py3"))
    assert old.status is Status.FAIL and "2.59.0" in old.reason
    huge = flags.request_bounds(deployment("nvcr.io/nvidia/tritonserver:25.10-py3", [f"--http-max-input-size={1 << 40}"]))
    assert huge.status is Status.FAIL
    ok = flags.request_bounds(deployment("nvcr.io/nvidia/tritonserver:24.01-py3", ["--http-max-input-size=1048576"]))
    assert ok.status is Status.PASS and "grpc_max_response_pool_size" in ok.evidence


def test_openai_frontend_restricted():
    cmd = ["python3", "/opt/tritonserver/python/openai/openai_frontend/main.py"]
    bad = flags.openai_frontend(deployment("nvcr.io/nvidia/tritonserver:25.10-py3", ["--model-repository=/m"], command=cmd))
    assert bad.status is Status.FAIL and "--openai-restricted-api" in bad.reason
    good = flags.openai_frontend(deployment("nvcr.io/nvidia/tritonserver:25.10-py3",
                                            ["--model-repository=/m", "--openai-restricted-api=model-repository:k=v"], command=cmd))
    assert good.status is Status.PASS
    assert flags.openai_frontend(deployment("nvcr.io/nvidia/tritonserver:25.10-py3")).status is Status.NOT_APPLICABLE


NIM = "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.3.3"


def test_nim_ssl_cors_queue_from_env():
    none = deployment(NIM, command=["/opt/nim/start-server.sh"])
    assert nim_spec.ssl_mode(none).status is Status.FAIL
    assert nim_spec.cors_origins(none).status is Status.PASS
    assert nim_spec.queue_bound(none).status is Status.FAIL
    good = deployment(NIM, command=["/opt/nim/start-server.sh"], env=[
        {"name": "NIM_SSL_MODE", "value": "MTLS"}, {"name": "NIM_CORS_ALLOW_ORIGINS", "value": "https://app.example.com"},
        {"name": "NIM_SERVER_MAX_QUEUE_SIZE", "value": "256"}])
    assert {nim_spec.ssl_mode(good).status, nim_spec.cors_origins(good).status, nim_spec.queue_bound(good).status} == {Status.PASS}
    star = deployment(NIM, command=["/opt/nim/start-server.sh"], env=[{"name": "NIM_CORS_ALLOW_ORIGINS", "value": "*"}])
    assert nim_spec.cors_origins(star).status is Status.FAIL
    hidden = deployment(NIM, command=["/opt/nim/start-server.sh"], env=[{"name": "NIM_SSL_MODE", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}])
    out = nim_spec.ssl_mode(hidden)
    assert out.status is Status.FAIL and "cannot be verified from manifests" in out.reason and out.severity == "low"
    assert nim_spec.ssl_mode(deployment("nvcr.io/nvidia/tritonserver:25.10-py3")).status is Status.NOT_APPLICABLE


def cors(allow_origin, credentials=False):
    return Attempt("nim.cors", "OPTIONS", CorsObservation("http://127.0.0.1:9", "/v1/chat/completions", 204, allow_origin, credentials, None), None)


def test_cors_preflight_judge():
    assert nim_judge.judge_cors([cors(None)]).status is Status.PASS
    assert nim_judge.judge_cors([cors(FOREIGN_ORIGIN, True)]).status is Status.FAIL
    assert nim_judge.judge_cors([cors(FOREIGN_ORIGIN)]).status is Status.FAIL
    assert nim_judge.judge_cors([cors("*", True)]).status is Status.FAIL
    star = nim_judge.judge_cors([cors("*")])
    assert star.status is Status.PASS and "without credentials" in star.reason
    assert nim_judge.judge_cors([Attempt("nim.cors", "OPTIONS", None, "connect timeout")]).status is Status.ERROR
    assert nim_judge.judge_cors([]).status is Status.ERROR
    # a preflight a server error answered, or a URL that does not answer as a NIM, cannot be judged
    broken = Attempt("nim.cors", "OPTIONS", CorsObservation("http://127.0.0.1:9", "/v1/chat/completions", 502, None, False, None), None)
    assert nim_judge.judge_cors([broken]).status is Status.ERROR
    not_nim = Attempt("nim.http", "12 paths", None, "connection reset by peer")
    assert nim_judge.judge_cors([cors(None)], [not_nim]).status is Status.ERROR


def http(status):
    return Attempt("triton.sagemaker", "POST /models/x/invoke", HttpResponse(status, "", {}, b"{}"), None)


ALIVE = Attempt("triton.http", "GET /v2/health/live", HttpResponse(200, "", {}, b""), None)


@pytest.mark.parametrize("probe, anchor, status", [
    (http(403), ALIVE, Status.PASS),
    (Attempt("triton.sagemaker", "POST", None, "connection refused"), ALIVE, Status.PASS),
    (http(404), ALIVE, Status.FAIL),
    (http(400), ALIVE, Status.FAIL),
    (http(503), ALIVE, Status.ERROR),
    (Attempt("triton.sagemaker", "POST", None, "connection refused"), Attempt("triton.http", "GET", None, "connection refused"), Status.ERROR),
    (Attempt("triton.sagemaker", "POST", None, "read timeout"), ALIVE, Status.ERROR),
])
def test_sagemaker_invoke_judge(probe, anchor, status):
    assert triton_judge.sagemaker_invoke_refused(probe, anchor).status is status
