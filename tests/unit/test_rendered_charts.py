"""Issue 13: the seven faults seen on manifests rendered from NVIDIA's published charts, one test
(or a few) each, written to fail when its fix is reverted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nimwarden import cli
from nimwarden.errors import ConfigError
from nimwarden.families.gateway import k8s_judge as gateway
from nimwarden.families.pod_security import judge as pod
from nimwarden.families.rbac import judge as rbac
from nimwarden.families.secrets import judge as secrets
from nimwarden.families.tls import k8s_judge as tls
from nimwarden.k8s import source as k8s
from nimwarden.k8s.manifests import load_manifests
from nimwarden.k8s.model import ClusterState, make_object
from nimwarden.k8s.workloads import pod_templates
from nimwarden.report import gating
from nimwarden.report.sarif import build_sarif
from nimwarden.target import load_target
from tests import corpus

CHARTS = corpus.CHARTS


@pytest.fixture(autouse=True)
def fresh_cache():
    k8s.clear_cache()
    yield
    k8s.clear_cache()


def _profile(tmp_path: Path, case: str, selector: dict, namespace: str | None = None, **kubernetes) -> Path:
    ns = namespace or corpus.expected(case)["namespace"]
    profile = {"name": case, "deployments": [{"name": "chart", "kind": "nim", "expect": "compliant",
                                              "kubernetes": {"namespace": ns, "selector": selector}}],
               "kubernetes": {"source": "manifests", "paths": [str(CHARTS / case / "manifests")], "default_namespace": ns, **kubernetes}}
    path = tmp_path / "target.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def _workloads(tmp_path, case, selector, **kw):
    target = load_target(_profile(tmp_path, case, selector, **kw))
    return target, k8s.for_deployment(target, target.deployments[0])


# ---------------------------------------------------------------- 1. compliant with nothing judged

def test_fault1_a_selector_matching_nothing_is_an_error_naming_the_nearest(tmp_path):
    _, out = _workloads(tmp_path, "nim-llm-default", {"app": "nim-llm"})
    assert out.status.value == "error"
    assert "no workload matched selector app=nim-llm in namespace nim" in out.reason
    assert "nearest found: StatefulSet/nim/my-nim" in out.reason and "app.kubernetes.io/name=nim-llm" in out.reason


def test_fault1_a_directory_of_crds_only_is_an_error_not_compliant(tmp_path):
    _, out = _workloads(tmp_path, "bad-crds-only", {"app": "x"}, namespace="default")
    assert out.status.value == "error" and "holds no workload at all (CustomResourceDefinition 2)" in out.reason


def test_fault1_a_deployment_and_the_target_wide_row_with_nothing_evaluated_are_not_compliant():
    na = {"status": "not_applicable", "reason": "no Service routes to the selected workloads"}
    summary = {"deployments": [{"name": "chart", "expect": "compliant"}],
               "results": [{"deployment": "chart", "control": f"C-{i}", **na} for i in range(3)]
               + [{"deployment": "-", "control": "NETPOL-DB-001", "status": "not_applicable", "reason": "no database"}]}
    verdicts = {v.name: v for v in gating.deployment_verdicts(summary)}
    assert verdicts["chart"].verdict == gating.UNEVALUATED and "no Service routes" in verdicts["chart"].why
    assert verdicts["-"].verdict == gating.UNEVALUATED
    assert gating.exit_status(summary) == gating.EXIT_ERROR
    summary["results"].append({"deployment": "chart", "control": "X", "status": "pass", "reason": "ok"})
    summary["results"].append({"deployment": "-", "control": "RBAC-UNBOUNDROLE-001", "status": "pass", "reason": "ok"})
    assert gating.exit_status(summary) == gating.EXIT_OK


@pytest.mark.parametrize("case, ref", [
    ("nim-deploy-kserve", "InferenceService/nim-kserve/llama3-8b-instruct-1xgpu"),
    ("nim-deploy-kserve", "ClusterServingRuntime/nvidia-nim-llama3-8b-instruct-1.0.0"),
    ("nim-operator-sample-nimpipeline", "NIMService/nim-service/nv-embedqa-1b-v2"),
    ("nim-operator-sample-nimservice", "NIMCache/nim-service/meta-llama3-8b-instruct"),
])
def test_fault1_operator_and_kserve_resources_are_judged(case, ref):
    assert ref in {t.ref for t in pod_templates(corpus.load(case))}


# ---------------------------------------------------------------- 2. helm template output has no namespaces

def test_fault2_default_namespace_matches_the_operator_binding_subject():
    state = corpus.load("nim-operator-chart")  # -n nim-operator, as expected.yaml says
    templates = [t for t in pod_templates(state) if not t.hook]
    out = rbac.secrets_cluster_wide(state, templates)
    assert out.status.value == "fail" and out.evidence["locations"][0]["object"] == "ClusterRole/k8s-nim-operator-role"
    everything_default = load_manifests([CHARTS / "nim-operator-chart" / "manifests"])  # what `default` gave: a false pass
    assert rbac.secrets_cluster_wide(everything_default, [t for t in pod_templates(everything_default) if not t.hook]).status.value == "pass"


def test_fault2_the_gke_ingress_lands_with_its_service():
    state = corpus.load("triton-gke-marketplace")
    templates = pod_templates(state)
    assert tls.ingress_tls(state, templates).status.value == "fail"
    assert gateway.root_path(state, templates).status.value == "fail"


def test_fault2_profile_default_namespace_and_per_path_namespace(tmp_path):
    profile = {"name": "p", "deployments": [{"name": "d", "kind": "nim", "expect": "compliant", "kubernetes": {"namespace": "nim"}}],
               "kubernetes": {"source": "manifests", "default_namespace": "nim",
                              "paths": [str(CHARTS / "nim-llm-default" / "manifests"),
                                        {"path": str(CHARTS / "nim-operator-chart" / "manifests"), "namespace": "nim-operator"}]}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(profile))
    target = load_target(tmp_path / "t.yaml")
    assert target.scope == () and target.deployments[0].endpoints == {}  # a manifests-only profile needs neither
    state = k8s.read_state(target.kubernetes)
    assert state.get("StatefulSet", "nim", "my-nim") is not None
    assert state.get("Deployment", "nim-operator", "nim-operator-k8s-nim-operator") is not None


def test_fault2_a_profile_that_probes_still_needs_a_scope(tmp_path):
    profile = {"name": "p", "deployments": [{"name": "d", "kind": "nim", "expect": "compliant", "endpoints": {"http": "http://10.0.0.1:8000"}}]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(profile))
    with pytest.raises(ConfigError, match="scope"):
        load_target(tmp_path / "t.yaml")


# ---------------------------------------------------------------- 3. bad input: one line, exit 2

BAD_HINTS = {"bad-unrendered-chart": "an unrendered Helm chart; render it first: `helm template RELEASE",
             "bad-kustomization": "a kustomization; render it first: `kubectl kustomize",
             "bad-ansible": "not a Kubernetes manifest", "bad-broken-separator": "document separator glued to a key"}


@pytest.mark.parametrize("case", sorted(BAD_HINTS))
@pytest.mark.parametrize("command", ["validate", "audit"])
def test_fault3_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case, command):
    code = cli.main([command, "--target", str(_profile(tmp_path, case, {"app": "x"}, namespace="default"))])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and str(CHARTS / case / "manifests") in err
    assert BAD_HINTS[case] in err


def test_fault3_validate_reads_the_manifests_and_lists_what_is_not_judged(tmp_path, capsys):
    assert cli.main(["validate", "--target", str(_profile(tmp_path, "triton-k8s-onprem", {"app": "triton-inference-server"}))]) == 0
    out = capsys.readouterr().out
    assert "Kubernetes object(s) read" in out and "not judged: ServiceMonitor 1" in out and "Helm hook" in out


def test_fault3_a_helm_template_inside_a_file_names_helm_template(tmp_path):
    f = tmp_path / "deployment.yaml"
    f.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n")
    with pytest.raises(ConfigError, match="helm template"):
        load_manifests([f])


# ---------------------------------------------------------------- 4. noise

def test_fault4_public_images_need_no_pull_secret_and_outside_secrets_cannot_be_verified():
    state = corpus.load("triton-aws")
    [tpl] = [t for t in pod_templates(state)]
    out = secrets.pull_secrets(state, [tpl])
    assert out.status.value == "pass" and "public" in out.reason
    nim = corpus.load("nim-llm-default")
    [sts] = [t for t in pod_templates(nim) if t.ref == "StatefulSet/nim/my-nim"]
    out = secrets.pull_secrets(nim, [sts])
    assert out.status.value == "pass" and "cannot be verified from manifests" in out.reason


def test_fault4_a_missing_pull_secret_fails_on_a_snapshot():
    nim = corpus.load("nim-llm-default")
    snapshot = ClusterState("snapshot: s.json", nim.objects)
    [sts] = [t for t in pod_templates(snapshot) if t.ref == "StatefulSet/nim/my-nim"]
    assert secrets.pull_secrets(snapshot, [sts]).status.value == "fail"


def test_fault4_registries_are_matched_by_repository_prefix():
    assert secrets.private_prefix("nvcr.io/nim/meta/llama3-8b-instruct:1.0.3", secrets.DEFAULT_PRIVATE_REGISTRIES) == "nvcr.io/nim/"
    assert secrets.private_prefix("nvcr.io/nvidia/tritonserver:24.08-py3", secrets.DEFAULT_PRIVATE_REGISTRIES) is None
    assert secrets.private_prefix("nvcr.io/nvidia/tritonserver:24.08-py3", ("nvcr.io",)) == "nvcr.io"  # a host still means the host


def test_fault4_nonroot_says_exactly_what_is_missing():
    state = corpus.load("nim-llm-default")
    [sts] = [t for t in pod_templates(state) if t.ref == "StatefulSet/nim/my-nim"]
    out = pod.non_root([sts])
    assert out.status.value == "fail" and "may run as root" not in out.reason
    assert "runAsUser 1000 is set (not root), only runAsNonRoot: true is missing" in out.reason


def test_fault4_helm_test_pods_are_not_the_chart_workload(tmp_path):
    target, w = _workloads(tmp_path, "nim-llm-default", {"app.kubernetes.io/name": "nim-llm"})
    assert [t.ref for t in w.templates] == ["StatefulSet/nim/my-nim"]
    assert len(w.hooks) == 3
    out = k8s.judge_workloads(target, target.deployments[0], pod.read_only_root)
    assert out.subject == "StatefulSet/nim/my-nim" and "curl" not in out.reason
    assert out.evidence["hooks"]["status"] == "fail" and len(out.evidence["hooks"]["objects"]) == 3


def test_fault4_a_namespace_helm_creates_is_not_an_error_on_manifests(tmp_path):
    target = load_target(_profile(tmp_path, "nim-llm-default", {"app.kubernetes.io/name": "nim-llm"}))
    out = k8s.judge_workloads(target, target.deployments[0], pod.namespace_labels_of, "restricted", state=True)
    assert out.status.value == "not_applicable" and "cannot be verified from manifests" in out.reason


# ---------------------------------------------------------------- 5. merged objects

def test_fault5_the_same_object_twice_in_one_file_is_one_error_naming_both_documents(tmp_path):
    body = "apiVersion: apps.nvidia.com/v1alpha1\nkind: NIMService\nmetadata: {name: llm}\nspec: {image: {repository: a}}\n"
    (tmp_path / "rendered.yaml").write_text(body + "---\n" + body)
    with pytest.raises(ConfigError) as exc:
        load_manifests([tmp_path], "nim")
    assert "NIMService/nim/llm is defined twice" in str(exc.value)
    assert f"{tmp_path / 'rendered.yaml'}#0" in str(exc.value) and f"{tmp_path / 'rendered.yaml'}#1" in str(exc.value)


def test_fault5_the_same_object_in_two_files_of_a_folder_is_two_alternatives_each_judged(tmp_path):
    # the operator's samples keep llm.yaml and multi-llm.yaml side by side, both defining one NIMService:
    # `kubectl apply -f` one or the other; each is judged, its ref naming its file (tests/unit/test_apply_units.py)
    body = "apiVersion: apps.nvidia.com/v1alpha1\nkind: NIMService\nmetadata: {name: llm}\nspec: {image: {repository: a}}\n"
    (tmp_path / "a.yaml").write_text(body)
    (tmp_path / "b.yaml").write_text(body.replace("repository: a", "repository: b"))
    state = load_manifests([tmp_path], "nim")
    refs = sorted(t.ref for t in pod_templates(state.view(state.units[0].label))) + sorted(
        t.ref for t in pod_templates(state.view(state.units[1].label)))
    assert refs == [f"NIMService/nim/llm@{tmp_path.name}/a.yaml", f"NIMService/nim/llm@{tmp_path.name}/b.yaml"]


# ---------------------------------------------------------------- 6. not seen at all

def test_fault6_traefik_ingressroutes_on_http_and_h2c_are_judged():
    state = corpus.load("triton-k8s-onprem")
    templates = [t for t in pod_templates(state) if t.ref == "Deployment/triton/triton-triton-inference-server"]
    out = tls.ingress_tls(state, templates)
    assert out.status.value == "fail"
    assert {loc["object"] for loc in out.evidence["locations"]} == {
        "IngressRoute/triton/triton-inference-server-ingress-http", "IngressRoute/triton/triton-inference-server-ingress-grpc"}
    assert any("h2c" in loc["problem"] for loc in out.evidence["locations"])
    assert gateway.root_path(state, templates).status.value == "fail"


def test_fault6_an_unbound_wildcard_clusterrole_is_reported_target_wide():
    state = corpus.load("nim-operator-wildcard-clusterrole")
    out = rbac.unaudited_roles(state, [])
    assert out.status.value == "fail"
    [loc] = out.evidence["locations"]
    assert loc["object"] == "ClusterRole/nimbuild-admin-role" and loc["path"] == "rules[0].verbs"
    assert "wildcard verbs" in loc["problem"] and "bound to nothing" in out.reason


# ---------------------------------------------------------------- 7. one object per finding, SARIF file and line

def test_fault7_one_object_per_finding_and_sarif_points_at_the_line(tmp_path, monkeypatch):
    monkeypatch.chdir(CHARTS.parents[2])
    target, _ = _workloads(tmp_path, "nim-llm-hostpath-ingress", {"app.kubernetes.io/name": "nim-llm"})
    out = k8s.judge_workloads(target, target.deployments[0], pod.no_host_path)
    assert out.status.value == "fail" and out.subject == "Deployment/nim/my-nim" and "," not in out.subject
    [loc] = out.evidence["locations"]
    rendered = CHARTS / "nim-llm-hostpath-ingress" / "manifests" / "rendered.yaml"
    assert loc["file"] == "tests/fixtures/charts/nim-llm-hostpath-ingress/manifests/rendered.yaml"
    assert "hostPath:" in rendered.read_text().splitlines()[loc["line"] - 1]
    summary = {"target": "t", "results": [{"control": "POD-HOSTPATH-001", "family": "pod-security", "severity": "high",
                                           "deployment": "chart", "subject": out.subject, "status": "fail", "reason": out.reason,
                                           "evidence": json.loads(json.dumps(out.evidence, default=str))}]}
    [result] = build_sarif(summary)["runs"][0]["results"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == loc["file"] and physical["region"]["startLine"] == loc["line"]


def test_fault7_rbac_findings_name_the_role_and_each_becomes_its_own_sarif_result(tmp_path):
    state = corpus.load("nim-operator-wildcard-clusterrole")
    out = k8s.locate(rbac.unaudited_roles(state, []), state)
    summary = {"target": "t", "results": [{"control": "RBAC-UNBOUNDROLE-001", "family": "rbac", "severity": "high", "deployment": "-",
                                           "subject": "ClusterRole/nimbuild-admin-role", "status": "fail", "reason": out.reason,
                                           "evidence": json.loads(json.dumps(out.evidence, default=str))}]}
    [result] = build_sarif(summary)["runs"][0]["results"]
    line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
    text = (CHARTS / "nim-operator-wildcard-clusterrole" / "manifests" / "rendered.yaml").read_text().splitlines()
    assert text[line - 1].strip() == "verbs:" and text[line].strip() == "- '*'"
    assert result["locations"][0]["logicalLocations"][0]["name"] == "ClusterRole/nimbuild-admin-role"


def test_fault7_a_passing_result_names_one_object_too(tmp_path):
    target, w = _workloads(tmp_path, "nim-operator-sample-nimservice", {"app.kubernetes.io/name": "meta-llama3-8b-instruct"})
    assert len(w.templates) == 2  # the NIMService's pod and its NIMCache's caching Job
    out = k8s.judge_workloads(target, target.deployments[0], pod.no_host_path)
    assert out.status.value == "pass" and ", " not in out.subject and out.subject in {t.ref for t in w.templates}
    assert set(out.evidence["objects"]) == {t.ref for t in w.templates}


def test_fault7_live_and_snapshot_findings_keep_logical_locations():
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
            "spec": {"containers": [{"name": "c", "image": "x"}], "volumes": [{"name": "v", "hostPath": {"path": "/"}}]}}
    state = ClusterState("snapshot: s.json", (make_object(body, "s.json items[0]"),))
    out = k8s.locate(pod.no_host_path(pod_templates(state)), state)
    assert "file" not in out.evidence["locations"][0]


def test_fault7_several_findings_are_several_sarif_results_each_on_its_line(monkeypatch):
    monkeypatch.chdir(CHARTS.parents[2])
    state = corpus.load("nim-llm-default")
    out = k8s.locate(pod.read_only_root(pod_templates(state)), state, pod_templates(state))
    summary = {"target": "t", "results": [{"control": "POD-ROROOT-001", "family": "pod-security", "severity": "medium",
                                           "deployment": "chart", "subject": "StatefulSet/nim/my-nim", "status": "fail",
                                           "reason": out.reason, "evidence": json.loads(json.dumps(out.evidence, default=str))}]}
    results = build_sarif(summary)["runs"][0]["results"]
    assert len(results) == 4 and len({r["partialFingerprints"]["nimwardenFinding/v2"] for r in results}) == 4
    assert sorted(r["properties"]["subject"] for r in results)[0] == "Pod/nim/my-nim-nim-llm-test-completions"
    text = (CHARTS / "nim-llm-default" / "manifests" / "rendered.yaml").read_text().splitlines()
    for r in results:  # readOnlyRootFilesystem is missing: each points at its container's securityContext (or the container)
        line = text[r["locations"][0]["physicalLocation"]["region"]["startLine"] - 1]
        assert "securityContext" in line or "- name:" in line, line


def _route_state(listener_protocol: str | None):
    docs = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nim", "namespace": "nim"},
         "spec": {"template": {"metadata": {"labels": {"app": "nim"}}, "spec": {"containers": [{"name": "nim", "image": "x"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nim", "namespace": "nim"}, "spec": {"selector": {"app": "nim"}}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "nim", "namespace": "nim"},
         "spec": {"parentRefs": [{"name": "edge"}], "rules": [{"backendRefs": [{"name": "nim", "port": 8000}],
                                                              "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}]}]}},
    ]
    if listener_protocol:
        docs.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "edge", "namespace": "nim"},
                     "spec": {"listeners": [{"name": "web", "port": 80, "protocol": listener_protocol}]}})
    return ClusterState("manifests: t", tuple(make_object(d, "t") for d in docs))


@pytest.mark.parametrize("protocol, status", [("HTTPS", "pass"), ("HTTP", "fail"), (None, "error")])
def test_fault6_an_httproute_is_judged_through_its_gateway_listener(protocol, status):
    state = _route_state(protocol)
    out = tls.ingress_tls(state, pod_templates(state))
    assert out.status.value == status, out.reason
    if status == "fail":
        assert out.evidence["locations"][0]["object"] == "Gateway/nim/edge" and out.evidence["locations"][0]["path"] == "spec.listeners[0].protocol"
    if status == "error":
        assert "Gateway/nim/edge" in out.reason and "cannot be verified from these manifests" in out.reason
