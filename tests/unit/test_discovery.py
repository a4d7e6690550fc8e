"""`nimwarden discover` and `nimwarden audit --kubeconfig`: from a cluster to a profile and a first report.

The recorded cluster (tests/fixtures/discovery/cluster.yaml) holds a NIMService, a plain Triton
Deployment behind a LoadBalancer Service and an Ingress, a KServe InferenceService, and unrelated
workloads (a web frontend, redis, an sklearn InferenceService, the operator's and KServe's own
Deployments). It is read three ways: as manifests, as a snapshot, and live through the replay API
server (tests/k8s_replay.py, a TEST DOUBLE), whose request log proves discovery only gets and lists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from nimwarden import cli
from nimwarden.families import load_profile
from nimwarden.k8s import load_manifests
from nimwarden.k8s.discovery import discover, discovery_resources
from nimwarden.k8s.profile_yaml import ProfileSource, render_profile
from tests.k8s_replay import ReplayServer, load_objects

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "discovery" / "cluster.yaml"
EXPECTED = {("llama3-8b", "nim", "nim-prod", "NIMService"), ("triton", "triton", "triton", "Deployment"),
            ("resnet", "triton", "kserve-apps", "InferenceService")}
SECRET = "Sup3rS3cretValue"  # the value of the Triton Deployment's --http-restricted-api key


def _found(discovery) -> set[tuple[str, str, str, str]]:
    return {(f.name, f.kind, f.namespace, f.ref.split("/")[0]) for f in discovery.found}


def _deployments(profile: Path) -> dict:
    return {d["name"]: d for d in yaml.safe_load(profile.read_text())["deployments"]}


def _granted() -> set[tuple[str, str, str]]:
    role = next(d for d in yaml.safe_load_all((ROOT / "deploy/k8s/rbac-read.yaml").read_text()) if d["kind"] == "ClusterRole")
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def _permission(method: str, path: str) -> tuple[str, str, str]:
    """(group, resource, verb) a GET of this API path needs."""
    assert method == "GET", f"{method} {path}: discovery must only read"
    parts = [p for p in urlsplit(path).path.split("/") if p]
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    return group, rest[0], "get" if len(rest) > 1 else "list"


# ----------------------------------------------------------------------------------- what is found


def test_manifests_find_exactly_the_triton_and_nim_workloads():
    d = discover(load_manifests([FIXTURE]))
    assert _found(d) == EXPECTED  # not web, redis, iris, nor the operator's or KServe's own Deployments
    by = {f.name: f for f in d.found}
    assert by["triton"].selector == {"app": "triton"}
    assert by["triton"].restricted_header == "ops-key"
    (lb,) = by["triton"].ways
    assert (lb.type, lb.external, [(p.endpoint, p.port) for p in lb.ports]) == (
        "LoadBalancer", ("203.0.113.10",), [("http", 8000), ("grpc", 8001), ("metrics", 8002)])
    assert [(f.host, f.tls, f.gateway) for f in by["triton"].fronts] == [("triton.staging.example.com", True, "ingress class nginx")]
    assert by["llama3-8b"].selector == {"app": "llama3-8b"}  # the operator's Deployment's selector
    assert [w.name for w in by["llama3-8b"].ways] == ["llama3-8b"]
    assert by["resnet"].selector == {"serving.kserve.io/inferenceservice": "resnet"}
    assert [(w.name, [(p.endpoint, p.port) for p in w.ports]) for w in by["resnet"].ways] == [("resnet-predictor", [("http", 80)])]
    # found through the predictor the runtime gives it (the KServe pod template), not as the runtime object itself
    assert "ClusterServingRuntime" not in by["resnet"].why
    assert "kserve-tritonserver" in by["resnet"].why or "runs tritonserver" in by["resnet"].why


def test_operator_renderings_alone_are_inferred_from_the_custom_resources():
    """A chart review holds the NIMService and InferenceService, not what the operators render."""
    objects = [o for o in load_objects(FIXTURE) if o["metadata"]["name"] not in ("llama3-8b", "resnet-predictor")
               or o["kind"] in ("NIMService",)]
    d = discover(load_manifests_from(objects))
    by = {f.name: f for f in d.found}
    assert set(by) == {"llama3-8b", "triton", "resnet"}
    assert [(w.name, w.inferred) for w in by["llama3-8b"].ways] == [("llama3-8b", True)]
    assert [(w.name, w.inferred) for w in by["resnet"].ways] == [("resnet-predictor", True)]


def load_manifests_from(objects, tmp=None):
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="discovery-"))
    (folder / "all.yaml").write_text(yaml.safe_dump_all(objects))
    return load_manifests([folder])


def test_namespaces_limit_discovery():
    assert _found(discover(load_manifests([FIXTURE]), ["triton"])) == {("triton", "triton", "triton", "Deployment")}


@pytest.mark.parametrize("position", ["external", "cluster-internal"])
def test_profile_validates_and_scope_is_exactly_the_discovered_addresses(tmp_path, position):
    d = discover(load_manifests([FIXTURE]))
    text, decisions = render_profile(d, name="staging", position=position, source=ProfileSource("manifests", (str(FIXTURE),)))
    profile = tmp_path / "p.yaml"
    profile.write_text(text)
    target = load_profile(profile)
    assert {x.name for x in target.deployments} == {"llama3-8b", "triton", "resnet"}
    hosts = {e.host for x in target.deployments for e in x.endpoints.values()}
    assert set(target.scope_hosts) | {str(n.network_address) for n in target.scope} == hosts
    assert all(n.prefixlen == n.max_prefixlen for n in target.scope)  # single addresses, never a range
    assert SECRET not in text
    # credentials are written commented out (an unset variable is a configuration error at load time)
    assert not target.deployment("triton").credentials
    assert '#  restricted_api: {header: "ops-key", env: NIMWARDEN_TRITON_ADMIN_KEY}' in text
    assert all(x.expect == "compliant" for x in target.deployments)
    if position == "external":
        assert target.deployment("triton").endpoint("http").url == "http://203.0.113.10:8000"
        assert target.deployment("triton").endpoint("gateway").url == "https://triton.staging.example.com"
        assert not target.deployment("llama3-8b").endpoints  # ClusterIP only: left for the user, commented
        assert "llama3-8b.nim-prod.svc.cluster.local:8000   # ClusterIP" in text
        assert any("nothing discovery found is reachable" in x for x in decisions["llama3-8b"])
    else:
        assert target.deployment("llama3-8b").endpoint("http").url == "http://llama3-8b.nim-prod.svc.cluster.local:8000"
        assert target.deployment("triton").endpoint("grpc").url == "grpc://triton-lb.triton.svc.cluster.local:8001"
    assert target.deployment("triton").exposure == ("gateway", "gateway_http")


# ----------------------------------------------------------------------------------- the command


def test_discover_from_manifests_prints_a_table_and_writes_a_valid_profile(tmp_path, capsys):
    out = tmp_path / "discovered.yaml"
    assert cli.main(["discover", "--manifests", str(FIXTURE.parent), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "found 3 Triton/NIM/NeMo deployment(s)" in printed
    assert "still to decide: nothing (cluster state only: no endpoint is probed)" in printed
    for name in ("llama3-8b", "triton", "resnet"):
        assert f"\n{name} " in printed
    assert "web" not in printed.split("still to decide")[0].split()
    target = load_profile(out)
    assert target.kubernetes.source == "manifests" and not any(x.endpoints for x in target.deployments)
    assert cli.main(["discover", "--manifests", str(FIXTURE.parent), "--out", str(out)]) == 2  # no silent overwrite
    assert cli.main(["validate", "--target", str(out)]) == 0


def test_discover_from_a_snapshot(tmp_path):
    snap = tmp_path / "cluster.json"
    snap.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": load_objects(FIXTURE)}))
    out = tmp_path / "p.yaml"
    assert cli.main(["discover", "--snapshot", str(snap), "--out", str(out), "--position", "cluster-internal"]) == 0
    target = load_profile(out)
    assert target.kubernetes.source == "snapshot"
    assert {(x.name, x.kind) for x in target.deployments} == {(n, k) for n, k, _, _ in EXPECTED}


def test_discover_live_only_gets_and_lists_within_the_read_role(tmp_path):
    with ReplayServer(load_objects(FIXTURE)) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        out = tmp_path / "p.yaml"
        assert cli.main(["discover", "--kubeconfig", str(kubeconfig), "--out", str(out)]) == 0
        requests = list(server.requests)
    target = load_profile(out)
    assert target.name == "replay"  # the context's name: the next run compares with this one
    assert {(x.name, x.kind) for x in target.deployments} == {(n, k) for n, k, _, _ in EXPECTED}
    assert target.kubernetes.source == "live" and target.kubernetes.kubeconfig == kubeconfig.resolve()
    assert requests and all(m == "GET" for m, _ in requests)
    granted = _granted()
    needed = {_permission(m, p) for m, p in requests}
    assert needed <= granted, needed - granted
    assert {r for _, r, _ in needed} == {r.plural for r in discovery_resources()}


def test_discover_live_in_namespaces_asks_only_there(tmp_path):
    with ReplayServer(load_objects(FIXTURE)) as server:
        out = tmp_path / "p.yaml"
        assert cli.main(["discover", "--kubeconfig", str(server.kubeconfig(tmp_path / "kc")), "-n", "triton", "--out", str(out)]) == 0
        paths = [p for _, p in server.requests]
    assert {x.name for x in load_profile(out).deployments} == {"triton"}
    namespaced = [p for p in paths if "/namespaces/" in p]
    assert namespaced and all("/namespaces/triton/" in p for p in namespaced)
    assert {p.split("?")[0] for p in paths if "/namespaces/" not in p} == {"/apis/serving.kserve.io/v1alpha1/clusterservingruntimes"}


def test_discover_reports_a_denied_kind_and_an_unreachable_server(tmp_path, capsys):
    with ReplayServer(load_objects(FIXTURE), deny={("inferenceservices", None)}) as server:
        out = tmp_path / "p.yaml"
        assert cli.main(["discover", "--kubeconfig", str(server.kubeconfig(tmp_path / "kc")), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "could not read: InferenceService (missing permission: list inferenceservices" in printed
    (tmp_path / "dead").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}], "contexts": [{"name": "x", "context": {"cluster": "x", "user": "u"}}]}))
    assert cli.main(["discover", "--kubeconfig", str(tmp_path / "dead"), "--out", str(tmp_path / "q.yaml"), "--api-timeout", "2"]) == 2
    assert "discovery could not read the cluster" in capsys.readouterr().err


def test_audit_with_a_kubeconfig_discovers_writes_the_profile_and_reports(tmp_path):
    """`nimwarden audit --kubeconfig F` (what ./scripts/audit --kubeconfig F runs): one command, a full report."""
    reports = tmp_path / "reports"
    with ReplayServer(load_objects(FIXTURE)) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        env = dict(os.environ, PYTHONPATH=str(ROOT), NIMWARDEN_PROGRESS="0")
        env.pop("NIMWARDEN_RUN_DIR", None)
        proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "audit", "--kubeconfig", str(kubeconfig), "--no-probes",
                               "--reports-dir", str(reports), "--", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        writes = [r for r in server.requests if r[0] != "GET"]
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]  # the recorded cluster has failures
    run = (reports / "latest").resolve()
    assert (run / "target.yaml").is_file() and (run / "report.html").is_file() and (run / "report.sarif").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["target_file"] == str(run / "target.yaml")
    verdicts = {d["name"]: d["verdict"] for d in summary["deployments"]}
    assert set(verdicts) == {"llama3-8b", "triton", "resnet"}
    assert "could not evaluate" not in verdicts.values()
    for name in verdicts:  # every discovered deployment was judged from cluster state, not only skipped
        assert any(r["deployment"] == name and r["status"] in ("pass", "fail") for r in summary["results"]), name
    errors = [r for r in summary["results"] if r["status"] == "error"]
    # NIM 1.0.3's bundled engines are not in the NIM engine table: NIM-ENGINECVE-001 says so (fail closed); nothing else errs
    assert [(r["control"], "is not in the NIM engine table" in r["reason"]) for r in errors] == [("NIM-ENGINECVE-001", True)]
    assert writes == []
    assert "profile written to" in proc.stderr and str(run / "target.yaml") in proc.stderr
    load_profile(run / "target.yaml")  # reusable as it is
