"""The profile's one declarative schema (issue 25): the published JSON Schema is the one the loader
uses, is up to date in the repository, accepts every example profile, and every type mistake reads
as one line `file: field.path: what was expected, what was found`."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest
import yaml

from nimwarden import cli
from nimwarden.errors import ConfigError
from nimwarden.families import load_profile, profile_json_schema, profile_sections, registry

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "nimwarden-profile.schema.json"
SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/nimwarden-profile.schema.json"
EXAMPLES = sorted(p for p in (ROOT / "targets").glob("*.yaml") if not p.name.endswith("-waivers.yaml"))


def test_the_committed_schema_is_what_nimwarden_schema_prints(capsys):
    assert cli.main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == profile_json_schema()
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == printed, (
        "schemas/nimwarden-profile.schema.json is stale: run `nimwarden schema > schemas/nimwarden-profile.schema.json`")
    jsonschema.Draft202012Validator.check_schema(printed)


@pytest.mark.parametrize("profile", EXAMPLES, ids=lambda p: p.name)
def test_every_example_profile_validates_against_the_schema_and_names_it_for_editors(profile):
    text = profile.read_text(encoding="utf-8")
    assert text.splitlines()[0] == SCHEMA_LINE, f"{profile.name}: first line should point YAML language servers at the schema"
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(yaml.safe_load(text))]
    assert not errors, errors


GOOD = {
    "name": "s", "scope": ["127.0.0.0/8"],
    "options": {"tls": {"require": ["gateway"]}, "ports": {"tcp_ports": "8000-8002"}},
    "kubernetes": {"source": "none", "options": {"secret_max_age_days": 30, "network_policy": {"api_ports": [8000, "9000/TCP"]}}},
    "deployments": [{"name": "a", "kind": "triton", "expect": "compliant", "endpoints": {"http": "http://127.0.0.1:8000"},
                     "options": {"performance": {"concurrency": 2}, "gateway": {"documented_burst": 5}, "host": {"pid": 7}}}],
}

# (where, value, the one line's field path, what it says): every row is a type mistake a hand makes.
MISTAKES = [
    ("options.tls.require", 5, "options.tls.require", "must be a list, got an integer (5)"),
    ("options.tls.require", None, "options.tls.require", "must be a list, got null"),
    ("options.tls.require", ["gatway"], "options.tls.require[0]", "must be one of http, grpc"),
    ("options.tls.expiry_warning_days", "30", "options.tls.expiry_warning_days", "must be a whole number, got a string ('30')"),
    ("options.tsl", {}, "options.tsl", "unknown key (did you mean 'tls'?)"),
    ("options.ports.tcp_ports", "1-99999", "options.ports.tcp_ports", "ports run from 1 to 65535"),
    ("options.ports.limits", {"timing": 9}, "options.ports.limits.timing", "must be at most 5, got 9"),
    ("kubernetes.options.secret_max_age_days", "soon", "kubernetes.options.secret_max_age_days", "must be a number, got a string"),
    ("kubernetes.options.honor_annotations", "yes", "kubernetes.options.honor_annotations", "must be true or false, got a string"),
    ("kubernetes.options.pss_version", "1.x", "kubernetes.options.pss_version", "must be 'latest' or 'v1.N'"),
    ("kubernetes.options.network_policy.api_ports", [0], "kubernetes.options.network_policy.api_ports[0]", "must be a port (1-65535)"),
    ("kubernetes.options.network_policy.probe", {"max_parallel": 2}, "kubernetes.options.network_policy.probe.image", "required field missing"),
    ("deployments.0.options.performance.concurrency", [1, "4"], "deployments[0].options.performance.concurrency[1]", "must be a whole number"),
    ("deployments.0.options.performance.tolerance", float("inf"), "deployments[0].options.performance.tolerance", "must be a finite number"),
    ("deployments.0.options.gateway.documented_burst", True, "deployments[0].options.gateway.documented_burst", "must be a whole number, got a boolean (true)"),
    ("deployments.0.options.host.pid", "my-server", "deployments[0].options.host.pid", "must be a whole number"),
    ("deployments.0.endpoints", ["http://127.0.0.1:8000"], "deployments[0].endpoints", "must be a mapping, got a list"),
    ("deployments.0.models", "add", "deployments[0].models", "must be a list, got a string ('add')"),
    ("timeouts", {"read_s": 10**30}, "timeouts.read_s", "must be at most 3600"),
    ("waivers", "a\0b", "waivers", "a path cannot hold a NUL byte"),
]


def _set(doc: dict, where: str, value) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = where.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[last] = value
    return doc


def test_the_good_profile_loads(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    t = load_profile(path)
    assert t.deployments[0].options["host"] == {"pid": 7} and t.deployments[0].options["performance"] == {"concurrency": [2]}


@pytest.mark.parametrize("where, value, field, words", MISTAKES, ids=[m[0] + "=" + repr(m[1])[:12] for m in MISTAKES])
def test_every_type_mistake_is_one_line_naming_file_field_expected_and_found(tmp_path, where, value, field, words):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(_set(GOOD, where, value), allow_unicode=True))
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {field}: ") and words in message and "\n" not in message, message
    # the published schema refuses it too (a NUL byte, a number JSON cannot hold and a port range's bounds aside)
    if "\0" not in str(value) and value != float("inf") and where != "options.ports.tcp_ports":
        validator = jsonschema.Draft202012Validator(profile_json_schema())
        assert not validator.is_valid(json.loads(json.dumps(_set(GOOD, where, value)))), (where, value)


def test_one_owner_per_section_and_every_owned_section_is_read():
    sections = profile_sections()  # raises when two families declare one place
    assert {"options.tls", "deployments[].options.performance", "kubernetes.options.network_policy"} <= set(sections)
    for family in registry().values():
        assert set(family.schema) <= set(family.options), family.name


def test_section_models_and_the_objects_read_from_them_have_the_same_fields():
    from nimwarden.families.performance.settings import PerformanceSection
    from nimwarden.families.ports.options import ScanLimitsSection
    from nimwarden.families.ports.probe import ScanLimits
    from nimwarden.families.tls.options import TlsOptions, TlsSection
    from nimwarden.k8s.probe_pods import ProbePodOptions, ProbePodSection

    for model, dataclass in ((TlsSection, TlsOptions), (ScanLimitsSection, ScanLimits), (ProbePodSection, ProbePodOptions)):
        assert set(model.model_fields) == {f.name for f in fields(dataclass)}, model.__name__
    example = (ROOT / "nimwarden/families/performance/settings.py").read_text().split('"""')[1]
    assert all(re.search(rf"\b{name}:", example) for name in PerformanceSection.model_fields)  # its docstring shows every field
