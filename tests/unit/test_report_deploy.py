"""The harness audits its own in-cluster manifests (deploy/k8s) with its own judges.

The default set (CronJob, ServiceAccount, read-only RBAC) must pass the
restricted pod-security and RBAC controls; the opt-ins are shown to be exactly
as strong as documented (namespaced secrets read, probe pods that exec).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nimwarden.families.pod_security import judge as ctx
from nimwarden.families.rbac import judge as rbac
from nimwarden.families.secrets import judge as sec
from nimwarden.k8s import load_manifests, pod_templates
from nimwarden.k8s.resources import RESOURCES
from nimwarden.outcome import Status

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
# exactly what `kubectl apply -k deploy/k8s` deploys
DEFAULT_FILES = [DEPLOY / f for f in yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]]
OPT_IN = DEPLOY / "opt-in"


def _state(*extra):
    state = load_manifests([*DEFAULT_FILES, *extra])
    return state, pod_templates(state, "nimwarden")


def test_the_audit_pod_is_the_cronjob_and_the_directory_loads_as_a_manifest_source():
    _, templates = _state()
    assert [t.ref for t in templates] == ["CronJob/nimwarden/nimwarden-nightly"]
    assert {p.name for p in DEPLOY.glob("*.yaml")} == {p.name for p in DEFAULT_FILES} | {"kustomization.yaml"}
    assert pod_templates(load_manifests([DEPLOY]), "nimwarden")[0].ref == "CronJob/nimwarden/nimwarden-nightly"


@pytest.mark.parametrize(
    "judge",
    [ctx.pss, ctx.non_root, ctx.seccomp, ctx.no_privilege_escalation, ctx.capabilities, ctx.read_only_root,
     ctx.no_host_path, sec.literal_secrets, sec.connection_strings],
    ids=lambda j: j.__name__,
)
def test_pod_passes_its_own_pod_security_controls(judge):
    _, templates = _state()
    outcome = judge(templates)
    assert outcome.status == Status.PASS, outcome.reason


@pytest.mark.parametrize(
    "judge",
    [rbac.wildcards, rbac.secrets_cluster_wide, rbac.pod_exec, rbac.escalation_verbs, rbac.cluster_admin,
     sec.configmap_secrets],
    ids=lambda j: j.__name__,
)
def test_default_rbac_passes_its_own_rbac_controls(judge):
    outcome = judge(*_state())
    assert outcome.status == Status.PASS, outcome.reason


def test_api_token_is_declared_not_defaulted():
    state, templates = _state()
    # automount is off; the annotation only counts when the profile opts in to honouring annotations
    assert rbac.automount_token(state, templates).status == Status.PASS
    assert rbac.automount_token(state, templates, honor_annotation=True).status == Status.NOT_APPLICABLE
    spec = templates[0].spec
    assert spec["automountServiceAccountToken"] is False  # no default, long-lived token
    (token,) = [v for v in spec["volumes"] if v["name"] == "api-token"]
    (source,) = [s["serviceAccountToken"] for s in token["projected"]["sources"] if "serviceAccountToken" in s]
    assert source["expirationSeconds"] <= 3600


def test_namespace_enforces_restricted():
    state, _ = _state()
    outcome = ctx.namespace_labels("nimwarden", state.get("Namespace", None, "nimwarden"))
    assert outcome.status == Status.PASS, outcome.reason


def test_read_role_is_get_list_only_and_covers_exactly_what_the_reader_lists():
    (role,) = [d for d in yaml.safe_load_all((DEPLOY / "rbac-read.yaml").read_text()) if d["kind"] == "ClusterRole"]
    granted = set()
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list"}, rule
        granted |= {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
    from nimwarden.k8s.discovery import discovery_resources

    wanted = {(r.group, r.plural) for r in (*RESOURCES, *discovery_resources()) if r.kind != "Secret"}
    assert granted == wanted
    assert ("", "secrets") not in granted


def test_secrets_opt_in_is_namespaced_and_read_only():
    state, templates = _state(OPT_IN / "rbac-read-secrets.yaml")
    assert rbac.secrets_cluster_wide(state, templates).status == Status.PASS
    (role,) = [d for d in yaml.safe_load_all((OPT_IN / "rbac-read-secrets.yaml").read_text()) if d["kind"] == "Role"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]


def test_host_exec_opt_in_is_flagged_by_rbac_exec_as_documented():
    state, templates = _state(OPT_IN / "rbac-host-exec.yaml")
    outcome = rbac.pod_exec(state, templates)
    assert outcome.status == Status.FAIL and "Role/nim/nimwarden-host-exec" in outcome.reason
    assert rbac.wildcards(state, templates).status == Status.PASS
    assert rbac.escalation_verbs(state, templates).status == Status.PASS
