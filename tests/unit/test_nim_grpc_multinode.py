"""NIM-GRPC-001 (the NIM's gRPC API as its own way in) and multi-node NIMServices rendered with their Ray
head, so that the Ray controls judge them (NIM Operator v3.1.1+ spec.multiNode.ray)."""

from __future__ import annotations

import socket
from pathlib import Path

from nimwarden.families.gpu_platform import judge as gpu
from nimwarden.families.gpu_platform.stack import ray_heads
from nimwarden.families.nim_api import grpc
from nimwarden.k8s import load_manifests
from nimwarden.k8s.model import ClusterState, make_object
from nimwarden.k8s.workloads import pod_templates
from nimwarden.net import http
from nimwarden.outcome import Attempt, Status

LAB = Path(__file__).parents[2] / "nimwarden" / "lab" / "manifests"


def nimservice(name="llama", ns="nim", **spec) -> dict:
    return {"apiVersion": "apps.nvidia.com/v1alpha1", "kind": "NIMService", "metadata": {"name": name, "namespace": ns},
            "spec": {"image": {"repository": "nvcr.io/nim/meta/llama-3.1-8b-instruct", "tag": "2.1.6"}, **spec}}


def state(*bodies: dict) -> ClusterState:
    return ClusterState("test", tuple(make_object(b, "test") for b in bodies))


def test_a_nimservice_publishing_grpc_on_a_loadbalancer_fails_naming_the_field():
    s = state(nimservice(expose={"service": {"type": "LoadBalancer", "port": 8000, "grpcPort": 50051}}))
    out = grpc.grpc_in_workloads(s, pod_templates(s))
    assert out.status is Status.FAIL and "NIM_GRPC_API_PORT=50051" in out.reason and "LoadBalancer" in out.reason
    assert "spec.expose.service" in " ".join(out.evidence["findings"])


def test_grpc_on_but_cluster_internal_passes_and_off_passes():
    internal = state(nimservice(expose={"service": {"type": "ClusterIP", "port": 8000, "grpcPort": 50051}}))
    out = grpc.grpc_in_workloads(internal, pod_templates(internal))
    assert out.status is Status.PASS and "gRPC is on" in out.reason
    off = state(nimservice(expose={"service": {"type": "LoadBalancer", "port": 8000}}))
    out = grpc.grpc_in_workloads(off, pod_templates(off))
    assert out.status is Status.PASS and "NIM_SERVER_GRPC_BIND_ADDR unset" in out.reason


def test_a_deployment_binding_grpc_and_a_nodeport_service_fails():
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "embed", "namespace": "nim"},
           "spec": {"template": {"metadata": {"labels": {"app": "embed"}}, "spec": {"containers": [
               {"name": "nim", "image": "nvcr.io/nim/nvidia/llama-3.2-nv-embedqa-1b-v2:1.10.0",
                "env": [{"name": "NIM_SERVER_GRPC_BIND_ADDR", "value": "0.0.0.0:50051"}]}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "embed", "namespace": "nim"},
           "spec": {"type": "NodePort", "selector": {"app": "embed"}, "ports": [{"name": "grpc", "port": 50051, "targetPort": 50051}]}}
    s = state(dep, svc)
    out = grpc.grpc_in_workloads(s, pod_templates(s))
    assert out.status is Status.FAIL and "NIM_SERVER_GRPC_BIND_ADDR=0.0.0.0:50051" in out.reason
    assert grpc.grpc_in_workloads(state(dep), pod_templates(state(dep))).status is Status.PASS  # no Service publishes it


def test_the_lab_exposed_nimservice_fails_and_no_nim_is_not_applicable():
    s = load_manifests([LAB / "exposed"])
    assert grpc.grpc_in_workloads(s, pod_templates(s, "nim-exposed")).status is Status.FAIL
    triton_only = load_manifests([LAB / "hardened"])
    assert grpc.grpc_in_workloads(triton_only, pod_templates(triton_only)).status is Status.NOT_APPLICABLE


def connect(observation: str | None, error: str | None = None) -> Attempt:
    return Attempt("nim.grpc", "TCP connect 10.0.0.5:50051", observation, error)


def test_the_live_half_open_refused_timeout():
    assert grpc.grpc_live(connect("open"), external=True, allowed=False).status is Status.FAIL
    assert grpc.grpc_live(connect("open"), external=True, allowed=True).status is Status.PASS
    assert grpc.grpc_live(connect("open"), external=False, allowed=False).status is Status.PASS
    assert grpc.grpc_live(connect("closed"), external=True, allowed=False).status is Status.PASS
    assert grpc.grpc_live(connect(None, "no answer within 2s"), external=True, allowed=False).status is Status.ERROR


def test_a_real_listener_is_found_open_and_a_closed_port_refused():
    limits = http.Limits(connect_s=1, read_s=1)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        opened = http.tcp_connect("127.0.0.1", port, probe="nim.grpc", limits=limits)
    closed = http.tcp_connect("127.0.0.1", port, probe="nim.grpc", limits=limits)
    assert grpc.grpc_live(opened, external=True, allowed=False).status is Status.FAIL
    assert grpc.grpc_live(closed, external=True, allowed=False).status is Status.PASS


def test_the_two_halves_combine_fail_first_then_error():
    fail, ok = grpc.grpc_live(connect("open"), True, False), grpc.grpc_live(connect("closed"), True, False)
    err = grpc.grpc_live(connect(None, "timeout"), True, False)
    assert grpc.grpc_verdict(ok, fail).status is Status.FAIL
    assert grpc.grpc_verdict(err, ok).status is Status.ERROR
    assert grpc.grpc_verdict(ok, None).status is Status.PASS
    assert grpc.grpc_verdict(None, None).status is Status.NOT_APPLICABLE


def test_a_multinode_ray_nimservice_renders_a_leader_that_is_a_ray_head():
    s = state(nimservice(multiNode={"parallelism": {"tensor": 8, "pipeline": 2}, "ray": {"rayPort": 6379}},
                         expose={"service": {"type": "ClusterIP", "port": 8000}}))
    templates = pod_templates(s)
    assert [t.spec_path for t in templates] == ["rendered.leaderTemplate.spec", "rendered.workerTemplate.spec"]
    leader, worker = templates
    assert leader.spec["containers"][0]["args"] == ["nim-serve-ray", "--head", "--port", "6379"]
    assert worker.spec["containers"][0]["args"][:2] == ["nim-serve-ray", "--head-address"]
    assert leader.labels["app"] == "llama-lws" and leader.labels["leaderworkerset.sigs.k8s.io/name"] == "llama-lws"
    assert [t.spec_path for t in ray_heads(s)] == ["rendered.leaderTemplate.spec"]
    assert leader.source_path("rendered.leaderTemplate.spec.containers[0].args") == "spec.multiNode.ray"
    mpi = state(nimservice(multiNode={"parallelism": {"tensor": 8}, "mpi": {"mpiStartTimeout": 300}}))
    assert len(pod_templates(mpi)) == 2 and not ray_heads(mpi)


def test_the_ray_controls_judge_a_multinode_nim_head():
    s = state(nimservice(multiNode={"parallelism": {"tensor": 8}, "ray": {}}),  # rayPort defaults to 6379
              {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nim"}})
    open_head = gpu.ray_isolation(s, pod_templates(s), "nim")
    assert open_head.status is Status.FAIL and "NIMService/nim/llama" in open_head.reason
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "lws-only", "namespace": "nim"},
              "spec": {"podSelector": {"matchLabels": {"app": "llama-lws"}}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "llama-lws"}}}]}]}}
    s2 = state(*(o.body for o in s.objects), policy)
    assert gpu.ray_isolation(s2, pod_templates(s2), "nim").status is Status.PASS
