"""A full audit of the lab (every suite, no --intrusive) harms nothing and leaks nothing.

Harm: the state of each lab deployment is read before and after, out of band (with the
hardened server's admin key from the lab state dir), and compared exactly: repository index
and model states, model configs, logging and trace settings, shared-memory regions, failure
counters, and the server process itself (same pid and start time).

Secrets: the lab's canaries (exposed's NGC_API_KEY/HF_TOKEN environment and model parameters, the literal keys in
the exposed manifests, hardened's restricted-API key and gateway token, the key the leaky NIM
stand-in discloses in its metadata; the exposed NeMo Platform's seeded secret value and file content, the
audit's NeMo token, the Guardrails servers' upstream keys) appear in no artifact of the run and not in its
stdout/stderr, while the findings still say where each was seen. The exposed NeMo Platform's workspaces,
secrets and files are compared before and after too.

Request budget: what the audit sends each deployment is counted outside the harness (iptables
SYN counters as root, Triton's own inference statistics) and held under a cap.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, lab_profile, run_audit

pytestmark = pytest.mark.lab

MANIFEST_CANARY = re.compile(r'"((?:nvapi-|hf_|sk-)CANARY[A-Za-z0-9]+)"')


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


def nemo_state(dep: dict) -> dict:
    """What the audit must leave as it found it on a NeMo Platform without authentication (exposed): its
    workspaces, the seeded workspace's secrets and filesets, and the seeded fileset's files (names only)."""
    seed = dep.get("nemo_seed") or {}
    if not seed:
        return {}
    ws = seed["workspace"]
    with requests.Session() as s:
        return {f"nemo:{path}": _get(s, dep["nemo"], "GET", path, {}) for path in (
            "/apis/entities/v2/workspaces", f"/apis/secrets/v2/workspaces/{ws}/secrets",
            f"/apis/files/v2/workspaces/{ws}/filesets", f"/apis/files/v2/workspaces/{ws}/filesets/{seed['fileset']}/files")}


def lab_states(lab_state: dict) -> dict:
    out = {}
    for name, dep in lab_state["deployments"].items():
        headers = {}
        if dep.get("admin_key_file"):
            headers["admin-key"] = Path(dep["admin_key_file"]).read_text().strip()
        out[name] = {**deployment_state(dep, headers), **nemo_state(dep)}
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
    config = (Path(exposed["model_repository"]) / "add" / "config.pbtxt").read_text()
    for key in exposed.get("canary_model_parameters", []):  # fake credentials in the model's parameters
        found[f"exposed model parameter {key}"] = re.search(rf'key: "{key}" value: {{ string_value: "([^"]+)"', config).group(1)
    for path in sorted((ROOT / "nimwarden" / "lab" / "manifests" / "exposed").glob("*.yaml")):
        for value in MANIFEST_CANARY.findall(path.read_text()):
            found[f"manifest {path.name} {value[:8]}"] = value
    for name, dep in lab_state["deployments"].items():
        for key in ("admin_key_file", "gateway_token_file"):
            if dep.get(key):
                found[f"{name} {key}"] = Path(dep[key]).read_text().strip()
        # The NeMo parts: the seeded secret's value and file content (exposed), the audit's own OIDC token for the
        # NeMo gateway (hardened), each Guardrails server's upstream key.
        for key, value in ((dep.get("nemo_seed") or {}).get("canaries") or {}).items():
            found[f"{name} NeMo seeded {key}"] = value
        if dep.get("nemo_token_file"):
            found[f"{name} NeMo token"] = Path(dep["nemo_token_file"]).read_text().strip()
        if (dep.get("nemo_parts") or {}).get("guardrails_key_canary"):
            found[f"{name} Guardrails upstream key"] = dep["nemo_parts"]["guardrails_key_canary"]
        if dep.get("nim"):  # the leaky NIM stand-in discloses a key inside a URL of its metadata
            try:
                body = requests.get(f"http://{dep['nim']}/v1/metadata", timeout=5).text
            except requests.RequestException:
                continue
            for value in re.findall(r"://[^:/@\s]+:([^@\s\"]+)@", body):
                found[f"{name} NIM metadata repository_override key"] = value
    return found


MAX_CONNECTIONS_PER_DEPLOYMENT = int(os.environ.get("NIMWARDEN_MAX_CONNECTIONS_PER_DEPLOYMENT", "1500"))


class ConnectionCounter:
    """iptables rules that only count new TCP connections (SYN) to one deployment's ports (root)."""

    def __init__(self, dep: dict):
        self.specs = [["-p", "tcp", "--syn", "-d", "127.0.0.1/32", "--dport", dep[k].rsplit(":", 1)[1], "-m", "comment",
                       "--comment", f"nimwarden-budget-{secrets.token_hex(4)}"] for k in ("http", "grpc", "metrics", "sagemaker")]
        for spec in self.specs:
            subprocess.run(["iptables", "-I", "OUTPUT", *spec], check=True, timeout=10)

    def count(self) -> int:
        out = subprocess.run(["iptables", "-L", "OUTPUT", "-n", "-v", "-x"], capture_output=True, text=True, check=True, timeout=10).stdout
        tags = {spec[-1] for spec in self.specs}
        return sum(int(line.split()[0]) for line in out.splitlines() if any(t in line for t in tags))

    def remove(self) -> None:
        for spec in self.specs:
            subprocess.run(["iptables", "-D", "OUTPUT", *spec], timeout=10)


def inference_count(dep: dict, headers: dict) -> int:
    stats = requests.get(f"http://{dep['http']}/v2/models/stats", headers=headers, timeout=5).json()
    return sum(int(m.get("inference_count", 0)) for m in stats.get("model_stats", []))


@pytest.fixture(scope="module")
def full_audit(lab_state, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full-audit")
    profile = lab_profile(tmp, lab_state)
    before = lab_states(lab_state)
    deps = lab_state["deployments"]
    keys = {n: ({"admin-key": Path(d["admin_key_file"]).read_text().strip()} if d.get("admin_key_file") else {}) for n, d in deps.items()}
    counters = {n: ConnectionCounter(d) for n, d in deps.items()} if os.geteuid() == 0 and shutil.which("iptables") else {}
    inferences = {n: inference_count(d, keys[n]) for n, d in deps.items()}
    try:
        t0 = time.monotonic()
        proc, summary = run_audit(profile, tmp / "reports", timeout=600)
        took = time.monotonic() - t0
        sent = {n: {"connections": c.count()} for n, c in counters.items()}
    finally:
        for c in counters.values():
            c.remove()
    for n, d in deps.items():
        sent.setdefault(n, {})["inferences"] = inference_count(d, keys[n]) - inferences[n]
    after = lab_states(lab_state)
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, summary, before, after, took, (tmp / "reports" / "latest").resolve(), sent


def test_requests_per_deployment_stay_within_the_budget(full_audit):
    """What the audit sends each deployment, counted outside the harness: new TCP connections
    (iptables, root) and inferences (Triton's own statistics)."""
    sent = full_audit[-1]
    print(f"\nsent per deployment during the full audit: {sent}")
    for name, figures in sent.items():
        assert figures.get("connections", 0) <= MAX_CONNECTIONS_PER_DEPLOYMENT, (name, figures)
    if os.geteuid() == 0:
        assert all(f["connections"] > 0 for f in sent.values()), sent  # the counters saw the audit


def test_full_audit_changes_no_deployment_state(full_audit):
    proc, summary, before, after, took, _, _ = full_audit
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
    proc, _, _, _, _, run_dir, _ = full_audit
    secrets = canaries(lab_state)
    # two env vars, three manifest literals, the admin key (+ the edge lab's gateway token and NIM key when it runs)
    assert len(secrets) >= 6, sorted(secrets)
    print(f"\ncanaries planted: {sorted(secrets)}")
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
    _, summary, _, _, _, _, _ = full_audit
    rows = {(r["deployment"], r["control"]): r for r in summary["results"]}
    env = rows[("exposed", "HOST-ENVSECRET-001")]
    assert env["status"] == "fail" and "NGC_API_KEY" in json.dumps(env) and "HF_TOKEN" in json.dumps(env)
    literal = [r for r in summary["results"] if r["control"] == "SECRETS-LITERAL-001" and r["status"] == "fail"]
    text = json.dumps(literal)
    assert literal and "NGC_API_KEY" in text and "Deployment/nim-exposed/triton-exposed" in text and "env[0].value" in text, text[:2000]
    configmap = [r for r in summary["results"] if r["control"] == "SECRETS-CONFIGMAP-001" and r["status"] == "fail"]
    assert configmap and "NGC_API_KEY" in json.dumps(configmap)
    metadata = rows.get(("exposed", "NIM-METADATA-001"))
    if metadata is not None:  # the edge lab runs: the disclosed key is named by where it was, not by value
        assert metadata["status"] == "fail" and "repository_override" in json.dumps(metadata), metadata
