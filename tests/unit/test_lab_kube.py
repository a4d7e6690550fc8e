"""The lab's Kubernetes parts that need no server: its CRDs against the harness's resource table, the applier's
reading of manifests, the lab node's pod status, the control plane's client certificates."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from nimwarden.k8s.discovery import discovery_resources
from nimwarden.k8s.resources import RESOURCES
from nimwarden.lab.kube.apply import ApplyError, crd_documents, load_documents
from nimwarden.lab.kube.certs import make_pki
from nimwarden.lab.kube.pods import Container, PodRun, pod_status

ROOT = Path(__file__).resolve().parents[2]


def _crds() -> dict[tuple[str, str, str], dict]:
    out = {}
    for d in crd_documents():
        if d.kind != "CustomResourceDefinition":
            continue
        spec = d.body["spec"]
        for v in spec["versions"]:
            out[(spec["group"], v["name"], spec["names"]["plural"])] = {"scope": spec["scope"], "kind": spec["names"]["kind"], "version": v}
    return out


def test_every_custom_kind_nimwarden_reads_has_a_crd_at_its_group_version_and_scope():
    crds = _crds()
    for r in {*RESOURCES, *discovery_resources()}:
        if not r.optional:
            continue
        crd = crds.get((r.group, r.version, r.plural))
        assert crd is not None, f"no CRD for {r.kind} ({r.group}/{r.version} {r.plural})"
        assert crd["kind"] == r.kind and crd["scope"] == ("Namespaced" if r.namespaced else "Cluster"), r


def test_every_kind_the_lab_and_the_fixtures_use_is_built_in_or_has_a_crd():
    """Every kind of the lab's manifests and the recorded clusters the tests apply can be applied to the lab's server."""
    builtin = {"v1", "apps/v1", "batch/v1", "batch/v1beta1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1",
               "policy/v1beta1", "autoscaling/v1", "autoscaling/v2beta2", "node.k8s.io/v1", "storage.k8s.io/v1",
               "coordination.k8s.io/v1", "apiextensions.k8s.io/v1"}
    served = {f"{g}/{v}": set() for g, v, _ in _crds()}
    for (g, v, _), c in _crds().items():
        served[f"{g}/{v}"].add(c["kind"])
    docs = load_documents([ROOT / "nimwarden" / "lab" / "manifests", ROOT / "tests" / "fixtures" / "discovery"])
    missing = {(d.api_version, d.kind) for d in docs if d.api_version not in builtin and d.kind not in served.get(d.api_version, ())}
    assert not missing, missing


def test_crd_schemas_are_structural_with_a_typed_spec():
    for key, crd in _crds().items():
        schema = crd["version"]["schema"]["openAPIV3Schema"]
        assert schema["type"] == "object" and schema["properties"]["spec"]["type"] == "object", key
        protected = [d for d in crd_documents() if d.kind == "CustomResourceDefinition" and d.body["spec"]["group"].endswith(".k8s.io")]
        for d in protected:  # *.k8s.io groups are refused without the approval annotation
            assert d.body["metadata"]["annotations"]["api-approved.kubernetes.io"].startswith("unapproved"), d.name


def test_load_documents_unwraps_lists_and_names_a_broken_file(tmp_path):
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n"
                                     "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: a}\n")
    assert [d.ref for d in load_documents([tmp_path])] == ["Namespace/a", "ConfigMap/a/c"]
    (tmp_path / "b.yaml").write_text("kind: [oops\n")
    with pytest.raises(ApplyError, match=r"b\.yaml: cannot read") as err:
        load_documents([tmp_path])
    assert "\n" not in str(err.value)


def _run(tmp_path, phase_states: list[dict], restart: str = "Never", gates=()) -> dict:
    body = {"metadata": {"uid": "u1", "namespace": "ns", "name": "p"},
            "spec": {"restartPolicy": restart, "containers": [{"name": f"c{i}", "image": "x"} for i in range(len(phase_states))],
                     "readinessGates": [{"conditionType": g} for g in gates]}}
    run = PodRun(body, tmp_path)
    for c, state in zip(run.containers, phase_states):
        c.state = state
        c.ready = "running" in state
    run.phase = "Running"
    return pod_status(run)


def test_pod_status_phases_follow_the_containers(tmp_path):
    done, failed, running = ({"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 2}}, {"running": {}})
    assert _run(tmp_path, [done])["phase"] == "Succeeded"
    assert _run(tmp_path, [done, failed])["phase"] == "Failed"
    assert _run(tmp_path, [done, running])["phase"] == "Running"
    waiting = _run(tmp_path, [{"waiting": {"reason": "ErrImagePull"}}])
    assert waiting["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull" and "containerID" not in waiting["containerStatuses"][0]


def test_a_readiness_gate_nobody_sets_keeps_the_pod_not_ready(tmp_path):
    ready = {c["type"]: c["status"] for c in _run(tmp_path, [{"running": {}}])["conditions"]}
    gated = {c["type"]: c["status"] for c in _run(tmp_path, [{"running": {}}], gates=("nimwarden.dev/never-ready",))["conditions"]}
    assert ready["Ready"] == "True" and gated["Ready"] == "False" and gated["ContainersReady"] == "True"
    assert isinstance(Container("c", tmp_path / "c.log").state, dict)


def test_client_certificates_carry_the_kubernetes_user_and_groups(tmp_path):
    certs = make_pki(tmp_path)

    def subject(name):
        cert = x509.load_pem_x509_certificate(Path(certs[name]["cert"]).read_bytes())
        return (cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)])

    assert subject("admin") == ("nimwarden-lab-admin", ["system:masters"])
    assert subject("node") == ("system:node:nimwarden-lab", ["system:nodes"])
    assert subject("controller-manager")[0] == "system:kube-controller-manager"
    assert oct(Path(certs["sa"]["key"]).stat().st_mode & 0o777) == "0o600"
