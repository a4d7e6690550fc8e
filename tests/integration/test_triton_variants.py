"""Configurations the two lab deployments do not cover, on a real tritonserver each.

- model-control-mode none with nothing restricted: dynamic loading is off even though the
  repository API is open (TRITON-DYNLOAD-001 passes, TRITON-MODELCTL-001 fails);
- inference restricted by mistake: TRITON-AVAIL-001 fails;
- a credential in a model parameter with model-config restricted: only holders of the
  restricted-API key read it, so TRITON-CONFIGSECRET-001 fails as high (not critical).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nimwarden import lab
from nimwarden.families.triton_api import judge
from nimwarden.families.triton_api.inputs import synthetic_inputs
from nimwarden.families.triton_api.probe import TritonProbe
from nimwarden.lab import triton as runtime
from nimwarden.target import load_target

pytestmark = pytest.mark.lab
VARIANT_PASSWORD = "variant-db-p4ssw0rd-7c1e"  # fake, for this test server only


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    """A tritonserver in model-control-mode none with only inference and model-config restricted, and a
    (fake) database password in its model's parameters."""
    directory = tmp_path_factory.mktemp("variant")
    rt = runtime.find_runtime()
    backends = runtime.prepare_backends(rt, directory / "backends")
    repo = runtime.write_model_repository(directory, 0, {"db_password": VARIANT_PASSWORD})
    ports = {p: runtime.free_port() for p in ("http", "grpc", "metrics")}
    args = [
        f"--model-repository={repo}", f"--backend-directory={backends}",
        f"--http-port={ports['http']}", f"--grpc-port={ports['grpc']}", f"--metrics-port={ports['metrics']}",
        "--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--allow-metrics=false",
        "--model-control-mode=none",
        "--http-restricted-api=inference,model-config:infer-key=variant-secret",
        "--grpc-restricted-protocol=inference,model-config:infer-key=variant-secret",
    ]
    log = directory / "tritonserver.log"
    proc = runtime.launch(rt, args, log)
    try:
        runtime.wait_ready(proc, f"127.0.0.1:{ports['http']}", log)
        (directory / "infer-key").write_text("variant-secret\n")
        profile = {
            "name": "variant", "scope": ["127.0.0.1/32"],
            "deployments": [{
                "name": "variant", "kind": "triton", "expect": "noncompliant", "models": ["add"],
                "endpoints": {"http": f"http://127.0.0.1:{ports['http']}", "grpc": f"grpc://127.0.0.1:{ports['grpc']}"},
                "credentials": {"restricted_api": {"header": "infer-key", "file": "infer-key"}},
            }],
        }
        path = Path(directory) / "variant.yaml"
        path.write_text(yaml.safe_dump(profile))
        target = load_target(path)
        probe = TritonProbe(target, target.deployments[0])
        yield probe
        probe.close()
    finally:
        runtime.stop_pid(proc.pid, runtime.process_start_time(proc.pid))
        lab.wait_gone([proc.pid])


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_mode_none_disables_loading_but_leaves_the_repository_api_open(variant, protocol):
    assert judge.dynamic_loading_disabled(variant.model_load(protocol)).status.value == "pass"
    assert judge.category_restricted("model-repository", variant.category("model-repository", protocol)).status.value == "fail"


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_restricted_inference_fails_availability(variant, protocol):
    spec = synthetic_inputs(variant.model_metadata("add"))
    assert spec.completed, spec.error
    outcome = judge.health_and_inference(variant.health(protocol), variant.infer("add", spec.observation, protocol), protocol)
    assert outcome.status.value == "fail", outcome
    assert "variant-secret" not in str(outcome.evidence)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_secret_readable_only_with_the_restricted_key_is_high(variant, protocol):
    outcome = judge.model_config_secrets(variant.model_documents(protocol))
    assert outcome.status.value == "fail" and outcome.severity == "high", outcome
    config = next(r for r in outcome.evidence["reads"] if r["document"] == "config")
    assert config["read"] == "with the restricted-API key" and config["secrets"][0]["where"] == "parameters.db_password"
    assert VARIANT_PASSWORD not in str(outcome.evidence) and VARIANT_PASSWORD not in outcome.reason
