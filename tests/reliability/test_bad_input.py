"""Bad input: any malformed target profile or waivers file is one `file: field: problem` line
and exit 2 — never a traceback, never a partial run.

Property tests (hypothesis) mutate a valid profile / waivers file at a random place (drop a
key, replace a value with one of another type, add an unknown key, break the YAML) and call
load_target / load_waivers in-process for volume; a few examples go through the CLI in a
subprocess, as a user meets them.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nimwarden.errors import ConfigError
from nimwarden.target import load_target
from nimwarden.waivers import load_waivers, parse_waivers
from tests.conftest import ROOT

VALID_PROFILE = {
    "name": "prop",
    "scope": ["127.0.0.0/8", "::1/128"],
    "probe_position": "external",
    "timeouts": {"connect_s": 1, "read_s": 2},
    "options": {"ports": {"tcp_ports": "8000-8002"}},  # a real section: the families' schema refuses unknown ones
    "deployments": [
        {"name": "one", "kind": "triton", "expect": "compliant",
         "endpoints": {"http": "http://127.0.0.1:8000", "grpc": "grpc://127.0.0.1:8001"},
         "exposure": ["http", "grpc"], "models": ["add"], "must_fail": [],
         "credentials": {"restricted_api": {"header": "admin-key", "env": "NIMWARDEN_PROP_KEY"}},
         "kubernetes": {"namespace": "ns", "selector": {"app": "one"}}, "options": {}},
        {"name": "two", "kind": "nim", "expect": "noncompliant", "endpoints": {"http": "https://127.0.0.2:443"}},
    ],
}
VALID_WAIVERS = {"waivers": [{"control": "TRITON-METRICS-001", "deployment": "one", "subject": "*", "owner": "a@b.c",
                              "reason": "accepted", "ticket": "T-1", "expires": "2030-01-01"}]}

ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=True), st.text(max_size=30),
                      st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
                      st.sampled_from(["http://", "grpc://h", "http://10.0.0.1:80", "http://a:b@127.0.0.1:1", "${lab.x.y}",
                                       "ftp://127.0.0.1:21", "http://127.0.0.1:99999", "300.1.1.1/8", "-1", "", "nim", "triton"]))


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw, base):
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "drop", "unknown"]))
        if action == "replace":
            parent[path[-1]] = draw(ANY_VALUE)
        elif action == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.one_of(st.text(min_size=1, max_size=8), st.integers(), st.booleans()))] = draw(ANY_VALUE)
    return doc


BROKEN_TEXT = st.one_of(st.text(max_size=200), st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
                        st.sampled_from(["name: [", "{", "- a\n- b", "a: b: c", "\t- x", "name: x\nscope: !!python/object:os.system x",
                                         "&a [*a]", "name: x\n" * 3]))


def _check_one_line(exc: ConfigError, path: Path) -> None:
    message = str(exc)
    assert "\n" not in message and message.startswith(str(path)), message
    assert "Traceback" not in message


def _load(loader, text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            loader(path)
        except ConfigError as exc:  # the only exception a user may see; anything else fails the property
            _check_one_line(exc, path)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(mutated(VALID_PROFILE))
def test_mutated_profile_is_valid_or_one_config_error(doc):
    _load(load_target, yaml.safe_dump(doc))


@SETTINGS
@given(BROKEN_TEXT)
def test_broken_profile_text_is_one_config_error(text):
    _load(load_target, text)


@SETTINGS
@given(mutated(VALID_WAIVERS))
def test_mutated_waivers_are_valid_or_one_config_error(doc):
    _load(lambda p: load_waivers(p, known_controls=["TRITON-METRICS-001"]), yaml.safe_dump(doc))


@SETTINGS
@given(BROKEN_TEXT)
def test_broken_waivers_text_is_one_config_error(text):
    _load(load_waivers, text)


def test_the_valid_inputs_load():
    """The bases the mutations start from are themselves valid (else every property is vacuous)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_text(yaml.safe_dump(VALID_PROFILE))
        assert len(load_target(path).deployments) == 2
    assert len(parse_waivers(VALID_WAIVERS, "w.yaml", ["TRITON-METRICS-001"])) == 1


# ----------------------------------------------------------------------------------- the CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    # VALID_PROFILE's credential names NIMWARDEN_PROP_KEY: audits and validate require it to resolve
    env = {**os.environ, "NIMWARDEN_PROP_KEY": "prop-test-key"}
    return subprocess.run([sys.executable, "-m", "nimwarden.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)


def _assert_one_line_exit_2(proc: subprocess.CompletedProcess, file: Path, field: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1000:], proc.stderr[-1000:])
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(lines) == 1 and str(file) in lines[0] and field in lines[0], proc.stderr


def test_cli_refuses_malformed_profiles_in_one_line(tmp_path):
    cases = {
        "timeouts.read_s": {**VALID_PROFILE, "timeouts": {"read_s": "soon"}},
        "deployments[0].kind": {**VALID_PROFILE, "deployments": [{**VALID_PROFILE["deployments"][0], "kind": "tensorrt"}]},
        "scope": {**VALID_PROFILE, "scope": "everything"},
        "options.tls.require": {**VALID_PROFILE, "options": {"tls": {"require": 5}}},  # a family's section (issue 25: was a traceback)
        "line 1": "name: [unclosed",
    }
    for field, doc in cases.items():
        path = tmp_path / f"{abs(hash(field))}.yaml"
        path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
        for command in (("validate", "--target", str(path)), ("audit", "--target", str(path), "--reports-dir", str(tmp_path / "r"))):
            _assert_one_line_exit_2(_cli(*command), path, field)
    assert not (tmp_path / "r").exists(), "a refused profile must not start a partial run"


def test_cli_refuses_a_malformed_waivers_file_before_running(tmp_path):
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(yaml.safe_dump({"waivers": [{**VALID_WAIVERS["waivers"][0], "expires": "someday"}]}))
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({**VALID_PROFILE, "waivers": str(waivers)}))
    proc = _cli("audit", "--target", str(profile), "--reports-dir", str(tmp_path / "r"), "suites/test_triton_api.py")
    _assert_one_line_exit_2(proc, waivers, "waivers[0].expires")
    assert not (tmp_path / "r").exists()


def test_endpoint_outside_scope_is_refused_at_load_time(tmp_path):
    """Scope, part one: a profile whose endpoint lies outside its own scope never runs (exit 2)."""
    doc = copy.deepcopy(VALID_PROFILE)
    doc["scope"] = ["127.0.0.1/32"]
    doc["deployments"][1]["endpoints"]["http"] = "https://127.0.0.2:443"
    path = tmp_path / "out.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = _cli("audit", "--target", str(path), "--reports-dir", str(tmp_path / "r"), "suites/test_triton_api.py")
    _assert_one_line_exit_2(proc, path, "deployments[1].endpoints.http")
    assert "outside" in proc.stderr and not (tmp_path / "r").exists()


def test_a_pytest_addopts_that_cannot_be_read_is_one_line_and_one_pytest_refuses_is_named(tmp_path):
    """PYTEST_ADDOPTS (a CI job's) is shell-quoted pytest options: an unclosed quote was an internal error (exit 70)."""
    profile = tmp_path / "p.yaml"
    profile.write_text((ROOT / "targets" / "helm-review.yaml").read_text().replace("paths: [rendered]",
                                                                                  f"paths: [{ROOT / 'targets' / 'rendered'}]"))
    run = ["audit", "--target", str(profile), "--reports-dir", str(tmp_path / "r")]
    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", *run], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTEST_ADDOPTS": "-k 'unclosed"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "bug" not in proc.stderr, proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.strip()]
    assert "PYTEST_ADDOPTS" in line and "No closing quotation" in line
    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", *run], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTEST_ADDOPTS": "--no-such-option"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("PYTEST_ADDOPTS in the environment: --no-such-option"), proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("args", "words"), [
    (("audit", "--kubeconfig", "/nonexistent", "--api-timeout", "nan"), "--api-timeout: 'nan': a timeout is a finite number of seconds above 0"),
    (("audit", "--kubeconfig", "/nonexistent", "--api-timeout", "-1"), "--api-timeout: '-1'"),
    (("snapshot", "--kubeconfig", "/nonexistent", "--out", "s.json", "--timeout", "0"), "--timeout: '0'"),
    (("cleanup", "--kubeconfig", "/nonexistent", "--timeout", "soon"), "--timeout: 'soon' is not a number"),
    (("lab", "status", "--compute-ms", "inf"), "--compute-ms: 'inf': must be a finite number, 0 or more"),
    (("catalog", "--family", "tsl"), "--family tsl: no such family; the families are gateway,"),
])
def test_a_number_or_a_name_out_of_range_is_one_line_exit_2(args, words):
    """A timeout of nan, 0 or -1 was taken as given (an API call with no time to answer, or none at all), and
    `catalog --family` with a typo listed nothing and exited 0."""
    proc = _cli(*args)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_a_repository_root_with_other_yaml_names_the_file_and_the_way_out(tmp_path):
    """`discover --manifests .` in a repository's root reads its CI workflow too: the line names that file and says
    that a folder is read whole, so the user points at the rendered manifests' folder instead."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text("name: ci\non: [push]\njobs: {t: {runs-on: ubuntu-latest}}\n")
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "nim-llm.yaml").write_text((ROOT / "targets" / "rendered" / "nim-llm.yaml").read_text())
    proc = _cli("discover", "--manifests", str(tmp_path), "--out", str(tmp_path / "found.yaml"))
    _assert_one_line_exit_2(proc, tmp_path / ".github" / "workflows" / "ci.yml", "has no kind")
    assert "a folder is read whole" in proc.stderr and "folders or files of rendered manifests only" in proc.stderr
    assert _cli("discover", "--manifests", str(tmp_path / "deploy"), "--out", str(tmp_path / "found.yaml")).returncode == 0
