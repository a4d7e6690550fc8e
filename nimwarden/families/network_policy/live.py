"""NETPOL-ENFORCED-001's probe: where the live reachability probes run from for one deployment, the
lab's network namespaces (``nimwarden.lab.netpol``) or short-lived probe pods in a live cluster
(:mod:`.incluster`), and why neither applies when that is the case."""

from __future__ import annotations

from typing import Any

from nimwarden.netpol.enforcement import LiveProbe
from nimwarden.outcome import Outcome


def unavailable(target: Any, deployment: Any) -> str | None:
    """The not-applicable reason of NETPOL-ENFORCED-001 for this deployment, or None."""
    if getattr(target, "lab_state", None) is not None:
        from nimwarden.lab.netpol import unavailable as lab_unavailable

        return lab_unavailable(target.lab_state, deployment.name)
    from nimwarden.families.network_policy.incluster import unavailable as cluster_unavailable

    return cluster_unavailable(target, deployment)


def live_attempt(target: Any, deployment: Any, timeout_s: float = 0.8) -> LiveProbe | Outcome:
    """The enforcement probe for a deployment of ``target``: lab network namespaces, probe pods in a cluster."""
    if getattr(target, "lab_state", None) is not None:
        from nimwarden.lab.netpol import NETWORK, enforcement_attempt

        probed = enforcement_attempt(target.lab_state, deployment.name, timeout_s)
        if isinstance(probed, Outcome):
            return probed
        return LiveProbe(probed, f"nimwarden/lab/netpol/{NETWORK.name}", f"{deployment.name} (lab network)")
    from nimwarden.families.network_policy.incluster import enforcement_attempt as in_cluster

    return in_cluster(target, deployment)
