"""Older Triton releases judged as the lab's 2.51.0 is: tritonserver 2.41.0 (nvidia-pytriton 0.5.0) and
2.36.0 (0.4.0), each from its own cached virtualenv (tests/older_triton.py), configured as the lab's
hardened and exposed deployments, audited as a user audits them.

The probes' reading of older answers (error texts, status codes, gRPC details, JSON shapes) is
held to the same verdicts: no control errors on either release; exposed fails what it breaks;
hardened passes what it restricts. What an older release cannot do shows as the finding it is:
2.36.0 has no --http-restricted-api, so its HTTP API stays open (fail) while gRPC is restricted
(pass), and both releases are in the affected range of CVEs fixed later (TRITON-CVE-002).
"""

from __future__ import annotations

import re

import pytest

from nimwarden.catalog import load_catalog
from tests import older_triton
from tests.conftest import run_audit

pytestmark = pytest.mark.lab

LIVE = sorted(c.id for c in load_catalog().values() if c.family == "triton-api" and not c.id.startswith("TRITON-SPEC"))
HTTP_RESTRICTION = ("TRITON-MODELCTL-001", "TRITON-MODELCONFIG-001", "TRITON-SHM-001", "TRITON-STATS-001",
                    "TRITON-TRACE-001", "TRITON-LOGGING-001")


@pytest.fixture(scope="module", params=sorted(older_triton.VERSIONS), ids=lambda v: f"tritonserver-{older_triton.VERSIONS[v]}")
def older_audit(request, tmp_path_factory):
    version = request.param
    try:
        older_triton.install(version)
    except Exception as exc:  # noqa: BLE001 - no registry on this machine: say so, visibly
        pytest.skip(f"nvidia-pytriton=={version} could not be installed: {exc}")
    directory = tmp_path_factory.mktemp(f"triton-{older_triton.VERSIONS[version]}")
    with older_triton.servers(version, directory) as profile:
        config = (directory / "exposed" / "models" / "add" / "config.pbtxt").read_text()
        planted = re.search(r'key: "gcs_access_token" value: \{ string_value: "([^"]+)"', config).group(1)
        proc, summary = run_audit(profile, directory / "reports", "suites/test_triton_api.py", "-k", "not test_spec_")
    assert summary is not None, proc.stderr[-2000:]
    return version, summary, directory / "reports", planted


def _statuses(summary, deployment, control, protocol=None):
    return {r["status"] for r in summary["results"] if r["deployment"] == deployment and r["control"] == control
            and (protocol is None or r["subject"].startswith(protocol))}


def test_the_server_is_the_release_it_should_be(older_audit):
    version, summary, _, _ = older_audit
    seen = {r["evidence"].get("server_version") for r in summary["results"] if r["control"] == "TRITON-CVE-002"}
    assert seen == {older_triton.VERSIONS[version]}


def test_no_control_errors_on_an_older_release(older_audit):
    _, summary, _, _ = older_audit
    errors = [(r["deployment"], r["control"], r["subject"], r["reason"][:200]) for r in summary["results"] if r["status"] == "error"]
    assert errors == []


@pytest.mark.parametrize("control", [c for c in LIVE if c != "TRITON-AVAIL-001"])
def test_exposed_fails_what_it_breaks(older_audit, control):
    _, summary, _, _ = older_audit
    assert "fail" in _statuses(summary, "exposed", control), control


@pytest.mark.parametrize("control", LIVE)
def test_hardened_passes_what_the_release_can_restrict(older_audit, control):
    version, summary, _, _ = older_audit
    if control == "TRITON-CVE-002":  # version-only match: every older release is in the range of later fixes
        assert _statuses(summary, "hardened", control) == {"fail"}
        return
    if control == "TRITON-CVE-001":
        # an older release answering at all is in reach of its core (network) CVEs: a finding of the
        # release that no restriction closes; what made each CVE count is named
        (row,) = [r for r in summary["results"] if r["deployment"] == "hardened" and r["control"] == control]
        assert row["status"] == "fail" and any(c["component"] == "core" for c in row["evidence"]["cves"] if c["counted"]), row["reason"]
        return
    http_open = "--http-restricted-api" in older_triton.UNSUPPORTED.get(version, ())
    if http_open and control in HTTP_RESTRICTION:  # (DYNLOAD passes: model-control-mode none)
        assert _statuses(summary, "hardened", control, "http") == {"fail"}, "2.36.0 cannot restrict its HTTP API"
        assert _statuses(summary, "hardened", control, "grpc") <= {"pass"}
        return
    assert _statuses(summary, "hardened", control) <= {"pass", "not_applicable"} and "pass" in _statuses(summary, "hardened", control)


def test_model_config_secret_found_and_redacted_on_an_older_release(older_audit):
    _, summary, reports, planted = older_audit
    rows = [r for r in summary["results"] if r["deployment"] == "exposed" and r["control"] == "TRITON-CONFIGSECRET-001"]
    assert {r["status"] for r in rows} == {"fail"} and {r["severity"] for r in rows} == {"critical"} and len(rows) == 2
    for path in (reports / "latest").resolve().rglob("*"):
        if path.is_file():
            assert planted not in path.read_text(errors="replace"), path
