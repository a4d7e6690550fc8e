"""The reachability model's view of a :class:`~nimwarden.k8s.model.ClusterState`.

Live clusters and snapshots carry Pods; manifests carry workloads. Each
workload's pod template stands for its pods (one model pod per workload,
named ``<Kind>-<name>``: replicas share labels and ports, so they reach and
are reached alike); controller-owned Pods are skipped in favour of their
controller's template, as the PSS checks do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nimwarden.families.network_policy.requirements import Requirements, requirements_from_mapping
from nimwarden.k8s.network import inventory_from_state
from nimwarden.netpol.objects import Inventory
from nimwarden.outcome import Attempt, Outcome, attempt, errored, incomplete, not_applicable


def inventory_attempt(target: Any, unit: str | None = None) -> Attempt[Inventory] | Outcome:
    """The target's NetworkPolicy inventory (read once per session by the k8s probe, built once per state),
    or the Outcome to record; ``unit``: what that apply unit of a manifest tree sees."""
    from nimwarden.k8s import source as k8s

    source = target.kubernetes
    reason = k8s.unavailable(target)
    if reason:
        return not_applicable(reason)
    read = k8s.cluster_state(source, timeout_s=max(getattr(target.timeouts, "read_s", 5.0), 5.0))
    bad = incomplete(read)
    if bad:
        return errored(f"cannot read the cluster state: {read.error}", **read.evidence())
    state = read.observation
    assert state is not None
    if unit is not None:
        state = state.view(unit)
    denied = state.unreadable("NetworkPolicy", "Pod", "Namespace")
    if denied:
        # An empty policy list read without permission would look like "no policies": fail closed.
        return errored(f"cannot evaluate network policies: {denied}", source=state.source)
    seen = state
    return seen.memo("netpol.inventory", lambda: attempt("netpol.inventory", f"NetworkPolicies, pods and namespaces of {seen.source}",
                                                        lambda: inventory_from_state(seen)))


def judged(target: Any, deployment: Any, judge: Callable[..., Outcome], *args: Any) -> Outcome:
    """``judge(inventory, *args)`` on the inventory of each apply unit the deployment lies in (every unit for
    a target-wide control, ``deployment`` None), merged: a manifest tree of several units is judged unit by unit."""
    from nimwarden.k8s import source as k8s

    return k8s.per_unit(target, deployment, lambda unit: judge(inventory_attempt(target, unit), *args))


_requirements: dict[int, tuple[Any, Requirements]] = {}


def requirements_for(target: Any) -> Requirements:
    """Requirements from ``kubernetes.options.network_policy``; workload namespaces default to the deployments'.
    Built once per target (every network-policy control of every deployment asks)."""
    known = _requirements.get(id(target))
    if known is not None and known[0] is target:
        return known[1]
    made = _requirements_of(target)
    if len(_requirements) > 16:
        _requirements.clear()
    _requirements[id(target)] = (target, made)
    return made


def _requirements_of(target: Any) -> Requirements:
    from nimwarden.errors import ConfigError
    from nimwarden.k8s import source as k8s

    namespaces = [d.kubernetes.namespace for d in target.deployments if d.kubernetes.namespace]
    try:
        return requirements_from_mapping(k8s.option(target, "network_policy", {}), namespaces)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(str(target.path), "kubernetes.options.network_policy", str(exc)) from None
