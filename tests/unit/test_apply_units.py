"""Manifests at repository scale: a tree that keeps variants side by side is read as apply units.

The fixture (tests/fixtures/apply_units/tree, our own files shaped like NVIDIA's operator samples and a
GitOps repository with a folder per environment) defines the same objects in several places. Each
variant is its own object, judged in its own unit: the staging Deployment's LoadBalancer does not
publish the prod Deployment of the same name, a binding resolves its ClusterRole from the tree's
platform folder, and every finding names the variant's file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nimwarden import cli
from nimwarden.errors import ConfigError
from nimwarden.families import load_profile
from nimwarden.k8s import load_manifests, source
from nimwarden.k8s.source import templates_of
from tests import corpus

TREE = Path(__file__).resolve().parents[1] / "fixtures" / "apply_units" / "tree"
STANDALONE = "tree/samples/nim/serving/standalone"

# The apply units the tree is read as, and the folders/files each also sees (nearest first).
UNITS = {
    "tree/gitops/envs/prod": (), "tree/gitops/envs/staging": (), "tree/gitops/platform": (),
    "tree/samples/nemo/25.04": (), "tree/samples/nemo/25.06": (), "tree/samples/nemo/latest": (),
    "tree/samples/nim/caching/nimcache-ebs.yaml": (), "tree/samples/nim/caching/nimcache-efs.yaml": (),
    f"{STANDALONE}/basic/llm.yaml": (), f"{STANDALONE}/basic/multi-llm.yaml": (),
    f"{STANDALONE}/no-precaching": (),
    f"{STANDALONE}/no-precaching/llm.yaml": (f"{STANDALONE}/no-precaching",),
    f"{STANDALONE}/no-precaching/multi-llm-hf.yaml": (f"{STANDALONE}/no-precaching",),
}

# Every workload variant, as the pod controls judge it (each object's pod template alone).
LLM = "NIMService/nim-service/meta-llama-3-2-1b-instruct"
CACHE = "NIMCache/nim-service/meta-llama-3-2-1b-instruct"
TRITON = "Deployment/inference/triton"
POD_VERDICTS = {  # object: (POD-NONROOT-001, POD-HOSTPATH-001, POD-PRIVESC-001)
    f"{TRITON}@tree/gitops/envs/staging": ("fail", "pass", "fail"),
    f"{TRITON}@tree/gitops/envs/prod": ("pass", "pass", "pass"),
    f"{LLM}@{STANDALONE}/basic/llm.yaml": ("fail", "pass", "fail"),
    f"{LLM}@{STANDALONE}/basic/multi-llm.yaml": ("fail", "pass", "fail"),
    f"{LLM}@{STANDALONE}/no-precaching/llm.yaml": ("fail", "fail", "fail"),
    f"{LLM}@{STANDALONE}/no-precaching/multi-llm-hf.yaml": ("fail", "pass", "fail"),
    "NIMService/nim-service/meta-llama-3-2-1b-instruct-emptydir": ("fail", "pass", "fail"),
    # the caching Jobs the operator runs: non-root, no escalation (its constructJob defaults)
    f"{CACHE}@tree/samples/nim/caching/nimcache-ebs.yaml": ("pass", "pass", "pass"),
    f"{CACHE}@tree/samples/nim/caching/nimcache-efs.yaml": ("pass", "pass", "pass"),
    f"{CACHE}@{STANDALONE}/basic/llm.yaml": ("pass", "pass", "pass"),
    # (multi-llm.yaml's NIMCache pulls from Hugging Face: no caching Job is rendered for that source yet)
    "NIMCache/nemo/meta-llama3-1b-instruct@tree/samples/nemo/25.04": ("pass", "pass", "pass"),
    "NIMCache/nemo/meta-llama3-1b-instruct@tree/samples/nemo/25.06": ("pass", "pass", "pass"),
    "NIMCache/nemo/meta-llama-3-1-8b-instruct": ("pass", "pass", "pass"),
    # the NIMServices the NIMPipelines ask the operator for (named after their pipeline's unit, which all
    # three versions define)
    "NIMService/nemo/meta-llama3-1b-instruct@tree/samples/nemo/25.04": ("fail", "pass", "fail"),
    "NIMService/nemo/meta-llama3-1b-instruct@tree/samples/nemo/25.06": ("fail", "pass", "fail"),
    "NIMService/nemo/meta-llama-3-1-8b-instruct@tree/samples/nemo/latest": ("fail", "pass", "fail"),
    # the NeMo resources of each version, rendered as the NIM Operator renders them (runAsUser 1000 without
    # runAsNonRoot, no container securityContext): each version its own workload
    **{f"{kind}/nemo/{name}-sample@tree/samples/nemo/{v}": ("fail", "pass", "fail")
       for kind, name in (("NemoDatastore", "nemodatastore"), ("NemoGuardrail", "nemoguardrails")) for v in ("25.04", "25.06", "latest")},
}

# The audit of the profile `nimwarden discover --manifests TREE` writes: one deployment per workload per unit.
AUDIT = {  # deployment: {control: status}
    "triton-staging": {"POD-NONROOT-001": "fail", "POD-PRIVESC-001": "fail", "POD-SECCOMP-001": "fail",
                       "PORTS-K8SEXPOSE-001": "fail", "RBAC-EXEC-001": "fail", "NETPOL-DEFAULTDENY-001": "fail",
                       "NETPOL-NIMAPI-001": "fail", "POD-NSLABELS-001": "pass", "SECRETS-LITERAL-001": "pass"},
    "triton-prod": {"POD-NONROOT-001": "pass", "POD-PRIVESC-001": "pass", "POD-SECCOMP-001": "pass",
                    "PORTS-K8SEXPOSE-001": "pass", "RBAC-EXEC-001": "pass", "NETPOL-DEFAULTDENY-001": "pass",
                    "NETPOL-NIMAPI-001": "pass", "POD-NSLABELS-001": "pass", "SECRETS-LITERAL-001": "pass"},
    "meta-llama-3-2-1b-instruct-basic-llm": {"POD-MODELRO-001": "fail", "POD-HOSTPATH-001": "pass", "POD-NONROOT-001": "fail"},
    "meta-llama-3-2-1b-instruct-basic-multi-llm": {"POD-MODELRO-001": "pass", "POD-HOSTPATH-001": "pass", "POD-NONROOT-001": "fail"},
    "meta-llama-3-2-1b-instruct-no-precaching-llm": {"POD-HOSTPATH-001": "fail", "POD-MODELRO-001": "fail"},
    "meta-llama-3-2-1b-instruct-no-precaching-multi-llm-hf": {"POD-HOSTPATH-001": "pass", "POD-MODELRO-001": "fail"},
    "meta-llama-3-2-1b-instruct-emptydir": {"POD-HOSTPATH-001": "pass", "POD-MODELRO-001": "pass"},
    # each version's NeMo resources, discovered as a kind nemo deployment of their own unit: no policy isolates
    # them, nothing publishes them, the operator's pod may run as root
    **{f"{name}-sample-{v.replace('.', '-')}": {"POD-NONROOT-001": "fail", "NEMO-SPEC-NETPOL-001": "fail", "NEMO-SPEC-EXPOSE-001": "pass"}
       for name in ("nemodatastore", "nemoguardrails") for v in ("25.04", "25.06", "latest")},
}
NEMO_KINDS = ("NemoGuardrail", "NemoDatastore")


@pytest.fixture(scope="module")
def state():
    return load_manifests([TREE])


def test_the_tree_is_read_as_its_apply_units(state):
    assert {u.label: u.enclosing for u in state.units} == UNITS
    # the same object in two units is two objects; an object defined once keeps its plain ref
    refs = [o.ref for o in state.objects]
    assert len(refs) == len(set(refs))
    assert f"{TRITON}@tree/gitops/envs/staging" in refs and f"{TRITON}@tree/gitops/envs/prod" in refs
    assert "ClusterRole/triton-debug" in refs and "NemoGuardrail/nemo/nemoguardrails-sample@tree/samples/nemo/latest" in refs


def test_a_unit_sees_itself_first_then_its_folder_then_the_shared_cluster_scoped_objects(state):
    prod = state.view("tree/gitops/envs/prod")
    assert prod.get("Service", "inference", "triton").unit == "tree/gitops/envs/prod"  # not staging's LoadBalancer
    assert prod.get("ClusterRole", None, "triton-reader").unit == "tree/gitops/platform"  # shared from the platform folder
    assert prod.get("Deployment", "inference", "triton").ref.endswith("@tree/gitops/envs/prod")
    assert len(prod.of_kind("Deployment")) == 1 and not prod.of_kind("NIMService")
    hostpath = state.view(f"{STANDALONE}/no-precaching/llm.yaml")
    assert {o.name for o in hostpath.of_kind("NIMService")} == {"meta-llama-3-2-1b-instruct", "meta-llama-3-2-1b-instruct-emptydir"}
    assert hostpath.get("NIMService", "nim-service", "meta-llama-3-2-1b-instruct").file.endswith("no-precaching/llm.yaml")


def test_every_variant_is_judged_with_its_own_verdict(state):
    got = {}
    for t in templates_of(state):
        got[t.ref] = tuple(j([t]).status.value for j in (corpus.pod.non_root, corpus.pod.no_host_path, corpus.pod.no_privilege_escalation))
    assert got == POD_VERDICTS


def test_nemo_resources_in_three_versions_do_not_break_the_units(state):
    inventory = source.inventory(state)
    for kind in NEMO_KINDS:
        refs = sorted(o.ref for o in state.of_kind(kind))
        assert refs == [f"{kind}/nemo/{'nemoguardrails' if kind == 'NemoGuardrail' else 'nemodatastore'}-sample@tree/samples/nemo/{v}"
                        for v in ("25.04", "25.06", "latest")]
        # rendered into pods as the NIM Operator renders them: each version is judged as its own workload
        judged = [t.ref for t in templates_of(state) if t.owner.kind == kind]
        assert kind not in inventory["not_judged"] and sorted(judged) == refs


def test_discover_then_audit_exits_with_a_verdict_and_judges_each_variant(tmp_path, capsys):
    profile = tmp_path / "target.yaml"
    assert cli.main(["discover", "--manifests", str(TREE), "--out", str(profile)]) == 0
    target = load_profile(profile)
    units = {d.name: d.kubernetes.unit for d in target.deployments}
    assert set(units) == set(AUDIT)
    assert units["triton-prod"] == TREE / "gitops" / "envs" / "prod"
    assert units["meta-llama-3-2-1b-instruct-basic-multi-llm"] == TREE / "samples/nim/serving/standalone/basic/multi-llm.yaml"
    status = cli.main(["audit", "--target", str(profile), "--reports-dir", str(tmp_path / "reports")])
    assert status == 1, capsys.readouterr()  # failures found, never a configuration error (2)
    summary = json.loads((tmp_path / "reports" / "latest" / "summary.json").read_text())
    results = {(r["deployment"], r["control"]): r for r in summary["results"]}
    got = {d: {c: results[(d, c)]["status"] for c in controls} for d, controls in AUDIT.items()}
    assert got == AUDIT
    judged = [r for r in summary["results"] if r["status"] in ("pass", "fail", "error")]
    assert len({(r["deployment"], r["control"], r["subject"]) for r in judged}) == len(judged)
    for (deployment, _control), r in results.items():
        if r["status"] == "fail" and deployment in ("triton-staging", "triton-prod"):  # each finding names its variant's file
            env = deployment.split("-")[1]
            assert r["evidence"]["unit"] == f"tree/gitops/envs/{env}", r
            assert r["evidence"].get("file", f"envs/{env}/triton.yaml").endswith((f"envs/{env}/triton.yaml", "gitops/platform/cluster.yaml")), r
    exec_fail = results[("triton-staging", "RBAC-EXEC-001")]
    assert exec_fail["subject"] == "ClusterRole/triton-debug" and exec_fail["evidence"]["file"].endswith("gitops/platform/cluster.yaml")
    published = results[("triton-staging", "PORTS-K8SEXPOSE-001")]
    assert published["subject"] == "Service/inference/triton@tree/gitops/envs/staging"
    hostpath = results[("meta-llama-3-2-1b-instruct-no-precaching-llm", "POD-HOSTPATH-001")]
    assert hostpath["subject"] == f"{LLM}@{STANDALONE}/no-precaching/llm.yaml"
    assert hostpath["evidence"]["file"].endswith("no-precaching/llm.yaml") and hostpath["evidence"]["line"]


def test_one_deployment_over_several_units_is_judged_unit_by_unit_and_merged(tmp_path):
    profile = tmp_path / "target.yaml"
    profile.write_text(yaml.safe_dump({"name": "gitops", "kubernetes": {"source": "manifests", "paths": [str(TREE / "gitops")]},
                                       "deployments": [{"name": "triton", "kind": "triton", "expect": "compliant",
                                                        "kubernetes": {"namespace": "inference", "selector": {"app": "triton"}}}]}))
    target = load_profile(profile)
    source.clear_cache()
    out = source.judge_workloads(target, target.deployments[0], corpus.pod.non_root)
    assert out.status.value == "fail" and out.subject == f"{TRITON}@gitops/envs/staging"
    assert out.evidence["units"] == {"gitops/envs/staging": {"status": "fail", "reason": out.evidence["units"]["gitops/envs/staging"]["reason"]},
                                     "gitops/envs/prod": {"status": "pass", "reason": "every container runs as a non-root, non-zero UID"}}
    ports = source.judge_workloads(target, target.deployments[0], corpus.ports.services, state=True)
    assert ports.evidence["units"]["gitops/envs/prod"]["status"] == "pass"  # staging's LoadBalancer is not prod's


def test_a_tree_without_clashes_stays_one_unit_and_one_file_defining_an_object_twice_is_an_error(tmp_path):
    state = load_manifests([TREE / "gitops" / "envs" / "prod", TREE / "gitops" / "platform"])
    assert state.units == () and all(not o.twin and o.unit == "" for o in state.objects)
    body = (TREE / "gitops" / "envs" / "prod" / "triton.yaml").read_text()
    (tmp_path / "twice.yaml").write_text(body + "\n---\n" + body)
    with pytest.raises(ConfigError, match="is defined twice"):
        load_manifests([tmp_path])


def test_a_unit_that_does_not_exist_is_a_configuration_error(tmp_path):
    profile = tmp_path / "target.yaml"
    profile.write_text(yaml.safe_dump({"name": "t", "kubernetes": {"source": "manifests", "paths": [str(TREE)]},
                                       "deployments": [{"name": "d", "kind": "nim", "expect": "compliant",
                                                        "kubernetes": {"selector": {"a": "b"}, "unit": "no/such/folder"}}]}))
    with pytest.raises(ConfigError, match=r"deployments\[0\]\.kubernetes\.unit"):
        load_profile(profile)
