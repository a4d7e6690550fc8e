"""NeMo resources judged from cluster state (issue 23): the NIM Operator's NeMo resources through what the
operator renders (pod, Service, ServiceAccount, Role, RoleBinding, Ingress, HTTPRoute), the NeMo Platform
chart's workloads, the nemo family's NEMO-SPEC-* controls (good, bad and broken cases), and discovery.

Fixtures: tests/fixtures/nemo (our own files in the shape of the operator's config/samples/nemo and of the
platform chart's `helm template` output); expected verdicts per object per control, and where findings point
(file and line), in tests/fixtures/nemo/expected.yaml.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nimwarden.families import load_profile
from nimwarden.families.nemo import spec_judge
from nimwarden.families.pod_security import judge as pod
from nimwarden.families.ports import k8s_judge as ports
from nimwarden.families.rbac import judge as rbac
from nimwarden.families.secrets import judge as secrets
from nimwarden.families.tls import k8s_judge as tls
from nimwarden.k8s import source as k8s
from nimwarden.k8s.discovery import discover
from nimwarden.k8s.manifests import load_manifests
from nimwarden.k8s.model import ClusterState, make_object
from nimwarden.k8s.nemo import NEMO_CR_KINDS
from nimwarden.k8s.profile_yaml import ProfileSource, render_profile
from nimwarden.k8s.resources import BY_KIND
from nimwarden.k8s.snapshot import load_snapshot
from nimwarden.k8s.workloads import pod_templates

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "nemo"
EXPECTED = yaml.safe_load((FIXTURES / "expected.yaml").read_text(encoding="utf-8"))
CASES = sorted(EXPECTED["cases"])
JUDGES = {
    "NEMO-SPEC-AUTH-001": spec_judge.platform_auth, "NEMO-SPEC-EXPOSE-001": spec_judge.not_published,
    "NEMO-SPEC-NETPOL-001": spec_judge.isolated,
    "POD-NONROOT-001": lambda s, t: pod.non_root(t), "POD-PRIVESC-001": lambda s, t: pod.no_privilege_escalation(t),
    "SECRETS-LITERAL-001": lambda s, t: secrets.literal_secrets(t), "SECRETS-CONNSTR-001": lambda s, t: secrets.connection_strings(t),
    "SECRETS-PULL-001": secrets.pull_secrets, "RBAC-WILDCARD-001": rbac.wildcards, "RBAC-SECRETS-001": rbac.secrets_cluster_wide,
    "PORTS-K8SEXPOSE-001": ports.services, "TLS-K8SROUTE-001": tls.ingress_tls,
}


def load(case: str) -> ClusterState:
    return load_manifests([(FIXTURES / case, EXPECTED["cases"][case]["namespace"])])


def judged(case: str):
    """{object: {control: located Outcome}}: each workload alone, as a deployment selecting only it is judged."""
    state = load(case)
    out = {}
    for tpl in pod_templates(state):
        out[tpl.ref] = {c: k8s.locate(j(state, [tpl]), state, [tpl]) for c, j in JUDGES.items()}
    return out


@pytest.mark.parametrize("case", CASES)
def test_verdicts_per_object_per_control(case):
    assert EXPECTED["controls"] == list(JUDGES)
    got = {ref: {c: o.status.value for c, o in row.items()} for ref, row in judged(case).items()}
    assert got == EXPECTED["cases"][case]["objects"]


FINDINGS = [(case, f) for case in CASES for f in EXPECTED["cases"][case].get("findings") or ()]


@pytest.mark.parametrize("case, finding", FINDINGS, ids=[f"{c}-{f['control']}-{f['object']}" for c, f in FINDINGS])
def test_findings_point_at_file_and_line(case, finding):
    located = [loc for row in judged(case).values() for loc in row[finding["control"]].evidence.get("locations") or ()
               if loc["object"] == finding["object"] and loc["path"] == finding["path"] and finding["says"] in loc["problem"]]
    assert located, f"no {finding['control']} finding on {finding['object']} {finding['path']} saying {finding['says']!r}"
    loc = located[0]
    assert loc["file"] == f"tests/fixtures/nemo/{case}/{finding['file']}" and loc["line"] == finding["line"]
    line = (FIXTURES / case / finding["file"]).read_text().splitlines()[loc["line"] - 1]
    assert line.strip() and not line.lstrip().startswith("#")


# ----------------------------------------------------------------------------------- nothing NeMo is "not judged"


@pytest.mark.parametrize("case", CASES)
def test_nothing_nemo_is_left_unjudged(case):
    state = load(case)
    assert k8s.inventory(state)["not_judged"] == {}
    crs = [o.ref for kind in NEMO_CR_KINDS for o in state.of_kind(kind)]
    assert all(any(t.ref == ref for t in pod_templates(state)) for ref in crs)


def test_the_operator_kinds_are_read_live_and_granted():
    role = next(d for d in yaml.safe_load_all((ROOT / "deploy/k8s/rbac-read.yaml").read_text()) if d["kind"] == "ClusterRole")
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] if "list" in rule["verbs"]}
    for kind in NEMO_CR_KINDS:
        res = BY_KIND[kind]
        assert (res.group, res.plural) in granted and res.group == "apps.nvidia.com" and res.optional


# ----------------------------------------------------------------------------------- the rendering


def test_the_operator_renders_the_ports_its_source_names():
    state = load("operator/compliant")
    ports_of = {t.owner.kind: [(p["name"], p["containerPort"]) for p in t.spec["containers"][0]["ports"]] for t in pod_templates(state)}
    assert ports_of == {"NemoDatastore": [("api", 3000)], "NemoEntitystore": [("api", 8000)], "NemoEvaluator": [("api", 7331)],
                        "NemoCustomizer": [("api", 8000), ("internal", 9009)], "NemoGuardrail": [("api", 8000)]}
    svc = {s.name: [(p["name"], p["port"], p["targetPort"]) for p in s.spec["ports"]] for s in state.of_kind("Service")}
    assert svc["customizer"] == [("api", 8000, "api"), ("internal", 9009, "internal")]
    assert svc["evaluator"] == [("api", 7331, "api")] and svc["datastore"] == [("api", 8000, "api")]
    assert state.get("Service", "nemo-hardened", "datastore").spec["selector"] == {
        "app.kubernetes.io/name": "datastore", "app.kubernetes.io/instance": "datastore"}


def test_pod_identity_as_the_controllers_set_it():
    by = {t.owner.kind: t for t in pod_templates(load("operator/noncompliant"))}
    assert by["NemoDatastore"].spec["securityContext"] == {"fsGroup": 1000}  # its controller replaces the pod securityContext
    assert by["NemoEntitystore"].spec["securityContext"] == {"runAsUser": 1000, "runAsGroup": 2000, "fsGroup": 2000}
    evaluator = by["NemoEvaluator"]
    assert evaluator.spec["securityContext"]["runAsUser"] == 0
    assert evaluator.source_path("rendered.spec.securityContext.runAsUser") == "spec.userID"
    assert evaluator.owner.line_of(evaluator.source_path("rendered.spec.securityContext.runAsUser")) == 13  # `userID: 0`
    assert all(t.spec["serviceAccountName"] == t.owner.name for t in by.values())
    assert [c["name"] for c in evaluator.spec["initContainers"]] == ["wait-for-postgres", "evaluator-db-migration"]
    assert "initContainers" not in by["NemoGuardrail"].spec or by["NemoGuardrail"].spec["initContainers"] == []  # no database


def test_database_credentials_are_references_and_a_cr_env_wins():
    by = {t.owner.kind: t for t in pod_templates(load("operator/compliant"))}
    env = {e["name"]: e for e in by["NemoEvaluator"].spec["containers"][0]["env"]}
    assert env["POSTGRES_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "evaluator-pg", "key": "password"}
    assert env["POSTGRES_URI"]["valueFrom"]["secretKeyRef"] == {"name": "evaluator", "key": "uri"}  # the Secret the operator writes
    migration = {e["name"]: e for e in by["NemoEvaluator"].spec["initContainers"][1]["env"]}
    assert "valueFrom" in migration["POSTGRES_DB_PASSWORD"]
    noncompliant = {t.owner.kind: t for t in pod_templates(load("operator/noncompliant"))}
    ds_env = [e for e in noncompliant["NemoDatastore"].spec["containers"][0]["env"] if e["name"] == "GITEA__DATABASE__PASSWD"]
    assert ds_env == [{"name": "GITEA__DATABASE__PASSWD", "value": "nds-Passw0rd-2026"}]  # MergeEnvVars: the CR's entry only


def test_roles_bindings_and_accounts_the_operator_creates():
    state = load("operator/compliant")
    evaluator = state.get("Role", "nemo-hardened", "evaluator")
    assert {"apiGroups": [""], "resources": ["secrets", "pods"], "verbs": ["get", "watch", "list", "create"]} in evaluator.body["rules"]
    customizer = state.get("Role", "nemo-hardened", "customizer")
    assert any("batch.volcano.sh" in r["apiGroups"] for r in customizer.body["rules"])  # scheduler.type volcano
    binding = state.get("RoleBinding", "nemo-hardened", "datastore")
    assert binding.body["subjects"] == [{"kind": "ServiceAccount", "name": "datastore", "namespace": "nemo-hardened"}]
    assert state.get("ServiceAccount", "nemo-hardened", "guardrails").rendered_from == "NemoGuardrail/nemo-hardened/guardrails"
    found, unresolved = rbac.grants(state, "nemo-hardened", "evaluator")
    assert not unresolved and any(g.role == "Role/nemo-hardened/evaluator" for g in found)


def test_routes_the_operator_creates():
    state = load("operator/noncompliant")
    ing = state.get("Ingress", "nemo-exposed", "entitystore")
    assert ing.spec["rules"][0]["host"] == "entitystore.nemo-exposed.nemo.example.com" and "tls" not in ing.spec
    route = state.get("HTTPRoute", "nemo-exposed", "evaluator")
    assert route.spec["parentRefs"] == [{"name": "public", "namespace": "gateways"}]
    assert route.spec["rules"][0]["backendRefs"] == [{"name": "evaluator", "port": 7331}]
    assert state.get("Ingress", "nemo-exposed", "guardrails").spec["rules"][0]["host"] == "guardrails.nemo.example.com"
    variants = load("operator/variants")
    authed = variants.get("Ingress", "nemo-variants", "datastore")
    assert authed.annotations["nginx.ingress.kubernetes.io/auth-url"].startswith("https://oauth2-proxy")
    assert authed.spec["tls"] == [{"hosts": ["datastore.nemo-variants.nemo.example.com"], "secretName": "nemo-example-com-tls"}]


def test_rendered_objects_are_no_read_objects_and_real_ones_replace_them():
    state = load("operator/compliant")
    assert {o.kind for o in state.objects} == {*NEMO_CR_KINDS, "NetworkPolicy", "Namespace"}
    assert len(state.of_kind("Service")) == 5 and state.summary()["objects"].get("Service") is None
    # a live read holds the operator's own Deployment and Service: those are judged, nothing is rendered twice
    cr = state.get("NemoDatastore", "nemo-hardened", "datastore")
    owner = [{"apiVersion": "apps.nvidia.com/v1alpha1", "kind": "NemoDatastore", "name": "datastore", "controller": True}]
    deployment = make_object({"apiVersion": "apps/v1", "kind": "Deployment",
                              "metadata": {"name": "datastore", "namespace": "nemo-hardened", "ownerReferences": owner},
                              "spec": {"selector": {"matchLabels": {"app": "datastore"}}, "template": {
                                  "metadata": {"labels": {"app": "datastore", "app.kubernetes.io/name": "datastore",
                                                          "app.kubernetes.io/instance": "datastore"}},
                                  "spec": {"containers": [{"name": "datastore-ctr", "image": "nvcr.io/nvidia/nemo-microservices/datastore:25.08",
                                                           "securityContext": {"runAsNonRoot": True}}]}}}}, "live")
    service = make_object({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "datastore", "namespace": "nemo-hardened"},
                           "spec": {"type": "LoadBalancer", "selector": {"app": "datastore"}, "ports": [{"port": 3000}]}}, "live")
    live = ClusterState("live: test", (cr, deployment, service))
    assert [t.ref for t in pod_templates(live)] == ["Deployment/nemo-hardened/datastore"]
    assert live.of_kind("Service") == [service] and live.get("Role", "nemo-hardened", "datastore").rendered_from
    out = spec_judge.not_published(live, pod_templates(live))
    assert out.status.value == "fail" and "Service/nemo-hardened/datastore" in out.reason  # found by its owner reference


def test_the_network_policy_model_sees_the_rendered_pods():
    from nimwarden.k8s.network import inventory_from_state

    inv = inventory_from_state(load("operator/compliant"))
    pod_keys = {p.key for p in inv.pods}
    assert {"nemo-hardened/NemoDatastore-datastore", "nemo-hardened/NemoCustomizer-customizer"} <= pod_keys
    labels = inv.pod("nemo-hardened/NemoGuardrail-guardrails").labels
    assert labels["app"] == "guardrails" and labels["app.kubernetes.io/managed-by"] == "k8s-nim-operator"


# ----------------------------------------------------------------------------------- good, bad, broken per control


def _platform(case: str, name: str):
    state = load(case)
    return state, [t for t in pod_templates(state) if t.owner.name == name]


def test_auth_good_bad_broken():
    assert spec_judge.platform_auth(*_platform("platform/auth-on", "nemo-platform-api")).status.value == "pass"
    bad = spec_judge.platform_auth(*_platform("platform/auth-off", "nmp-nemo-platform-api"))
    assert bad.status.value == "fail" and bad.severity == "critical"
    assert bad.evidence["platforms"][0]["auth.enabled"] is False
    broken = spec_judge.platform_auth(*_platform("platform/broken", "missing-config"))
    assert broken.status.value == "error" and "not-rendered-config" in broken.reason
    state, templates = _platform("platform/auth-on", "nemo-platform-api")
    denied = ClusterState(state.source, tuple(o for o in state.objects if o.kind != "ConfigMap"), {"ConfigMap": "forbidden: list configmaps"})
    out = spec_judge.platform_auth(denied, templates)
    assert out.status.value == "error" and "forbidden: list configmaps" in out.reason


def test_auth_for_legacy_services_says_what_stands_in_for_it():
    state = load("operator/compliant")
    out = spec_judge.platform_auth(state, pod_templates(state))
    assert out.status.value == "not_applicable" and "NEMO-SPEC-EXPOSE-001" in out.reason


@pytest.mark.parametrize("judge, kind", [(spec_judge.not_published, "Service"), (spec_judge.isolated, "NetworkPolicy")])
def test_expose_and_netpol_error_when_the_state_cannot_be_read(judge, kind):
    state = load("operator/compliant")
    assert judge(state, pod_templates(state)).status.value == "pass"
    assert judge(load("operator/noncompliant"), pod_templates(load("operator/noncompliant"))).status.value == "fail"
    denied = ClusterState(state.source, state.objects, {kind: f"forbidden: list {kind.lower()}s"})
    out = judge(denied, pod_templates(denied))
    assert out.status.value == "error" and f"forbidden: list {kind.lower()}s" in out.reason


def test_auth_from_a_snapshot_reads_the_switch_and_refuses_a_redacted_value(tmp_path):
    import json

    from nimwarden.k8s.snapshot import state_to_document

    state = load("platform/overrides")
    path = tmp_path / "snap.json"
    text = json.dumps(state_to_document(state), indent=1)
    path.write_text(text)
    assert '"NMP_AUTH_ENABLED"' in text and '"value": "false"' in text  # a switch is no secret: kept readable
    snap = load_snapshot([path])
    templates = [t for t in pod_templates(snap) if t.owner.name == "env-off"]
    assert spec_judge.platform_auth(snap, templates).status.value == "fail"
    raw = text.replace('"value": "false"', '"value": "fa[sha256:0123abcd]"')
    path.write_text(raw)
    redacted = load_snapshot([path])
    out = spec_judge.platform_auth(redacted, [t for t in pod_templates(redacted) if t.owner.name == "env-off"])
    assert out.status.value == "error" and "redacted" in out.reason


# ----------------------------------------------------------------------------------- discovery


def test_discovery_finds_the_operator_resources_with_their_endpoints():
    d = discover(load("operator/noncompliant"))
    by = {f.name: f for f in d.found}
    assert {(f.name, f.kind) for f in d.found} == {(n, "nemo") for n in ("datastore", "entitystore", "customizer", "evaluator", "guardrails")}
    ds = by["datastore"]
    assert [(w.type, [(p.endpoint, p.port) for p in w.ports]) for w in ds.ways] == [("LoadBalancer", [("nemo_datastore", 3000)])]
    assert [(p.endpoint, p.port) for p in by["customizer"].ways[0].ports] == [("nemo_customizer", 8000)]
    assert any("9009" in n for n in by["customizer"].notes)
    assert [(f.host, f.tls) for f in by["entitystore"].fronts] == [("entitystore.nemo-exposed.nemo.example.com", False)]
    assert by["evaluator"].selector == {"app.kubernetes.io/name": "evaluator"}


def test_discovery_finds_the_platform_and_its_gateway_and_writes_a_valid_profile(tmp_path):
    d = discover(load("platform/auth-on"))
    [platform] = d.found  # the controller serves no API and the Envoy proxy is found with the API
    assert (platform.name, platform.kind, platform.ref) == ("nemo-platform-api", "nemo", "Deployment/nemo-platform/nemo-platform-api")
    assert [(p.endpoint, p.port) for w in platform.ways for p in w.ports] == [("nemo", 8080), ("nemo_gateway", 8080)]
    text, _ = render_profile(d, name="nemo", position="cluster-internal", source=ProfileSource("manifests", (str(FIXTURES / "platform/auth-on"),)))
    profile = tmp_path / "nemo.yaml"
    profile.write_text(text)
    target = load_profile(profile)
    [dep] = target.deployments
    # only the fronts may answer: the chart's Ingress (TLS, in front of the Envoy proxy) and the proxy itself
    assert dep.kind == "nemo" and tuple(dep.exposure) == ("gateway", "gateway_http", "nemo_gateway")
    assert dep.endpoint("nemo").url == "http://nemo-platform-api.nemo-platform.svc.cluster.local:8080"
    assert dep.endpoint("nemo_gateway").url == "http://nemo-platform-envoy.nemo-platform.svc.cluster.local:8080"


def test_discovery_of_a_platform_without_gateway_allows_no_exposure(tmp_path):
    d = discover(load("platform/auth-off"))
    text, _ = render_profile(d, name="nemo", position="cluster-internal", source=ProfileSource("manifests", ("x",)))
    assert "exposure: []" in text and "      nemo: " in text
    found = discover(load("platform/overrides"))
    assert {f.name for f in found.found} == {"env-off", "unsigned", "env-on"}  # by image, and by `nemo services run`
    assert "nemo services run" in next(f for f in found.found if f.name == "env-on").why


def test_live_discovery_and_audit_read_the_operator_kinds(tmp_path):
    """Through the real kubernetes client against the replay server (a TEST DOUBLE): the NeMo CRs are listed
    with get/list only, discovered, and the audit's live read judges what the operator renders; a denied
    NeMo kind is said, not hidden."""
    from nimwarden import cli
    from nimwarden.k8s.live import client_configuration, read_cluster
    from tests.k8s_replay import ReplayServer, load_objects

    objects = load_objects(*sorted((FIXTURES / "operator" / "noncompliant").glob("*.yaml")))
    with ReplayServer(objects) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kc")
        out = tmp_path / "p.yaml"
        assert cli.main(["discover", "--kubeconfig", str(kubeconfig), "--out", str(out)]) == 0
        state = read_cluster(client_configuration(kubeconfig, None), timeout_s=5)
        paths = [p for m, p in server.requests]
    assert all(m == "GET" for m, _ in server.requests)
    assert any(p.startswith("/apis/apps.nvidia.com/v1alpha1/nemodatastores") for p in paths)
    assert {d.name: d.kind for d in load_profile(out).deployments} == {n: "nemo" for n in ("datastore", "entitystore", "customizer", "evaluator", "guardrails")}
    assert spec_judge.not_published(state, pod_templates(state)).status.value == "fail"
    with ReplayServer(objects, deny={("nemoguardrails", None)}) as server:
        denied = read_cluster(client_configuration(server.kubeconfig(tmp_path / "kc2"), None), timeout_s=5)
    assert "NemoGuardrail" in denied.denied and denied.of_kind("NemoGuardrail") == []
