"""summary.json's contract as a JSON Schema (tests/fixtures/schemas/nimwarden-summary-v1.schema.json).

The report writers read summary.json alone; this schema is what they rely on. It is checked
against hand-built summaries here and against real audits in tests/integration/test_report_e2e.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest

from nimwarden.catalog import FAMILIES
from nimwarden.outcome import SEVERITIES, STATUSES
from nimwarden.report import trends
from nimwarden.waivers import apply_waivers, parse_waivers
from tests.unit.report_samples import lab_summary

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "schemas" / "nimwarden-summary-v1.schema.json"


def summary_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def validator():
    return summary_validator()


def _errors(validator, doc):
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_schema_enums_follow_the_code():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    defs = schema["definitions"]
    assert tuple(defs["result"]["properties"]["family"]["enum"]) == FAMILIES
    assert tuple(defs["status"]["enum"]) == STATUSES
    assert tuple(defs["severity"]["enum"]) == SEVERITIES


def test_sample_summary_with_waivers_and_trend_is_valid(validator):
    summary = lab_summary()
    waivers = parse_waivers(
        {"waivers": [
            {"control": "PORTS-METRICS-001", "deployment": "exposed", "owner": "a", "reason": "r", "ticket": "T-1",
             "expires": "2099-01-01"},
            {"control": "TLS-VERSION-001", "deployment": "hardened", "owner": "a", "reason": "r", "ticket": "T-2",
             "expires": "2000-01-01"},
        ]},
        "w.yaml",
    )
    summary["results"], summary["waiver_findings"] = apply_waivers(summary["results"], waivers, dt.date(2026, 11, 22))
    summary["trend"] = trends.compare(lab_summary("2026-11-21T08:00:00Z"), summary, "20261121T080000Z")
    assert _errors(validator, summary) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("results", 0, "status"), "passed"),
        (("results", 0, "family"), "triton"),
        (("results", 0, "control"), "modelctl"),
        (("totals", "fail"), -1),
        (("started_at",), "yesterday"),
        (("schema",), "nimwarden/summary/v2"),
    ],
)
def test_contract_violations_are_caught(validator, path, value):
    summary = copy.deepcopy(lab_summary())
    node = summary
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert _errors(validator, summary)


def test_waived_result_must_carry_its_waiver(validator):
    summary = lab_summary()
    summary["results"][0]["status"] = "waived"
    assert any("waiver" in e for e in _errors(validator, summary))


def test_every_dated_table_carries_both_dates_in_summary_and_html(validator, tmp_path):
    """Every table the families judge against (Triton CVEs, GPU stack, Ray, NIM engines, port tables) has as_of
    and checked in summary.json's data and in the HTML header; none is stale where checked within 90 days."""
    from nimwarden.families import data_stamps, load_profile
    from nimwarden.report.html import render_html
    from nimwarden.report.summary import data_warnings

    profile = tmp_path / "t.yaml"
    profile.write_text("name: t\nscope: [127.0.0.1]\ndeployments:\n  - {name: d, kind: triton, expect: compliant, "
                       "endpoints: {http: 'http://127.0.0.1:1', nim: 'http://127.0.0.1:2', ray: 'http://127.0.0.1:3'}}\n")
    target = load_profile(profile, resolve_credentials=False)
    data = data_stamps(target)
    assert {"triton_cves", "gpu_stack_cves", "ray_advisories", "nim_engines", "port_table_current"} <= set(data)
    for key, d in data.items():
        assert d["as_of"] and d["checked"] and d["checked_newest_seen"] and d["age_days"] >= 0, key
    summary = {**lab_summary(), "data": data, "warnings": data_warnings(data)}
    assert not _errors(validator, summary)
    if all((dt.date.today() - dt.date.fromisoformat(d["checked"])).days <= 90 for d in data.values()):
        assert summary["warnings"] == []
    page = render_html(summary)
    for d in data.values():
        assert f"{d['name']} {d['version']}, as of {d['as_of']}, checked {d['checked']}" in page, d["name"]
    broken = copy.deepcopy(summary)
    broken["data"]["triton_cves"]["checked"] = "last week"
    assert _errors(validator, broken)
