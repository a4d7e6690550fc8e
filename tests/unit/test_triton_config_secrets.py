"""TRITON-CONFIGSECRET: secret-looking values in model configurations and metadata, judged by who can
read them; every value found is registered with the redactor before anything is recorded.

The documents below have the shape tritonserver 2.51.0 gave the lab (HTTP JSON; the gRPC
ModelConfig reply through MessageToDict has the same shape); tests/integration/test_triton_suite.py
and test_triton_variants.py check the same probe and judge against live servers.
"""

from __future__ import annotations

import json

import pytest

from nimwarden.families.triton_api import judge
from nimwarden.families.triton_api import model_config as mc
from nimwarden.outcome import Attempt, Status
from nimwarden.redact import redact

AWS = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example secret key
CONFIG = {
    "name": "llm", "backend": "python", "max_batch_size": 0,
    "parameters": {
        "compute_ms": {"string_value": "0"},
        "max_tokens": {"string_value": "512"},
        "tokenizer_dir": {"string_value": "/models/llm/tokenizer"},
        "AWS_SECRET_ACCESS_KEY": {"string_value": AWS},
        "hub": {"string_value": "hf_abcdefghijklmnopqrstuv"},
        "db_password_file": {"string_value": "/run/secrets/db"},
        "api_token": {"string_value": "${API_TOKEN}"},
        "endpoint": {"string_value": "https://s3.example.com/bucket"},
    },
    "model_repository_agents": {"agents": [{"name": "checksum", "parameters": {"authToken": {"string_value": "tok-9f8e7d6c5b4a"}}}]},
}


@pytest.mark.parametrize("name, secret", [
    ("AWS_SECRET_ACCESS_KEY", True), ("awsSecretAccessKey", True), ("hf_token", True), ("db_password", True),
    ("azure_storage_account_key", True), ("client_secret", True), ("apiKey", True), ("gcs_credentials", True),
    ("max_tokens", False), ("tokenizer_dir", False), ("skip_special_tokens", False), ("compute_ms", False), ("keyword", False),
])
def test_secret_names_are_whole_words(name, secret):
    assert mc.secret_name(name) is secret


def test_findings_name_where_and_why_and_never_the_value():
    found = {f.where: f for f in mc.find_secrets(CONFIG)}
    assert set(found) == {"parameters.AWS_SECRET_ACCESS_KEY", "parameters.hub", "model_repository_agents.agents[0].parameters.authToken"}
    assert "secret-looking name" in found["parameters.AWS_SECRET_ACCESS_KEY"].why
    assert "Hugging Face" in found["parameters.hub"].why
    text = json.dumps([f.as_dict() for f in found.values()])
    assert AWS not in text and "hf_abcdefghijklmnopqrstuv" not in text
    # registered with the redactor: wherever the value appears later, it is fingerprinted
    assert AWS not in redact(f"leaked {AWS} and tok-9f8e7d6c5b4a") and "[sha256:" in redact(f"leaked {AWS}")


def _docs(*reads, models=("llm",), credential=None, index="read (anonymous): 1 model(s)"):
    return Attempt("triton.http", "model configuration and metadata over http",
                   mc.ModelDocuments("http", tuple(models), "the profile", index, credential, tuple(reads)), None)


def _read(access, findings=(), document="config", status="200"):
    return mc.DocumentRead("llm", document, f"GET /v2/models/llm/{document}", access, status, ("p",), tuple(findings))


SECRET = (mc.SecretFinding("parameters.AWS_SECRET_ACCESS_KEY", "secret-looking name", "wJ…EY[sha256:00000000]"),)


def test_readable_without_credentials_is_critical():
    out = judge.model_config_secrets(_docs(_read(mc.ANONYMOUS, SECRET), _read(mc.ANONYMOUS, document="metadata")))
    assert out.status is Status.FAIL and out.severity == "critical" and "without credentials" in out.reason
    assert "parameters.AWS_SECRET_ACCESS_KEY" in out.reason


def test_readable_only_with_the_restricted_key_is_high():
    out = judge.model_config_secrets(_docs(_read(mc.WITH_KEY, SECRET), credential="env:TRITON_ADMIN_KEY"))
    assert out.status is Status.FAIL and out.severity == "high" and "restricted-API key" in out.reason


def test_clean_documents_pass():
    out = judge.model_config_secrets(_docs(_read(mc.WITH_KEY), _read(mc.ANONYMOUS, document="metadata"), credential="file:k"))
    assert out.status is Status.PASS and "no secret-looking value" in out.reason


def test_refused_without_a_key_passes_and_says_what_was_not_read():
    out = judge.model_config_secrets(_docs(_read(mc.REFUSED, status="403")))
    assert out.status is Status.PASS and "was not read" in out.reason


@pytest.mark.parametrize("reads, credential, words", [
    ((_read(mc.REFUSED, status="403"),), "file:k", "was refused"),  # the key did not open it
    ((_read(mc.UNKNOWN, status="502"),), None, "cannot read"),  # a proxy page: neither document nor refusal
    ((_read(mc.ABSENT, status="400"),), None, "cannot read"),  # a declared model that is not there
])
def test_documents_that_could_not_be_read_are_errors(reads, credential, words):
    out = judge.model_config_secrets(_docs(*reads, credential=credential))
    assert out.status is Status.ERROR and words in out.reason


def test_no_model_known_is_an_error_and_an_empty_repository_not_applicable():
    assert judge.model_config_secrets(_docs(models=(), index="refused (403)")).status is Status.ERROR
    assert judge.model_config_secrets(_docs(models=(), index="read (anonymous): 0 model(s)")).status is Status.NOT_APPLICABLE


def test_broken_probe_is_an_error():
    broken = Attempt("triton.http", "model configuration and metadata over http", None, "connection refused (nothing listening)")
    out = judge.model_config_secrets(broken)
    assert out.status is Status.ERROR and "connection refused" in out.reason
