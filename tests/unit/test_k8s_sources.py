"""Manifests and snapshots load into the one object model, with errors that name file and document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nimwarden.errors import ConfigError
from nimwarden.k8s import load_manifests, load_snapshot, pod_templates, select
from nimwarden.k8s.snapshot import state_to_document

LAB = Path(__file__).parents[2] / "nimwarden" / "lab" / "manifests"


def test_multi_document_file_and_directory(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n---\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: n}\n"
        "spec: {template: {metadata: {labels: {app: x}}, spec: {containers: [{name: c, image: i}]}}}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: s}}\n")
    state = load_manifests([tmp_path])
    assert sorted(o.ref for o in state.objects) == ["Deployment/n/d", "Namespace/n", "Service/default/s"]
    [tpl] = pod_templates(state)
    assert tpl.ref == "Deployment/n/d" and tpl.spec_path == "spec.template.spec"
    assert select([tpl], "n", {"app": "x"}) == [tpl]
    assert select([tpl], "n", {"app": "y"}) == []


@pytest.mark.parametrize(("text", "where", "problem"), [
    ("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: [unclosed\n", "document 1", "invalid YAML"),
    ("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n", "document 1", "has no kind"),
    ("- just\n- a list\n", "document 0", "must be a mapping"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {}\n", "document 0", "has no metadata.name"),
    ("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod}\n", "document 0.items[0]", "has no metadata.name"),
])
def test_errors_name_file_and_document(tmp_path, text, where, problem):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_manifests([f])
    assert exc.value.file == str(f)
    assert exc.value.field == where
    assert problem in exc.value.problem


def test_missing_path_and_empty_directory_are_errors(tmp_path):
    with pytest.raises(ConfigError):
        load_manifests([tmp_path / "nope"])
    with pytest.raises(ConfigError):
        load_manifests([tmp_path])


def test_secret_values_never_enter_the_model(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\ntype: kubernetes.io/dockerconfigjson\n"
                 "stringData:\n  .dockerconfigjson: '{\"auths\": {\"nvcr.io\": {\"password\": \"nvapi-CANARYsecretvalue\"}}}'\n")
    state = load_manifests([f])
    [secret] = state.of_kind("Secret")
    assert "nvapi-CANARY" not in json.dumps(dict(secret.body))
    assert secret.body["registries"] == ["nvcr.io"]
    assert secret.body["dataKeys"] == [".dockerconfigjson"]


def test_snapshot_round_trip_keeps_denied_resources(tmp_path):
    state = load_manifests([LAB / "exposed"])
    doc = state_to_document(state)
    doc["nimwarden"]["denied"] = {"Secret": "missing permission: list secrets (core) cluster-wide"}
    f = tmp_path / "snap.json"
    f.write_text(json.dumps(doc))
    again = load_snapshot([f])
    assert sorted(o.ref for o in again.objects) == sorted(o.ref for o in state.objects)
    assert again.unreadable("Secret", "Pod") == "missing permission: list secrets (core) cluster-wide"


def test_kubectl_typed_list_items_without_kind(tmp_path):
    f = tmp_path / "pods.json"
    f.write_text(json.dumps({"apiVersion": "v1", "kind": "PodList", "items": [{"metadata": {"name": "p", "namespace": "n"},
                                                                               "spec": {"containers": [{"name": "c"}]}}]}))
    [pod] = load_snapshot([f]).objects
    assert pod.ref == "Pod/n/p"


def test_invalid_snapshot_json_is_a_config_error(tmp_path):
    f = tmp_path / "snap.json"
    f.write_text("{not json")
    with pytest.raises(ConfigError) as exc:
        load_snapshot([f])
    assert "invalid JSON" in str(exc.value)


def test_nimservice_is_rendered_with_operator_defaults():
    state = load_manifests([LAB / "exposed"])
    [tpl] = [t for t in pod_templates(state) if t.owner.kind == "NIMService"]
    assert tpl.spec["securityContext"] == {"runAsUser": 1000, "runAsGroup": 2000, "fsGroup": 2000}
    assert tpl.source_path("rendered.spec.volumes[0].hostPath") == "spec.storage.hostPath"
    env = tpl.spec["containers"][0]["env"]
    assert env[0]["valueFrom"]["secretKeyRef"]["name"] == "ngc-api-secret"


def test_controller_owned_pods_are_judged_through_their_controller(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: n\n  ownerReferences: [{kind: ReplicaSet, name: rs, controller: true}]\n"
                 "spec: {containers: [{name: c}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: bare, namespace: n}\nspec: {containers: [{name: c}]}\n")
    assert [t.ref for t in pod_templates(load_manifests([f]))] == ["Pod/n/bare"]
