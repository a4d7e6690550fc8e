"""The reference reachability model: Kubernetes NetworkPolicy semantics, one flow at a time.

For a flow (source, destination, port, protocol) traffic is allowed when
both ends allow it:

- egress side: if no policy with ``Egress`` in its types selects the source
  pod, the source is not isolated for egress and sends anywhere; otherwise
  some egress rule of a selecting policy must match the destination (peer)
  and the port.  The same on the ingress side for the destination pod.
- rules of all selecting policies are OR-ed; within a rule the peer list and
  the port list are each OR-ed, and peer AND port must both match;
  within one peer, namespaceSelector AND podSelector.
- a missing namespaceSelector means the policy's own namespace; an empty one
  means every namespace; a missing/empty ``from``/``to``/``ports`` means all.
- ipBlock matches by IP (pod IPs included, as the upstream e2e suite expects);
  a named port resolves against the *destination* pod's container ports.
- an endpoint that is not a pod (:class:`External`) is never isolated.

This module answers *why* (which policy and rule) and is the oracle the fast
matrix (:mod:`nimwarden.netpol.matrix`) is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

from nimwarden.netpol.objects import (
    EGRESS,
    INGRESS,
    Endpoint,
    External,
    Inventory,
    Peer,
    Pod,
    Policy,
    PolicyPort,
    Rule,
)


@dataclass(frozen=True)
class RuleRef:
    policy: str  # namespace/name
    direction: str  # Ingress or Egress
    rule: int

    def describe(self) -> str:
        return f"NetworkPolicy {self.policy} {self.direction.lower()}[{self.rule}]"


@dataclass(frozen=True)
class SideVerdict:
    direction: str
    isolated: bool
    selected_by: tuple[str, ...] = ()
    allowed_by: tuple[RuleRef, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.isolated or bool(self.allowed_by)

    def describe(self) -> str:
        d = self.direction.lower()
        if not self.isolated:
            return f"{d}: not isolated (no policy selects it)"
        if self.allowed_by:
            return f"{d}: allowed by " + "; ".join(r.describe() for r in self.allowed_by)
        return f"{d}: isolated by {', '.join(self.selected_by)} and no rule allows it"


@dataclass(frozen=True)
class Verdict:
    source: str
    destination: str
    port: int
    protocol: str
    egress: SideVerdict
    ingress: SideVerdict

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and self.ingress.allowed

    def explain(self) -> str:
        word = "allowed" if self.allowed else "blocked"
        return f"{self.source} -> {self.destination} {self.port}/{self.protocol} {word}: {self.egress.describe()}; {self.ingress.describe()}"


def selects(policy: Policy, pod: Pod) -> bool:
    return pod.namespace == policy.namespace and policy.pod_selector.matches(pod.labels)


def peer_matches(inv: Inventory, policy: Policy, peer: Peer, other: Endpoint) -> bool:
    if peer.ip_block is not None:
        return peer.ip_block.contains(other.ip)
    if not isinstance(other, Pod):
        return False  # selectors only ever match pods
    if peer.namespace_selector is None:
        if other.namespace != policy.namespace:
            return False
    elif not peer.namespace_selector.matches(inv.namespace(other.namespace).labels):
        return False
    return peer.pod_selector is None or peer.pod_selector.matches(other.labels)


def port_matches(pp: PolicyPort, port: int, protocol: str, destination: Endpoint) -> bool:
    if pp.protocol != protocol:
        return False
    if pp.port is None:
        return True
    if isinstance(pp.port, str):
        return isinstance(destination, Pod) and destination.resolve_named_port(pp.port, protocol) == port
    if pp.end_port is not None:
        return pp.port <= port <= pp.end_port
    return pp.port == port


def rule_allows(inv: Inventory, policy: Policy, rule: Rule, other: Endpoint, port: int, protocol: str, destination: Endpoint) -> bool:
    if rule.ports is not None and not any(port_matches(pp, port, protocol, destination) for pp in rule.ports):
        return False
    return rule.peers is None or any(peer_matches(inv, policy, peer, other) for peer in rule.peers)


class ReachabilityModel:
    def __init__(self, inv: Inventory):
        self.inventory = inv

    def endpoint(self, ref: Endpoint | str) -> Endpoint:
        """A pod by ``namespace/name``, an external peer by IP, or the object itself."""
        if not isinstance(ref, str):
            return ref
        if "/" in ref:
            return self.inventory.pod(ref)
        return External(ref)

    def selecting(self, direction: str, pod: Pod) -> list[Policy]:
        return [p for p in self.inventory.policies if direction in p.types and selects(p, pod)]

    def side(self, direction: str, subject: Endpoint, other: Endpoint, port: int, protocol: str, destination: Endpoint) -> SideVerdict:
        if not isinstance(subject, Pod):
            return SideVerdict(direction, isolated=False)
        policies = self.selecting(direction, subject)
        if not policies:
            return SideVerdict(direction, isolated=False)
        allowed = tuple(
            RuleRef(p.key, direction, i)
            for p in policies
            for i, rule in enumerate(p.rules(direction))
            if rule_allows(self.inventory, p, rule, other, port, protocol, destination)
        )
        return SideVerdict(direction, True, tuple(p.key for p in policies), allowed)

    def evaluate(self, source: Endpoint | str, destination: Endpoint | str, port: int, protocol: str = "TCP") -> Verdict:
        src, dst = self.endpoint(source), self.endpoint(destination)
        egress = self.side(EGRESS, src, dst, port, protocol, dst)
        ingress = self.side(INGRESS, dst, src, port, protocol, dst)
        return Verdict(src.key, dst.key, port, protocol, egress, ingress)

    def allowed(self, source: Endpoint | str, destination: Endpoint | str, port: int, protocol: str = "TCP") -> bool:
        return self.evaluate(source, destination, port, protocol).allowed
