"""Target profile validation: every mistake is one line naming the file and the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nimwarden.errors import ConfigError, OutOfScope
from nimwarden.families import load_profile
from nimwarden.target import load_target

ROOT = Path(__file__).resolve().parents[2]

GOOD = {
    "name": "staging",
    "scope": ["127.0.0.0/8"],
    "deployments": [
        {
            "name": "triton-a",
            "kind": "triton",
            "expect": "compliant",
            "endpoints": {"http": "http://127.0.0.1:8000", "grpc": "grpc://127.0.0.1:8001"},
            "credentials": {"restricted_api": {"header": "admin-key", "env": "TRITON_ADMIN_KEY"}},
        }
    ],
}


def write(tmp_path, data) -> Path:
    path = tmp_path / "target.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def mutate(change):
    import copy

    data = copy.deepcopy(GOOD)
    change(data)
    return data


def test_good_profile_builds_a_frozen_target(tmp_path):
    target = load_target(write(tmp_path, GOOD))
    dep = target.deployment("triton-a")
    assert dep.endpoint("grpc").port == 8001 and dep.endpoint("http").scheme == "http"
    assert dep.exposure == ("http",)
    with pytest.raises(AttributeError):
        target.name = "other"  # frozen


@pytest.mark.parametrize(
    "change, field, words",
    [
        (lambda d: d["deployments"][0].__setitem__("endpoinst", {}), "deployments[0].endpoinst", "did you mean 'endpoints'"),
        (lambda d: d.__setitem__("scopes", []), "scopes", "unknown key"),
        (lambda d: d["deployments"][0].__setitem__("kind", "vllm"), "deployments[0].kind", "must be one of triton, nim"),
        (lambda d: d["deployments"][0].pop("expect"), "deployments[0].expect", "required field missing"),
        (lambda d: d.__setitem__("scope", "127.0.0.1"), "scope", "must be a list"),
        (lambda d: d["deployments"][0]["endpoints"].__setitem__("http", "http://10.9.9.9:8000"), "deployments[0].endpoints.http", "outside the target's scope"),
        (lambda d: d["deployments"][0]["endpoints"].__setitem__("http", "ftp://127.0.0.1:21"), "deployments[0].endpoints.http", "scheme"),
        (lambda d: d["deployments"][0]["credentials"].__setitem__("restricted_api", {"header": "k", "value": "s3cr3t-v4lue"}), "deployments[0].credentials.restricted_api.value", "never allowed inline"),
        (lambda d: d["deployments"][0]["credentials"].__setitem__("ngc", "nvapi-abcdefghijklmnop"), "deployments[0].credentials.ngc", "never allowed inline"),
        (lambda d: d.__setitem__("options", {"gateway_token": "abcdef123456"}), "options.gateway_token", "never allowed inline"),
        (lambda d: d["deployments"][0]["endpoints"].__setitem__("http", "http://user:pw@127.0.0.1:80"), "deployments[0].endpoints.http", "password"),
        (lambda d: d["deployments"].append(dict(d["deployments"][0])), "deployments[1].name", "duplicate"),
        (lambda d: d.__setitem__("timeouts", {"connect_s": -1}), "timeouts.connect_s", "positive number"),
    ],
)
def test_mistakes_name_file_and_field(tmp_path, change, field, words):
    path = write(tmp_path, mutate(change))
    with pytest.raises(ConfigError) as info:
        load_target(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {field}: "), message
    assert words in message
    assert "\n" not in message
    assert "s3cr3t-v4lue" not in message and "abcdefghijklmnop" not in message


@pytest.mark.parametrize(
    "text, words",
    [("name: [unclosed", "not valid YAML"), ("- just\n- a list\n", "must be a mapping"), ("", "must be a mapping")],
)
def test_unparsable_profiles(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=words):
        load_target(path)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_target(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_target(tmp_path)  # a directory


def test_lab_reference_without_a_running_lab(tmp_path):
    data = mutate(lambda d: d.update(lab={"state_file": str(tmp_path / "nope.json")}))
    with pytest.raises(ConfigError, match="lab is not running"):
        load_target(write(tmp_path, data))


def test_scope_guard_refuses_before_connecting(tmp_path):
    target = load_target(write(tmp_path, GOOD))
    target.guard("127.0.0.5")
    with pytest.raises(OutOfScope):
        target.guard("192.0.2.10")
    with pytest.raises(OutOfScope):
        target.guard("name-that-does-not-resolve.invalid")


def test_credential_resolves_from_env_and_file(tmp_path, monkeypatch):
    secret_file = tmp_path / "key"
    secret_file.write_text("from-file\n")
    data = mutate(lambda d: d["deployments"][0]["credentials"].update(other={"header": "x", "file": str(secret_file)}))
    target = load_target(write(tmp_path, data))
    creds = target.deployment("triton-a").credentials
    monkeypatch.setenv("TRITON_ADMIN_KEY", "from-env")
    assert creds["restricted_api"].resolve() == "from-env"
    assert creds["other"].resolve() == "from-file"
    monkeypatch.delenv("TRITON_ADMIN_KEY")
    assert creds["restricted_api"].resolve() is None


@pytest.mark.parametrize(
    "argv, words",
    [
        (["audit", "--target", "{bad}"], "endpoinst: unknown key"),
        (["audit", "--target", "{secret}"], "never allowed inline"),
        (["validate", "--target", "{missing}"], "no such file"),
        (["lab", "sideways"], "invalid choice"),
        (["bogus"], "invalid choice"),
        (["catalog", "--frobnicate"], "unrecognized arguments"),
    ],
)
def test_cli_usage_errors_are_one_line_exit_2(tmp_path, argv, words):
    bad = write(tmp_path, mutate(lambda d: d["deployments"][0].__setitem__("endpoinst", {})))
    secret = tmp_path / "secret.yaml"
    secret.write_text(yaml.safe_dump(mutate(lambda d: d.__setitem__("options", {"hf_token": "hf_abcdefghijklmnopq"}))))
    argv = [a.format(bad=bad, secret=secret, missing=tmp_path / "missing.yaml") for a in argv]
    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert words in lines[0] and "Traceback" not in proc.stderr
    assert "hf_abcdefghijklmnopq" not in proc.stderr


# ----------------------------------------------------------------------------------- profiles that cannot work (issue 15)


@pytest.mark.parametrize("name, url, suggestion", [("http", "127.0.0.1:18000", "http://127.0.0.1:18000"),
                                                   ("http", "localhost:18000", "http://localhost:18000"),
                                                   ("grpc", "127.0.0.1:8001", "grpc://127.0.0.1:8001")])
def test_endpoint_without_a_scheme_is_refused_at_load_time(tmp_path, name, url, suggestion):
    """`http: 127.0.0.1:18000` used to load (as grpc://…, or a scheme-less path every probe refused)."""
    path = write(tmp_path, mutate(lambda d: d["deployments"][0]["endpoints"].__setitem__(name, url)))
    with pytest.raises(ConfigError) as info:
        load_target(path)
    message = str(info.value)
    assert message.startswith(f"{path}: deployments[0].endpoints.{name}: no scheme in ") and suggestion in message, message


def test_scope_of_names_is_shown_in_the_out_of_scope_error(tmp_path):
    data = mutate(lambda d: d.__setitem__("scope", ["localhost"]))
    with pytest.raises(ConfigError) as info:
        load_target(write(tmp_path, data))
    message = str(info.value)
    assert "outside the target's scope (localhost)" in message and "()" not in message, message
    data = mutate(lambda d: d.__setitem__("scope", ["10.0.0.0/8", "gpu-1.example"]))
    with pytest.raises(ConfigError, match=r"scope \(10\.0\.0\.0/8, gpu-1\.example\)"):
        load_target(write(tmp_path, data))


def _with_credential(spec):
    return mutate(lambda d: d["deployments"][0].__setitem__("credentials", {"restricted_api": {"header": "admin-key", **spec}}))


@pytest.mark.parametrize("spec, field, words", [
    ({"env": "NIMWARDEN_TEST_UNSET_KEY"}, "deployments[0].credentials.restricted_api.env", "environment variable NIMWARDEN_TEST_UNSET_KEY is not set"),
    ({"file": "absent-key"}, "deployments[0].credentials.restricted_api.file", "absent-key does not exist"),
    ({"file": "empty-key"}, "deployments[0].credentials.restricted_api.file", "empty-key is empty"),
])
def test_credential_that_does_not_resolve_is_a_configuration_error(tmp_path, monkeypatch, spec, field, words):
    monkeypatch.delenv("NIMWARDEN_TEST_UNSET_KEY", raising=False)
    (tmp_path / "empty-key").write_text("\n")
    path = write(tmp_path, _with_credential(spec))
    with pytest.raises(ConfigError) as info:
        load_target(path, resolve_credentials=True)
    message = str(info.value)
    assert message.startswith(f"{path}: {field}: ") and words in message and "\n" not in message, message
    assert load_target(path).deployments  # the profile's shape alone is fine (nimwarden validate --skip-credentials)


def test_credential_file_is_relative_to_the_profile_and_resolves(tmp_path, monkeypatch):
    (tmp_path / "key").write_text("k3y-from-file\n")
    target = load_target(write(tmp_path, _with_credential({"file": "key"})), resolve_credentials=True)
    assert target.deployments[0].credentials["restricted_api"].file == (tmp_path / "key").resolve()
    monkeypatch.setenv("NIMWARDEN_TEST_SET_KEY", "k3y-from-env")
    assert load_target(write(tmp_path, _with_credential({"env": "NIMWARDEN_TEST_SET_KEY"})), resolve_credentials=True)


def _cli(*args, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "nimwarden.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in {**os.environ, **(env or {})}.items() if k != "NIMWARDEN_TEST_UNSET_KEY"})


def test_cli_refuses_unresolvable_credentials_in_one_line(tmp_path):
    path = write(tmp_path, _with_credential({"env": "NIMWARDEN_TEST_UNSET_KEY"}))
    expected = f"nimwarden: {path}: deployments[0].credentials.restricted_api.env: environment variable NIMWARDEN_TEST_UNSET_KEY is not set (or is empty)"
    for command in (("validate", "--target", str(path)), ("audit", "--target", str(path), "--reports-dir", str(tmp_path / "r"))):
        proc = _cli(*command)
        assert proc.returncode == 2 and proc.stderr.strip() == expected, (proc.returncode, proc.stderr)
    assert not (tmp_path / "r").exists()
    skipped = _cli("validate", "--target", str(path), "--skip-credentials")
    assert skipped.returncode == 0 and "credential sources not checked" in skipped.stdout, skipped.stderr


def test_cli_refuses_a_scheme_less_endpoint_with_exit_2(tmp_path):
    path = write(tmp_path, mutate(lambda d: d["deployments"][0]["endpoints"].__setitem__("http", "127.0.0.1:18000")))
    proc = _cli("validate", "--target", str(path), "--skip-credentials")
    assert proc.returncode == 2 and proc.stderr.startswith(f"nimwarden: {path}: deployments[0].endpoints.http: no scheme"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_relative_paths_resolve_against_the_profiles_directory(tmp_path, monkeypatch):
    """README: every path in a profile is relative to the profile's own directory, not the working directory."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "key").write_text("k3y\n")
    data = _with_credential({"file": "key"})
    data["options"] = {"tls": {"ca_file": "pki/ca.pem"}}
    data["deployments"][0]["options"] = {"tls": {"ca_file": "../ca.pem", "client_cert": "/abs/c.pem", "require": ["gateway"]}}
    path = tmp_path / "sub" / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.chdir("/")
    # options.tls is the tls family's section: its schema resolves the paths (issue 25)
    target = load_profile(path, resolve_credentials=True)
    dep = target.deployments[0]
    assert dep.credentials["restricted_api"].file == tmp_path / "sub" / "key"
    assert target.options["tls"]["ca_file"] == str(tmp_path / "sub" / "pki" / "ca.pem")
    assert dep.options["tls"] == {"ca_file": str(tmp_path / "ca.pem"), "client_cert": "/abs/c.pem", "require": ["gateway"]}
