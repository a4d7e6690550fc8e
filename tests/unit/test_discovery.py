"""`nimwarden discover` and `nimwarden audit --kubeconfig`: from a cluster to a profile and a first report.

The recorded cluster (tests/fixtures/discovery/cluster.yaml) holds a NIMService, a plain Triton
Deployment behind a LoadBalancer Service and an Ingress, a KServe InferenceService, and unrelated
workloads (a web frontend, redis, an sklearn InferenceService, the operator's and KServe's own
Deployments). It is read here as manifests and as a snapshot; tests/integration/test_discovery_live.py
reads it live from a real API server, whose audit log proves discovery only gets and lists.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nimwarden import cli
from nimwarden.families import load_profile
from nimwarden.k8s import load_manifests
from nimwarden.k8s.discovery import discover
from nimwarden.k8s.profile_yaml import ProfileSource, render_profile
from tests.k8s_replay import load_objects

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "discovery" / "cluster.yaml"
EXPECTED = {("llama3-8b", "nim", "nim-prod", "NIMService"), ("triton", "triton", "triton", "Deployment"),
            ("resnet", "triton", "kserve-apps", "InferenceService")}
SECRET = "Sup3rS3cretValue"  # the value of the Triton Deployment's --http-restricted-api key


def _found(discovery) -> set[tuple[str, str, str, str]]:
    return {(f.name, f.kind, f.namespace, f.ref.split("/")[0]) for f in discovery.found}


def _deployments(profile: Path) -> dict:
    return {d["name"]: d for d in yaml.safe_load(profile.read_text())["deployments"]}


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
    assert not by["resnet"].ways[0].inferred  # the predictor's own Service, found through its pods' label
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


