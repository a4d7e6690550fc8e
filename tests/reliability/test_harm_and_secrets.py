"""A full audit of the lab (every suite, no --intrusive) harms nothing and leaks nothing.

Harm: the state of each lab deployment is read before and after, out of band (with the
hardened server's admin key from the lab state dir), and compared exactly: repository index
and model states, model configs, logging and trace settings, shared-memory regions, failure
counters, and the server process itself (same pid and start time).

Secrets: the lab's canaries (exposed's NGC_API_KEY/HF_TOKEN environment, the literal keys in
the exposed manifests, hardened's restricted-API key) appear in no artifact of the run and not
in its stdout/stderr, while the findings still say where each was seen.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, lab_profile, run_audit

pytestmark = pytest.mark.lab

MANIFEST_CANARY = re.compile(r'"((?:nvapi-|hf_)CANARY[A-Za-z0-9]+)"')


def _get(session: requests.Session, base: str, method: str, path: str, headers: dict) -> tuple[int, object]:
    resp = session.request(method, f"http://{base}{path}", headers=headers, timeout=5)
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, resp.text


def failure_counters(stats: object) -> dict:
    """Per model version: every counter that records a failure (successes move with inference probes)."""
    out = {}
    for m in (stats or {}).get("model_stats", []) if isinstance(stats, dict) else []:
        inf = m.get("inference_stats", {})
        out[f"{m.get('name')}/{m.get('version')}"] = {k: v.get("count") for k, v in inf.items() if "fail" in k}
    return out


def deployment_state(dep: dict, headers: dict) -> dict:
    """Everything the audit must leave as it found it, read over the server's own API."""
    from nimwarden.lab import triton

    with requests.Session() as s:
        base = dep["http"]
        index = _get(s, base, "POST", "/v2/repository/index", headers)
        state = {
            "process": (dep["pid"], triton.process_start_time(int(dep["pid"]))),
            "repository_index": index,
            "logging": _get(s, base, "GET", "/v2/logging", headers),
            "trace": _get(s, base, "GET", "/v2/trace/setting", headers),
            "system_shm": _get(s, base, "GET", "/v2/systemsharedmemory/status", headers),
            "cuda_shm": _get(s, base, "GET", "/v2/cudasharedmemory/status", headers),
            "failures": failure_counters(_get(s, base, "GET", "/v2/models/stats", headers)[1]),
        }
        for model in (m["name"] for m in index[1] if isinstance(index[1], list)):
            state[f"config:{model}"] = _get(s, base, "GET", f"/v2/models/{model}/config", headers)
            state[f"ready:{model}"] = _get(s, base, "GET", f"/v2/models/{model}/ready", headers)[0]
    assert index[0] == 200, f"cannot read {dep['http']}'s state: {index}"
    return state


def lab_states(lab_state: dict) -> dict:
    out = {}
    for name, dep in lab_state["deployments"].items():
        headers = {}
        if dep.get("admin_key_file"):
            headers["admin-key"] = Path(dep["admin_key_file"]).read_text().strip()
        out[name] = deployment_state(dep, headers)
    return out


def canaries(lab_state: dict) -> dict[str, str]:
    """name -> secret value planted by the lab."""
    found = {}
    exposed = lab_state["deployments"]["exposed"]
    environ = Path(f"/proc/{exposed['pid']}/environ").read_bytes().split(b"\0")
    for item in environ:
        key, _, value = item.decode(errors="replace").partition("=")
        if key in exposed.get("canary_env", []):
            found[f"exposed env {key}"] = value
    for path in sorted((ROOT / "nimwarden" / "lab" / "manifests" / "exposed").glob("*.yaml")):
        for value in MANIFEST_CANARY.findall(path.read_text()):
            found[f"manifest {path.name} {value[:8]}"] = value
    key_file = lab_state["deployments"]["hardened"].get("admin_key_file")
    if key_file:
        found["hardened restricted-API key"] = Path(key_file).read_text().strip()
    return found


@pytest.fixture(scope="module")
def full_audit(lab_state, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full-audit")
    profile = lab_profile(tmp, lab_state)
    before = lab_states(lab_state)
    t0 = time.monotonic()
    proc, summary = run_audit(profile, tmp / "reports", timeout=600)
    took = time.monotonic() - t0
    after = lab_states(lab_state)
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, summary, before, after, took, (tmp / "reports" / "latest").resolve()


def test_full_audit_changes_no_deployment_state(full_audit):
    proc, summary, before, after, took, _ = full_audit
    changes = [(dep, key, before[dep][key], after[dep].get(key)) for dep in before for key in before[dep] if before[dep][key] != after[dep].get(key)]
    print(f"\nfull lab audit (no --intrusive): {len(summary['results'])} results in {took:.0f}s; "
          f"state items compared: {sum(map(len, before.values()))}; state changes: {len(changes)}")
    assert summary["run"].get("options") is None or "--intrusive=no" in json.dumps(summary["run"])
    assert changes == [], changes


def test_state_comparison_sees_a_change(lab_state):
    """The comparison is not blind: a trace setting changed out of band shows up (and is put back)."""
    dep = lab_state["deployments"]["exposed"]
    before = deployment_state(dep, {})
    level = before["trace"][1]["trace_level"]
    try:
        requests.post(f"http://{dep['http']}/v2/trace/setting", json={"trace_level": ["OFF"]}, timeout=5).raise_for_status()
        assert deployment_state(dep, {})["trace"] != before["trace"]
    finally:
        requests.post(f"http://{dep['http']}/v2/trace/setting", json={"trace_level": level}, timeout=5).raise_for_status()
    assert deployment_state(dep, {})["trace"] == before["trace"]


def test_no_canary_in_any_artifact_or_output(full_audit, lab_state):
    proc, _, _, _, _, run_dir = full_audit
    secrets = canaries(lab_state)
    assert len(secrets) >= 5, sorted(secrets)  # two env vars, three manifest literals, the admin key
    texts = {"stdout": proc.stdout, "stderr": proc.stderr}
    for path in run_dir.rglob("*"):
        if path.is_file():
            texts[str(path.relative_to(run_dir))] = path.read_bytes().decode("utf-8", "replace")
    kinds = {"summary.json", "report.html", "junit.xml"} & set(texts)
    assert kinds == {"summary.json", "report.html", "junit.xml"} and any(k.startswith("allure-results/") for k in texts)
    leaks = [(name, where) for name, value in secrets.items() for where, text in texts.items() if value in text]
    print(f"\ncanaries: {len(secrets)} searched in {len(texts)} artifacts/streams; leaked: {len(leaks)}")
    assert leaks == [], leaks


def test_findings_still_say_where_each_secret_was_seen(full_audit):
    _, summary, _, _, _, _ = full_audit
    rows = {(r["deployment"], r["control"]): r for r in summary["results"]}
    env = rows[("exposed", "HOST-ENVSECRET-001")]
    assert env["status"] == "fail" and "NGC_API_KEY" in json.dumps(env) and "HF_TOKEN" in json.dumps(env)
    literal = [r for r in summary["results"] if r["control"] == "SECRETS-LITERAL-001" and r["status"] == "fail"]
    text = json.dumps(literal)
    assert literal and "NGC_API_KEY" in text and "Deployment/nim-exposed/triton-exposed" in text and "env[0].value" in text, text[:2000]
    configmap = [r for r in summary["results"] if r["control"] == "SECRETS-CONFIGMAP-001" and r["status"] == "fail"]
    assert configmap and "NGC_API_KEY" in json.dumps(configmap)
