"""Triton's gRPC endpoint with --grpc-use-ssl(-mutual), certificates from the lab PKI:
the hardened flags pass the TLS controls, plaintext gRPC fails the plaintext control."""

from __future__ import annotations

import pytest

from nimwarden.families.tls import judge as j
from nimwarden.families.tls import probe as tls
from nimwarden.lab import pki
from nimwarden.net import scope
from nimwarden.outcome import Status

triton = pytest.importorskip("nimwarden.lab.triton")
pytest.importorskip("pytriton", reason="the nvidia-pytriton wheel (nimwarden[lab]) is not installed")
pytestmark = pytest.mark.slow

GUARD = scope.guard_for(["127.0.0.0/8"])


def grpc_tls_args(certs: dict, deployment: str, mutual: bool) -> list[str]:
    """The flags the lab passes to a hardened tritonserver (see the report to the lead)."""
    server = certs["servers"][deployment]
    args = ["--grpc-use-ssl=true", f"--grpc-server-cert={server['cert']}", f"--grpc-server-key={server['key']}",
            f"--grpc-root-cert={certs['ca']}"]
    return args + (["--grpc-use-ssl-mutual=true"] if mutual else [])


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("triton-tls")
    certs = pki.lab_pki(root / "pki", {"grpc": ["127.0.0.1", "localhost"]})
    runtime = triton.find_runtime()
    backends = triton.prepare_backends(runtime, root / "backends")
    repo = triton.write_model_repository(root, 0)
    procs, out = [], {}
    try:
        for name, extra in (("mutual", grpc_tls_args(certs, "grpc", True)), ("plain", [])):
            http, grpc, metrics = (triton.free_port() for _ in range(3))
            args = [f"--model-repository={repo}", f"--backend-directory={backends}", f"--http-port={http}",
                    f"--grpc-port={grpc}", f"--metrics-port={metrics}", "--http-address=127.0.0.1",
                    "--grpc-address=127.0.0.1", "--allow-metrics=false", *extra]
            log = root / f"{name}.log"
            proc = triton.launch(runtime, args, log, cwd=root)
            procs.append(proc)
            triton.wait_ready(proc, f"127.0.0.1:{http}", log)
            out[name] = grpc
        yield certs, out
    finally:
        for p in procs:
            triton.stop_pid(p.pid, triton.process_start_time(p.pid), grace_s=5)


def test_mutual_tls_grpc_passes_every_tls_control(servers):
    certs, grpc = servers
    client = tls.ClientCredentials(*(pki.Path(certs["clients"]["grpc"][k]) for k in ("cert", "key")))
    a = tls.probe_tls("127.0.0.1", grpc["mutual"], guard=GUARD, ca_file=certs["ca"], client=client, cached=False)
    assert a.completed, a.error
    policy = j.TlsPolicy(require_mutual=True)
    for judge in (j.judge_protocols, j.judge_ciphers, j.judge_forward_secrecy, j.judge_chain, j.judge_hostname,
                  j.judge_expiry, j.judge_key_size, j.judge_mutual):
        out = judge(a, policy)
        assert out.status is Status.PASS, (judge.__name__, out.reason)


def test_mutual_tls_grpc_serves_inference_to_a_client_with_a_certificate(servers):
    import numpy as np
    import tritonclient.grpc as grpcclient

    certs, grpc = servers
    read = lambda p: open(p, "rb").read()  # noqa: E731
    client = grpcclient.InferenceServerClient(
        f"localhost:{grpc['mutual']}", ssl=True, root_certificates=certs["ca"],
        private_key=certs["clients"]["grpc"]["key"], certificate_chain=certs["clients"]["grpc"]["cert"])
    assert read(certs["ca"])  # the CA file the flags point at is the one the client trusts
    inputs = [grpcclient.InferInput("INPUT0", [4], "FP32"), grpcclient.InferInput("INPUT1", [4], "FP32")]
    inputs[0].set_data_from_numpy(np.arange(4, dtype=np.float32))
    inputs[1].set_data_from_numpy(np.ones(4, dtype=np.float32))
    result = client.infer("add", inputs, client_timeout=10)
    assert result.as_numpy("OUTPUT0").tolist() == [1.0, 2.0, 3.0, 4.0]


def test_without_client_certificate_the_scan_is_an_error_not_a_pass(servers):
    certs, grpc = servers
    a = tls.probe_tls("127.0.0.1", grpc["mutual"], guard=GUARD, ca_file=certs["ca"], timeout_s=3, cached=False)
    assert not a.completed
    assert j.judge_protocols(a, j.TlsPolicy()).status is Status.ERROR


def test_plaintext_grpc_fails_where_tls_is_expected(servers):
    _, grpc = servers
    a = tls.probe_plaintext("127.0.0.1", grpc["plain"], guard=GUARD, timeout_s=3)
    out = j.judge_plaintext(a, "grpc", expect_tls=True)
    assert out.status is Status.FAIL, out.reason
