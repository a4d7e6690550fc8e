"""The reachability model's view of a :class:`~nimwarden.k8s.model.ClusterState`.

Live clusters and snapshots carry Pods; manifests carry workloads. Each
workload's pod template stands for its pods (one model pod per workload,
named ``<Kind>-<name>``: replicas share labels and ports, so they reach and
are reached alike); controller-owned Pods are skipped in favour of their
controller's template, as the PSS checks do.
"""

from __future__ import annotations

from nimwarden.k8s.model import ClusterState
from nimwarden.k8s.workloads import pod_templates
from nimwarden.netpol.objects import Inventory, inventory


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
                "metadata": {"namespace": owner.namespace, "name": f"{owner.kind}-{owner.name}", "labels": dict(t.labels)},
                "spec": dict(t.spec),
            }
        )
    objects += [dict(o.body, kind="NetworkPolicy", metadata=dict(o.metadata, namespace=o.namespace)) for o in state.of_kind("NetworkPolicy")]
    return inventory(objects)
