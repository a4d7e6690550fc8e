"""The network-policy model's inventory from cluster state (nimwarden.netpol): namespaces, one pod per pod
template (a controller's template stands for its pods), and the NetworkPolicies. Shared by the families that
ask the model who may reach what (network-policy; gpu-platform for the Ray head)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from nimwarden.k8s.model import ClusterState
from nimwarden.k8s.workloads import PodTemplate, pod_templates
from nimwarden.netpol.objects import Inventory, Pod, inventory


def _role(t: PodTemplate) -> str:
    """A LeaderWorkerSet has a leader and a worker template, a RayCluster a head and one per worker group:
    distinct pods of the set, not one."""
    for key, role in (("leaderTemplate", "-leader"), ("workerTemplate", "-worker"), ("headGroupSpec", "-head")):
        if key in t.spec_path:
            return role
    m = re.search(r"workerGroupSpecs\[(\d+)\]", t.spec_path)
    return f"-worker-{m.group(1)}" if m else ""


def pod_key(t: PodTemplate) -> str:
    """``namespace/name`` of the model pod that stands for a template's pods."""
    owner = t.owner
    if owner.kind == "Pod":
        return f"{owner.namespace}/{owner.name}"
    return f"{owner.namespace}/{owner.kind}-{owner.name}{_role(t)}"


def inventory_from_state(state: ClusterState) -> Inventory:
    objects: list[dict] = [dict(o.body, kind="Namespace") for o in state.of_kind("Namespace")]
    for t in pod_templates(state):
        owner = t.owner
        if owner.kind == "Pod":
            objects.append(dict(owner.body, kind="Pod"))
            continue
        objects.append(
            {
                "kind": "Pod",
                "metadata": {"namespace": owner.namespace, "name": pod_key(t).split("/", 1)[1], "labels": dict(t.labels)},
                "spec": dict(t.spec),
            }
        )
    objects += [dict(o.body, kind="NetworkPolicy", metadata=dict(o.metadata, namespace=o.namespace)) for o in state.of_kind("NetworkPolicy")]
    return inventory(objects)


def reachability_model(state: ClusterState):
    """The network-policy model (a ``ReachabilityModel``) of ``state``, built once per state: every control that asks
    which pods may reach which port of which workload asks the same model."""
    from nimwarden.netpol.model import ReachabilityModel

    return state.memo("netpol.model", lambda: ReachabilityModel(inventory_from_state(state)))


@dataclass(frozen=True)
class Admitted:
    port: int
    source: str  # "a pod in another namespace" | "an unlabelled pod of its own namespace"
    why: str  # the model's explanation


def strangers_admitted(model, tpl: PodTemplate, ports: Iterable[int]) -> tuple[list[Admitted], list[dict]] | None:
    """Which of ``ports`` of a template's pod the network-policy model (a ``ReachabilityModel``) opens to a
    stranger — a pod in another namespace, and an unlabelled pod in the pod's own namespace — and every flow
    judged; None when the pod is not in the model (hostNetwork: no NetworkPolicy applies to it)."""
    try:
        pod = model.inventory.pod(pod_key(tpl))
    except KeyError:
        return None
    strangers = (Pod("nimwarden-probe", "outside-namespace", {}), Pod(pod.namespace, "nimwarden-unlabelled-pod", {}))
    admitted, flows = [], []
    for port in ports:
        for who in strangers:
            v = model.evaluate(who, pod, port)
            flows.append({"pod": pod.key, "port": port, "from": who.key, "allowed": v.allowed, "why": v.explain()})
            if v.allowed:
                src = "a pod in another namespace" if who.namespace != pod.namespace else "an unlabelled pod of its own namespace"
                admitted.append(Admitted(port, src, v.explain()))
    return admitted, flows
