"""The nemo family against the real NeMo Platform (``nemo-platform`` 0.6.0) and NeMo Guardrails server.

- The session lab: hardened (authentication on, behind its NeMo gateway) passes every nemo control with
  no error; exposed (as shipped, published) fails each one, with the route, the header and the answer in
  the evidence, and the platform's version.
- A NeMo Platform nobody configured for the lab — its own bundled configuration with authentication
  turned on, the way its quickstart does it, and no gateway — probed directly: anonymous reads are
  refused (pass), a forged service principal gets in (critical). The lab's exposed platform (auth off, as
  shipped) probed directly fails the anonymous reads.
- A NeMo endpoint that hangs or is closed: every nemo control is an error, never a pass.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from tests.conftest import ROOT, dead_port, lab_profile, run_audit

pytestmark = [pytest.mark.lab]
NEMO = ("NEMO-AUTH-001", "NEMO-ANON-001", "NEMO-SECRETS-001", "NEMO-FORGE-001", "NEMO-HFTOKEN-001", "NEMO-CORS-001",
        "NEMO-DOCS-001", "NEMO-RATELIMIT-001", "NEMO-GUARDRAILS-001", "NEMO-GUARDRAILS-MODELS-001")
SPEC = ("NEMO-SPEC-AUTH-001", "NEMO-SPEC-EXPOSE-001", "NEMO-SPEC-NETPOL-001")  # the lab's NeMo manifests, from cluster state


def _nemo_runtime_or_skip():
    from nimwarden.lab import nemo

    try:
        return nemo.find_runtime()
    except RuntimeError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def lab_nemo(lab_state, tmp_path_factory):
    _nemo_runtime_or_skip()
    tmp = tmp_path_factory.mktemp("nemo-lab")
    proc, summary = run_audit(lab_profile(tmp, lab_state), tmp / "reports", "suites/test_nemo.py")
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {(r["deployment"], r["control"]): r for r in summary["results"]}


def test_hardened_passes_every_nemo_control(lab_nemo):
    hardened = {c: r for (d, c), r in lab_nemo.items() if d == "hardened"}
    assert set(hardened) == set(NEMO) | set(SPEC)
    bad = {c: (r["status"], r["reason"]) for c, r in hardened.items() if r["status"] != "pass"}
    assert bad == {}, bad
    assert "through its gateway" in hardened["NEMO-FORGE-001"]["reason"]
    assert "NeMo Platform 0.6.0" in hardened["NEMO-AUTH-001"]["reason"]


def test_exposed_fails_every_nemo_control_with_the_evidence_a_reviewer_needs(lab_nemo):
    exposed = {c: r for (d, c), r in lab_nemo.items() if d == "exposed"}
    assert {c: r["status"] for c, r in exposed.items()} == {c: "fail" for c in (*NEMO, *SPEC)}
    anon = exposed["NEMO-ANON-001"]
    assert "GET /apis/entities/v2/workspaces (entities, no credentials) -> 200" in anon["reason"]
    assert "Entity Store" in anon["reason"] and "/v1/namespaces" in anon["reason"]  # the legacy stand-in's routes
    assert json.dumps(anon["evidence"]).count('"platform_version": "0.6.0"') >= 1  # the real platform's version
    forge = json.dumps(exposed["NEMO-FORGE-001"]["evidence"])
    assert "X-NMP-Principal-Id: service:nimwarden-probe" in forge and '"status": 404' in forge
    secret = exposed["NEMO-SECRETS-001"]
    assert "/secrets/<random>/access" in secret["reason"] and "answered 404" in secret["reason"]
    assert "Access-Control-Allow-Origin: https://nimwarden-cors-probe.invalid" in exposed["NEMO-CORS-001"]["reason"]
    assert "none limited" in exposed["NEMO-RATELIMIT-001"]["reason"]


@pytest.fixture(scope="module")
def unconfigured_platform(tmp_path_factory):
    """A NeMo Platform with its own bundled configuration and authentication switched on (as its quickstart
    documents: auth.enabled true; the bundled file also allows unsigned JWTs), no gateway in front."""
    from nimwarden.lab import nemo, triton

    runtime = _nemo_runtime_or_skip()
    directory = tmp_path_factory.mktemp("nemo-unconfigured")
    config = nemo.bundled_config(runtime)
    config["auth"]["enabled"] = True
    ports = {k: triton.free_port() for k in ("platform", "guardrails", "idp", "upstream")}
    config["platform"]["base_url"] = config["auth"]["policy_decision_point_base_url"] = f"http://127.0.0.1:{ports['platform']}"
    part = nemo.start("unconfigured", False, directory / "nemo", None, ports, bind="127.0.0.1", config=config)
    try:
        nemo.wait(part, None)
        yield f"127.0.0.1:{ports['platform']}"
    finally:
        nemo.stop(part)
        shutil.rmtree(directory, ignore_errors=True)


def _direct_profile(tmp_path, name: str, address: str) -> str:
    profile = {"name": name, "scope": ["127.0.0.0/8"], "timeouts": {"connect_s": 2, "read_s": 5},
               "deployments": [{"name": name, "kind": "nemo", "expect": "compliant",
                                "endpoints": {"nemo": f"http://{address}"}, "exposure": ["nemo"]}]}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def test_auth_on_without_gateway_is_a_critical_forgery_while_anonymous_reads_pass(unconfigured_platform, tmp_path):
    proc, summary = run_audit(_direct_profile(tmp_path, "direct", unconfigured_platform), tmp_path / "reports",
                              "suites/test_nemo.py", "-k", "anonymous or forged or authentication")
    assert summary is not None, proc.stderr[-2000:]
    rows = {r["control"]: r for r in summary["results"]}
    assert rows["NEMO-AUTH-001"]["status"] == "pass", rows["NEMO-AUTH-001"]["reason"]
    assert rows["NEMO-ANON-001"]["status"] == "pass", rows["NEMO-ANON-001"]["reason"]
    forge = rows["NEMO-FORGE-001"]
    assert forge["status"] == "fail" and forge["severity"] == "critical", forge
    assert "honoured a forged service principal" in forge["reason"] and "-> 404" in forge["reason"]
    assert proc.returncode == 1


def test_auth_off_probed_directly_fails_anonymous_reads(lab_state, tmp_path):
    _nemo_runtime_or_skip()
    proc, summary = run_audit(_direct_profile(tmp_path, "shipped", lab_state["deployments"]["exposed"]["nemo"]),
                              tmp_path / "reports", "suites/test_nemo.py", "-k", "anonymous or authentication")
    rows = {r["control"]: r for r in summary["results"]}
    assert rows["NEMO-ANON-001"]["status"] == "fail" and rows["NEMO-AUTH-001"]["status"] == "fail", rows


@pytest.mark.parametrize("fault", ["closed", "hanging"])
def test_a_broken_nemo_endpoint_is_an_error_for_every_control(fault, tmp_path, hanging_server):
    address = f"127.0.0.1:{dead_port() if fault == 'closed' else hanging_server.port}"
    profile = _direct_profile(tmp_path, "broken", address)
    data = yaml.safe_load(profile.read_text())
    data["timeouts"] = {"connect_s": 1, "read_s": 1}
    data["deployments"][0]["endpoints"]["guardrails"] = f"http://{address}"
    data["deployments"][0]["exposure"] = ["nemo", "guardrails"]
    profile.write_text(yaml.safe_dump(data))
    proc, summary = run_audit(profile, tmp_path / "reports", "suites/test_nemo.py")
    statuses = {r["control"]: r["status"] for r in summary["results"] if r["control"] in NEMO}
    assert statuses == {c: "error" for c in NEMO}, statuses
    assert proc.returncode == 3
    reason = next(r for r in summary["results"] if r["control"] in NEMO)["reason"]
    assert ("connection refused" in reason) if fault == "closed" else ("deadline" in reason or "timed out" in reason), reason


def test_nemo_processes_run_inside_the_deployments_namespaces(lab_state):
    """Like the Ray head: the platform and the Guardrails server live in the deployment's network namespace."""
    if not lab_state["network"]["namespaces"]:
        pytest.skip("the lab runs without network namespaces here")
    for name, dep in lab_state["deployments"].items():
        pid = dep["nemo_parts"]["processes"]["platform"]["pid"]
        ns = os.readlink(f"/proc/{pid}/ns/net")
        assert ns != os.readlink("/proc/self/ns/net"), name
        assert ns == os.readlink(f"/proc/{dep['pid']}/ns/net"), name  # the same namespace as its tritonserver
    assert (ROOT / "targets" / "lab.yaml").read_text().count("nemo") >= 3
