"""The full pod-to-pod reachability matrix, computed with bitsets.

The reference model answers one flow at a time; a cluster of 1,000 pods has
a million pairs per port, so this module computes whole rows at once: every
policy's selected pods, every rule's peers and every rule's port match are
Python ints used as bitsets over the pod index, and

    allowed[src] = egress_allowed[src] & ingress_allowed_transposed[src]

Same semantics as :mod:`nimwarden.netpol.model` (a property test holds
them equal); pod-to-pod only — flows from or to external IPs go through the
reference model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from nimwarden.netpol.model import selects
from nimwarden.netpol.objects import EGRESS, INGRESS, Inventory, Peer, Policy, PolicyPort, Rule


def bits(mask: int) -> Iterator[int]:
    """Indexes of the set bits of ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


@dataclass(frozen=True)
class PortKey:
    port: int
    protocol: str = "TCP"

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}"


class ReachabilityMatrix:
    def __init__(self, inv: Inventory, ports: Iterable[tuple[int, str] | PortKey]):
        self.inventory = inv
        self.pods = inv.pods
        self.index = {p.key: i for i, p in enumerate(self.pods)}
        self.all = (1 << len(self.pods)) - 1
        self._ns_pods: dict[str, int] = {}
        for i, p in enumerate(self.pods):
            self._ns_pods[p.namespace] = self._ns_pods.get(p.namespace, 0) | (1 << i)
        self._selected = {pol.key: self._selected_by(pol) for pol in inv.policies}
        self._peer_cache: dict[tuple[str, Peer], int] = {}
        self.rows: dict[PortKey, list[int]] = {}
        for pk in ports:
            key = pk if isinstance(pk, PortKey) else PortKey(int(pk[0]), str(pk[1]))
            self.rows[key] = self._compute(key)

    # -- sets --------------------------------------------------------------
    def _selected_by(self, pol: Policy) -> int:
        mask = 0
        for i in bits(self._ns_pods.get(pol.namespace, 0)):
            if selects(pol, self.pods[i]):
                mask |= 1 << i
        return mask

    def _peer_set(self, pol: Policy, peer: Peer) -> int:
        cache_key = (pol.namespace, peer)
        hit = self._peer_cache.get(cache_key)
        if hit is not None:
            return hit
        mask = 0
        if peer.ip_block is not None:
            for i, p in enumerate(self.pods):
                if peer.ip_block.contains(p.ip):
                    mask |= 1 << i
        else:
            if peer.namespace_selector is None:
                candidates = self._ns_pods.get(pol.namespace, 0)
            else:
                candidates = 0
                for ns_name, ns_mask in self._ns_pods.items():
                    if peer.namespace_selector.matches(self.inventory.namespace(ns_name).labels):
                        candidates |= ns_mask
            if peer.pod_selector is None or peer.pod_selector.is_empty:
                mask = candidates
            else:
                for i in bits(candidates):
                    if peer.pod_selector.matches(self.pods[i].labels):
                        mask |= 1 << i
        self._peer_cache[cache_key] = mask
        return mask

    def _rule_peers(self, pol: Policy, rule: Rule) -> int:
        if rule.peers is None:
            return self.all
        mask = 0
        for peer in rule.peers:
            mask |= self._peer_set(pol, peer)
        return mask

    def _port_destinations(self, ports: tuple[PolicyPort, ...] | None, key: PortKey) -> int:
        """Destination pods for which one of ``ports`` matches ``key`` (named ports differ per pod)."""
        if ports is None:
            return self.all
        mask = 0
        for pp in ports:
            if pp.protocol != key.protocol:
                continue
            if pp.port is None or (isinstance(pp.port, int) and (pp.port == key.port or (pp.end_port is not None and pp.port <= key.port <= pp.end_port))):
                return self.all
            if isinstance(pp.port, str):
                for i, p in enumerate(self.pods):
                    if p.resolve_named_port(pp.port, key.protocol) == key.port:
                        mask |= 1 << i
        return mask

    # -- the matrix ----------------------------------------------------------
    def _compute(self, key: PortKey) -> list[int]:
        n = len(self.pods)
        egress = [0] * n  # egress[s]: destinations s may send to
        ingress_t = [0] * n  # ingress_t[s]: destinations that accept s
        egress_isolated = ingress_isolated = 0
        for pol in self.inventory.policies:
            selected = self._selected[pol.key]
            if not selected:
                continue
            if EGRESS in pol.types:
                egress_isolated |= selected
                for rule in pol.egress:
                    dsts = self._rule_peers(pol, rule) & self._port_destinations(rule.ports, key)
                    if dsts:
                        for s in bits(selected):
                            egress[s] |= dsts
            if INGRESS in pol.types:
                ingress_isolated |= selected
                for rule in pol.ingress:
                    dsts = selected & self._port_destinations(rule.ports, key)
                    if dsts:
                        for s in bits(self._rule_peers(pol, rule)):
                            ingress_t[s] |= dsts
        open_ingress = self.all & ~ingress_isolated
        rows = []
        for s in range(n):
            out = self.all if not (egress_isolated >> s) & 1 else egress[s]
            rows.append(out & (ingress_t[s] | open_ingress))
        return rows

    # -- queries -------------------------------------------------------------
    def allowed(self, source: str, destination: str, port: int, protocol: str = "TCP") -> bool:
        row = self.rows[PortKey(port, protocol)][self.index[source]]
        return bool((row >> self.index[destination]) & 1)

    def destinations(self, source: str, port: int, protocol: str = "TCP") -> list[str]:
        row = self.rows[PortKey(port, protocol)][self.index[source]]
        return [self.pods[i].key for i in bits(row)]

    def count_allowed(self) -> int:
        return sum(row.bit_count() for rows in self.rows.values() for row in rows)

    @property
    def pairs(self) -> int:
        return len(self.rows) * len(self.pods) ** 2
