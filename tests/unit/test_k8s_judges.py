"""Kubernetes judges against the lab manifests (hardened passes, exposed fails) and edge cases."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from nimwarden.families.gateway import k8s_judge as gateway_k8s
from nimwarden.families.pod_security import judge as ctx
from nimwarden.families.ports import k8s_judge as ports_k8s
from nimwarden.families.rbac import judge as rbac
from nimwarden.families.secrets import judge as sec
from nimwarden.families.tls import k8s_judge as tls_k8s
from nimwarden.families.triton_api import spec_judge as flags
from nimwarden.k8s import load_manifests, pod_templates
from nimwarden.k8s.model import ClusterState, make_object
from nimwarden.outcome import Status

LAB = Path(__file__).parents[2] / "nimwarden" / "lab" / "manifests"


def _lab(name):
    state = load_manifests([LAB / name])
    return state, pod_templates(state)


HARDENED, EXPOSED = _lab("hardened"), _lab("exposed")

TEMPLATE_JUDGES = {
    "pss": ctx.pss, "non_root": ctx.non_root, "seccomp": ctx.seccomp, "privesc": ctx.no_privilege_escalation,
    "capabilities": ctx.capabilities, "read_only_root": ctx.read_only_root, "model_ro": ctx.model_volumes_read_only,
    "gpu": ctx.gpu_without_privilege, "hostpath": ctx.no_host_path,
    "modelctl": flags.model_control, "restricted": flags.restricted_apis, "metrics": flags.metrics, "trace": flags.tracing,
    "cloud": flags.cloud_endpoints, "exit": flags.exit_on_error, "ready": flags.strict_readiness,
    "autocomplete": flags.auto_complete_config, "grpc_tls": flags.grpc_tls,
    "literal": sec.literal_secrets, "connstr": sec.connection_strings,
}
STATE_JUDGES = {
    "configmap": sec.configmap_secrets, "pull": sec.pull_secrets,
    "wildcard": rbac.wildcards, "secrets_cw": rbac.secrets_cluster_wide, "exec": rbac.pod_exec,
    "escalate": rbac.escalation_verbs, "cluster_admin": rbac.cluster_admin, "automount": rbac.automount_token,
    "services": ports_k8s.services, "ingress_tls": tls_k8s.ingress_tls, "root_path": gateway_k8s.root_path,
}


@pytest.mark.parametrize("name", list(TEMPLATE_JUDGES))
def test_template_judges_on_lab(name):
    judge = TEMPLATE_JUDGES[name]
    assert judge(HARDENED[1]).status == Status.PASS, judge(HARDENED[1]).reason
    bad = judge(EXPOSED[1])
    assert bad.status == Status.FAIL
    assert "Deployment/nim-exposed/triton-exposed" in bad.reason or "NIMService/nim-exposed" in bad.reason


@pytest.mark.parametrize("name", list(STATE_JUDGES))
def test_state_judges_on_lab(name):
    judge = STATE_JUDGES[name]
    good = judge(*HARDENED)
    assert good.status == Status.PASS, good.reason
    assert judge(*EXPOSED).status == Status.FAIL


DENIED_FOR = {"configmap": "ConfigMap", "pull": "Secret", "wildcard": "ClusterRoleBinding", "secrets_cw": "ClusterRole",
              "exec": "Role", "escalate": "RoleBinding", "cluster_admin": "ClusterRoleBinding", "automount": "ServiceAccount",
              "services": "Service", "ingress_tls": "Ingress", "root_path": "Service"}


@pytest.mark.parametrize("name", list(STATE_JUDGES))
def test_denied_resource_is_an_error_naming_the_permission(name):
    kind = DENIED_FOR[name]
    state, templates = HARDENED
    denied = ClusterState(state.source, state.objects, {kind: f"missing permission: list {kind.lower()}s cluster-wide"})
    out = STATE_JUDGES[name](denied, templates)
    assert out.status == Status.ERROR
    assert "missing permission" in out.reason


def test_findings_name_object_container_and_field_path():
    out = ctx.pss(EXPOSED[1])
    assert "Deployment/nim-exposed/triton-exposed → tritonserver: spec.template.spec.containers[0].securityContext.privileged" in out.evidence["findings"][0]
    nim = [f for f in out.evidence["findings"] if f.startswith("NIMService/")]
    assert any("spec.storage.hostPath" in f for f in nim), nim


def test_sys_admin_is_critical_and_each_capability_reported():
    out = ctx.capabilities(EXPOSED[1])
    assert out.severity == "critical"
    text = " ".join(out.evidence["findings"])
    assert "adds capability SYS_ADMIN" in text and "adds capability NET_RAW" in text


def test_operator_default_nimservice_fails_restricted_but_not_baseline():
    state = load_manifests([LAB / "exposed" / "60-nimservice.yaml"])
    templates = pod_templates(state)
    restricted = ctx.pss(templates, "restricted")
    assert restricted.status == Status.FAIL
    assert any("runAsNonRoot" in f for f in restricted.evidence["findings"])
    baseline = ctx.pss(templates, "baseline")
    assert baseline.status == Status.FAIL  # hostPath model cache
    assert all("hostPath" in f for f in baseline.evidence["findings"])


def test_namespace_labels():
    hardened_ns = HARDENED[0].get("Namespace", None, "nim-hardened")
    exposed_ns = EXPOSED[0].get("Namespace", None, "nim-exposed")
    assert ctx.namespace_labels("nim-hardened", hardened_ns, "restricted").status == Status.PASS
    out = ctx.namespace_labels("nim-exposed", exposed_ns, "baseline")
    assert out.status == Status.FAIL and out.severity == "high"
    assert ctx.namespace_labels("gone", None).status == Status.ERROR


def test_no_secret_value_appears_in_any_outcome():
    for judge in (sec.literal_secrets, sec.connection_strings):
        text = json.dumps(judge(EXPOSED[1]).evidence) + judge(EXPOSED[1]).reason
        assert "CANARY1111" not in text and "CANARYaaaa" not in text and "CANARYpassw0rd" not in text
    text = json.dumps(sec.configmap_secrets(*EXPOSED).evidence)
    assert "CANARY0000" not in text
    assert "[sha256:" in text


def _state(*docs):
    return ClusterState("test", tuple(make_object(d, "test") for d in docs))


def _deploy(container, **pod):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"},
            "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [container], **pod}}}}


def test_triton_flags_inside_a_shell_command_and_space_separated_values():
    c = {"name": "t", "command": ["/bin/sh", "-c"], "args": ["exec /opt/tritonserver/bin/tritonserver --model-control-mode explicit --allow-metrics=false"]}
    templates = pod_templates(_state(_deploy(c)))
    assert flags.model_control(templates).status == Status.FAIL
    assert flags.metrics(templates).status == Status.PASS


def test_triton_flags_not_applicable_without_tritonserver():
    templates = pod_templates(_state(_deploy({"name": "nim", "image": "nvcr.io/nim/x:1"})))
    assert flags.model_control(templates).status == Status.NOT_APPLICABLE


def test_env_reference_is_not_a_literal_secret():
    c = {"name": "t", "env": [{"name": "API_TOKEN", "value": "$(OTHER)"}, {"name": "MODE", "value": "fast"}]}
    assert sec.literal_secrets(pod_templates(_state(_deploy(c)))).status == Status.PASS


def test_secret_age_policy():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k", "namespace": "n", "creationTimestamp": "2026-01-01T00:00:00Z"},
              "data": {"K": "eA=="}}
    c = {"name": "t", "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "k", "key": "K"}}}]}
    state = _state(secret, _deploy(c))
    templates = pod_templates(state)
    now = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
    assert sec.secret_age(state, templates, 90, now).status == Status.FAIL
    assert sec.secret_age(state, templates, 400, now).status == Status.PASS
    rotated = {**secret, "metadata": {**secret["metadata"], "managedFields": [
        {"manager": "rotator", "operation": "Update", "time": "2026-11-01T00:00:00Z", "fieldsV1": {"f:data": {"f:K": {}}}},
        {"manager": "kubectl", "operation": "Update", "time": "2026-11-20T00:00:00Z", "fieldsV1": {"f:metadata": {}}}]}}
    state = _state(rotated, _deploy(c))
    assert sec.secret_age(state, pod_templates(state), 90, now).status == Status.PASS  # data rewritten 21 days ago
    no_age = _state({**secret, "metadata": {"name": "k", "namespace": "n"}}, _deploy(c))
    assert sec.secret_age(no_age, pod_templates(no_age), 90, now).status == Status.NOT_APPLICABLE


def test_unresolvable_role_binding_is_an_error():
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "b", "namespace": "n"},
               "roleRef": {"kind": "ClusterRole", "name": "mystery"}, "subjects": [{"kind": "ServiceAccount", "name": "default"}]}
    state = _state(binding, _deploy({"name": "t"}))
    assert rbac.wildcards(state, pod_templates(state)).status == Status.ERROR


def test_group_binding_to_builtin_edit_grants_exec_and_secrets():
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
               "roleRef": {"kind": "ClusterRole", "name": "edit"}, "subjects": [{"kind": "Group", "name": "system:serviceaccounts:n"}]}
    state = _state(binding, _deploy({"name": "t"}))
    templates = pod_templates(state)
    assert rbac.pod_exec(state, templates).status == Status.FAIL
    assert rbac.secrets_cluster_wide(state, templates).status == Status.FAIL


def test_snapshot_is_redacted_yet_still_judged(tmp_path):
    from nimwarden.k8s import load_snapshot
    from nimwarden.k8s.snapshot import state_to_document

    state, templates = EXPOSED
    f = tmp_path / "snap.json"
    f.write_text(json.dumps(state_to_document(state)))
    text = f.read_text()
    for canary in ("CANARY1111", "CANARYaaaa", "CANARYpassw0rd", "CANARY0000", "CANARYadminKey"):
        assert canary not in text, canary
    offline = load_snapshot([f])
    offline_templates = pod_templates(offline)
    for judge, args, live_args in ((sec.literal_secrets, (offline_templates,), (templates,)),
                                   (sec.connection_strings, (offline_templates,), (templates,)),
                                   (sec.configmap_secrets, (offline, offline_templates), (state, templates))):
        offline_out, direct = judge(*args), judge(*live_args)
        assert offline_out.status == Status.FAIL
        assert offline_out.evidence["findings"] == direct.evidence["findings"]


@pytest.mark.parametrize("name", list(TEMPLATE_JUDGES) + list(STATE_JUDGES))
def test_report_redaction_leaves_findings_readable(name):
    """The report redacts every string; our reasons must already be safe, so it changes nothing."""
    from nimwarden.redact import redact

    judge = TEMPLATE_JUDGES.get(name) or STATE_JUDGES[name]
    out = judge(EXPOSED[1]) if name in TEMPLATE_JUDGES else judge(*EXPOSED)
    assert redact(out.reason) == out.reason
    assert redact(list(out.evidence.get("findings", []))) == list(out.evidence.get("findings", []))


CANARIES = ("CANARY1111", "CANARYaaaa", "CANARYpassw0rd", "CANARY0000", "CANARYadminKey")


@pytest.mark.parametrize("name", list(TEMPLATE_JUDGES) + list(STATE_JUDGES))
def test_no_canary_secret_in_any_outcome(name):
    judge = TEMPLATE_JUDGES.get(name) or STATE_JUDGES[name]
    out = judge(EXPOSED[1]) if name in TEMPLATE_JUDGES else judge(*EXPOSED)
    text = out.reason + json.dumps(out.evidence, default=str)
    assert not [c for c in CANARIES if c in text]


def test_nimservice_literal_env_secret_points_at_the_cr_field():
    nim = {"apiVersion": "apps.nvidia.com/v1alpha1", "kind": "NIMService", "metadata": {"name": "llm", "namespace": "n"},
           "spec": {"image": {"repository": "nvcr.io/nim/x", "tag": "1"}, "authSecret": "ngc",
                    "env": [{"name": "HF_TOKEN", "value": "hf_CANARYbbbbbbbbbbbbbbbbbbbbbb"}]}}
    out = sec.literal_secrets(pod_templates(_state(nim)))
    assert out.status == Status.FAIL
    assert "NIMService/n/llm → llm: spec.env[0].value — literal HF_TOKEN=hf…bb[sha256:" in out.reason
    assert "CANARYbbbb" not in out.reason
