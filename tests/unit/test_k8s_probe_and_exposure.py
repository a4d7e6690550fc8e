"""probes.k8s selection outcomes, and exposure judges on Gateway API / OpenShift / NodePort shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from nimwarden.errors import ConfigError
from nimwarden.families.gateway import k8s_judge as gateway_k8s
from nimwarden.families.ports import k8s_judge as ports_k8s
from nimwarden.families.tls import k8s_judge as tls_k8s
from nimwarden.k8s import pod_templates
from nimwarden.k8s import source as k8s
from nimwarden.k8s.model import ClusterState, make_object
from nimwarden.outcome import Outcome, Status
from nimwarden.target import Deployment, KubernetesRef, KubernetesSource, Target, Timeouts

LAB = Path(__file__).parents[2] / "nimwarden" / "lab" / "manifests"


def _target(source: KubernetesSource, namespace="nim-hardened", selector=None) -> tuple[Target, Deployment]:
    dep = Deployment("hardened", "triton", "compliant", {}, ("http",), (), {}, (), KubernetesRef(namespace, selector or {"app": "triton-hardened"}), {})
    target = Target("t", Path("t.yaml"), (), (), "external", Timeouts(), (dep,), source, None, None, {})
    return target, dep


@pytest.fixture(autouse=True)
def fresh_cache():
    k8s.clear_cache()
    yield
    k8s.clear_cache()


def test_no_kubernetes_source_is_not_applicable():
    target, dep = _target(KubernetesSource())
    out = k8s.for_deployment(target, dep)
    assert isinstance(out, Outcome) and out.status == Status.NOT_APPLICABLE


def test_manifests_select_the_deployment_workloads():
    target, dep = _target(KubernetesSource("manifests", (LAB / "hardened", LAB / "exposed")))
    w = k8s.for_deployment(target, dep)
    assert not isinstance(w, Outcome)
    assert [t.ref for t in w.templates] == ["Deployment/nim-hardened/triton-hardened"]


def test_selector_matching_nothing_is_an_error_naming_the_nearest_match():
    # issue 13, fault 1: a selector that matched nothing gave not_applicable everywhere and "compliant"
    target, dep = _target(KubernetesSource("manifests", (LAB / "hardened",)), selector={"app": "nope"})
    out = k8s.for_deployment(target, dep)
    assert out.status == Status.ERROR and "app=nope" in out.reason
    assert "nearest found: Deployment/nim-hardened/triton-hardened" in out.reason and "app=triton-hardened" in out.reason


def test_unreachable_live_cluster_is_an_error(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n")
    target, dep = _target(KubernetesSource("live", (), kubeconfig, "c"))
    out = k8s.for_deployment(target, dep)
    assert out.status == Status.ERROR and "cannot read the cluster state" in out.reason


def test_broken_manifest_raises_config_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    target, dep = _target(KubernetesSource("manifests", (bad,)))
    with pytest.raises(ConfigError):
        k8s.for_deployment(target, dep)


def _state(*docs):
    return ClusterState("test", tuple(make_object(d, "test") for d in docs))


DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nim", "namespace": "n"},
          "spec": {"template": {"metadata": {"labels": {"app": "nim"}}, "spec": {"containers": [{"name": "nim"}]}}}}
SVC = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nim", "namespace": "n"},
       "spec": {"selector": {"app": "nim"}, "ports": [{"port": 8000, "targetPort": 8000}]}}


def test_nodeport_on_metrics_is_high_and_clusterip_passes():
    nodeport = {**SVC, "spec": {**SVC["spec"], "type": "NodePort", "ports": [{"port": 9000, "targetPort": 8002}]}}
    state = _state(DEPLOY, nodeport)
    out = ports_k8s.services(state, pod_templates(state))
    assert out.status == Status.FAIL and out.severity == "high" and "Triton metrics" in out.reason
    state = _state(DEPLOY, SVC)
    assert ports_k8s.services(state, pod_templates(state)).status == Status.PASS


def test_external_ips_count_as_exposure():
    state = _state(DEPLOY, {**SVC, "spec": {**SVC["spec"], "externalIPs": ["203.0.113.5"]}})
    assert ports_k8s.services(state, pod_templates(state)).status == Status.FAIL


def test_service_for_other_pods_is_ignored():
    other = {**SVC, "spec": {**SVC["spec"], "type": "LoadBalancer", "selector": {"app": "other"}}}
    state = _state(DEPLOY, other)
    assert ports_k8s.services(state, pod_templates(state)).status == Status.NOT_APPLICABLE


def test_httproute_publishing_root_and_route_without_tls():
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "n"},
             "spec": {"rules": [{"backendRefs": [{"name": "nim", "port": 8000}]}]}}
    state = _state(DEPLOY, SVC, route)
    templates = pod_templates(state)
    out = gateway_k8s.root_path(state, templates)
    assert out.status == Status.FAIL and "HTTPRoute/n/r" in out.reason
    assert tls_k8s.ingress_tls(state, templates).status == Status.PASS  # TLS lives on the Gateway: noted, not judged
    os_route = {"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "o", "namespace": "n"},
                "spec": {"to": {"kind": "Service", "name": "nim"}, "path": "/v1/chat/completions"}}
    state = _state(DEPLOY, SVC, os_route)
    templates = pod_templates(state)
    assert tls_k8s.ingress_tls(state, templates).status == Status.FAIL
    assert gateway_k8s.root_path(state, templates).status == Status.PASS


def test_ingress_tls_must_cover_the_host():
    ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i", "namespace": "n"},
           "spec": {"tls": [{"hosts": ["a.example"], "secretName": "t"}],
                    "rules": [{"host": "b.example", "http": {"paths": [{"path": "/v1/models", "pathType": "Exact",
                                                                         "backend": {"service": {"name": "nim", "port": {"number": 8000}}}}]}}]}}
    state = _state(DEPLOY, SVC, ing)
    out = tls_k8s.ingress_tls(state, pod_templates(state))
    assert out.status == Status.FAIL and "b.example" in out.reason


def test_nimservice_ingress_without_tls_publishing_root():
    nim = {"apiVersion": "apps.nvidia.com/v1alpha1", "kind": "NIMService", "metadata": {"name": "llm", "namespace": "n"},
           "spec": {"image": {"repository": "nvcr.io/nim/x", "tag": "1"},
                    "expose": {"service": {"type": "ClusterIP", "port": 8000},
                               "ingress": {"enabled": True, "spec": {"rules": [{"http": {"paths": [
                                   {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "llm", "port": {"number": 8000}}}}]}}]}}}}}
    state = _state(nim)
    templates = pod_templates(state)
    assert tls_k8s.ingress_tls(state, templates).status == Status.FAIL
    out = gateway_k8s.root_path(state, templates)
    assert out.status == Status.FAIL and "Ingress/n/llm" in out.reason


def test_aggregated_cluster_role_rules_are_resolved():
    from nimwarden.families.rbac import judge as rbac

    agg = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "nim-agg"},
           "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"nim/aggregate": "true"}}]}, "rules": []}
    part = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "nim-part", "labels": {"nim/aggregate": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "b", "namespace": "n"},
               "roleRef": {"kind": "ClusterRole", "name": "nim-agg"}, "subjects": [{"kind": "ServiceAccount", "name": "default"}]}
    state = _state(DEPLOY, agg, part, binding)
    assert rbac.pod_exec(state, pod_templates(state)).status == Status.FAIL


@pytest.mark.parametrize(("tls", "expected"), [("nim-tls-cert", Status.PASS), (None, Status.FAIL)])
def test_nimservice_router_ingress(tls, expected):
    ingress = {"ingressClass": "nginx", **({"tlsSecretName": tls} if tls else {})}
    nim = {"apiVersion": "apps.nvidia.com/v1alpha1", "kind": "NIMService", "metadata": {"name": "llm", "namespace": "n"},
           "spec": {"image": {"repository": "nvcr.io/nim/x", "tag": "1"},
                    "expose": {"service": {"port": 8000}, "router": {"hostDomainName": "ai.example", "ingress": ingress}}}}
    state = _state(nim)
    templates = pod_templates(state)
    assert tls_k8s.ingress_tls(state, templates).status == expected
    assert gateway_k8s.root_path(state, templates).status == Status.FAIL  # the router publishes the whole service
