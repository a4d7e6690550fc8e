"""Namespaces, pods and NetworkPolicies parsed from Kubernetes API JSON (plain dicts).

Only what reachability depends on is kept: labels, named container ports,
pod IPs, and the policy spec with the API's defaulting applied
(``policyTypes``, protocol TCP, missing ``from``/``to``/``ports``).
Anything the API server would reject raises :class:`PolicyError`, so a
malformed policy is reported as such instead of being read as "allow".
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nimwarden.netpol.selectors import Selector, SelectorError, parse_selector

NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace (1.21+)
PROTOCOLS = ("TCP", "UDP", "SCTP")
INGRESS, EGRESS = "Ingress", "Egress"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PolicyError(ValueError):
    """An object the API server would reject, located as ``kind ns/name: field: problem``."""


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ContainerPort:
    name: str | None
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: Mapping[str, str]
    ports: tuple[ContainerPort, ...] = ()
    ip: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def resolve_named_port(self, name: str, protocol: str) -> int | None:
        for cp in self.ports:
            if cp.name == name and cp.protocol == protocol:
                return cp.port
        return None


@dataclass(frozen=True)
class External:
    """A peer outside the cluster's pods, known only by its IP (ipBlock peers)."""

    ip: str

    @property
    def key(self) -> str:
        return self.ip


Endpoint = Pod | External


@dataclass(frozen=True)
class IPBlock:
    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def contains(self, ip: str | None) -> bool:
        if ip is None:
            return False
        addr = ipaddress.ip_address(ip)
        if addr.version != self.cidr.version or addr not in self.cidr:
            return False
        return not any(addr in ex for ex in self.excepts)

    def describe(self) -> str:
        ex = f" except {','.join(map(str, self.excepts))}" if self.excepts else ""
        return f"ipBlock {self.cidr}{ex}"


@dataclass(frozen=True)
class Peer:
    """One entry of ``from``/``to``. Selectors left as None when missing (that matters)."""

    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IPBlock | None = None

    def describe(self) -> str:
        if self.ip_block is not None:
            return self.ip_block.describe()
        ns = "policy namespace" if self.namespace_selector is None else f"namespaces[{self.namespace_selector.describe()}]"
        pods = "all pods" if self.pod_selector is None else f"pods[{self.pod_selector.describe()}]"
        return f"{pods} in {ns}"


@dataclass(frozen=True)
class PolicyPort:
    protocol: str = "TCP"
    port: int | str | None = None  # None: every port of the protocol; str: a named port
    end_port: int | None = None

    def describe(self) -> str:
        if self.port is None:
            return f"any/{self.protocol}"
        rng = f"-{self.end_port}" if self.end_port is not None else ""
        return f"{self.port}{rng}/{self.protocol}"


@dataclass(frozen=True)
class Rule:
    """An ingress or egress rule. ``peers``/``ports`` None = the field was empty or missing = all."""

    peers: tuple[Peer, ...] | None = None
    ports: tuple[PolicyPort, ...] | None = None


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    pod_selector: Selector
    types: frozenset[str]
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def rules(self, direction: str) -> tuple[Rule, ...]:
        return self.ingress if direction == INGRESS else self.egress


@dataclass(frozen=True)
class Inventory:
    """Everything the reachability model reads: the cluster's network-relevant state."""

    namespaces: Mapping[str, Namespace]
    pods: tuple[Pod, ...]
    policies: tuple[Policy, ...]
    skipped: tuple[str, ...] = field(default=())  # objects not modelled, with why (hostNetwork pods)
    _index: dict = field(default_factory=dict, compare=False, repr=False, init=False)

    def policies_in(self, namespace: str) -> tuple[Policy, ...]:
        """The policies of one namespace, in order (a policy selects pods of its own namespace only): an
        index built once, so a question about one pod is not a scan of every policy in the cluster."""
        return self._by_namespace("policies", self.policies).get(namespace, ())

    def pods_in(self, namespace: str) -> tuple[Pod, ...]:
        return self._by_namespace("pods", self.pods).get(namespace, ())

    def pod_namespaces(self) -> frozenset[str]:
        if "pod-namespaces" not in self._index:
            self._index["pod-namespaces"] = frozenset(p.namespace for p in self.pods)
        return self._index["pod-namespaces"]

    def _by_namespace(self, name: str, items: tuple) -> dict[str, tuple]:
        if name not in self._index:
            grouped: dict[str, list] = {}
            for item in items:
                grouped.setdefault(item.namespace, []).append(item)
            self._index[name] = {ns: tuple(found) for ns, found in grouped.items()}
        return self._index[name]

    def namespace(self, name: str) -> Namespace:
        # A pod's namespace always exists in a real cluster; a snapshot may
        # omit it, and then only the automatic name label is known.
        return self.namespaces.get(name) or Namespace(name, {NAME_LABEL: name})

    def pod(self, key: str) -> Pod:
        for p in self.pods:
            if p.key == key:
                return p
        raise KeyError(key)


def _meta(obj: Mapping[str, Any], kind: str) -> tuple[str, str, dict[str, str]]:
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise PolicyError(f"{kind}: metadata.name is missing")
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    return str(meta.get("namespace") or "default"), str(name), labels


def parse_namespace(obj: Mapping[str, Any]) -> Namespace:
    _, name, labels = _meta(obj, "Namespace")
    labels.setdefault(NAME_LABEL, name)
    return Namespace(name, labels)


def parse_pod(obj: Mapping[str, Any]) -> Pod:
    ns, name, labels = _meta(obj, "Pod")
    spec = obj.get("spec") or {}
    ports = []
    for c in spec.get("containers") or ():
        for p in c.get("ports") or ():
            ports.append(ContainerPort(p.get("name"), int(p["containerPort"]), str(p.get("protocol") or "TCP")))
    status = obj.get("status") or {}
    return Pod(ns, name, labels, tuple(ports), status.get("podIP"))


def _parse_ipblock(raw: Mapping[str, Any], where: str) -> IPBlock:
    try:
        cidr = ipaddress.ip_network(str(raw["cidr"]), strict=False)
        excepts = tuple(ipaddress.ip_network(str(e), strict=False) for e in raw.get("except") or ())
    except (KeyError, ValueError) as exc:
        raise PolicyError(f"{where}.ipBlock: {exc}") from None
    for ex in excepts:
        if ex.version != cidr.version or not ex.subnet_of(cidr):  # type: ignore[arg-type]
            raise PolicyError(f"{where}.ipBlock.except: {ex} is not inside {cidr}")
    return IPBlock(cidr, excepts)


def _parse_peer(raw: Mapping[str, Any], where: str) -> Peer:
    has_ip = raw.get("ipBlock") is not None
    has_sel = raw.get("podSelector") is not None or raw.get("namespaceSelector") is not None
    if has_ip and has_sel:
        raise PolicyError(f"{where}: ipBlock cannot be combined with selectors")
    if has_ip:
        return Peer(ip_block=_parse_ipblock(raw["ipBlock"], where))
    if not has_sel:
        raise PolicyError(f"{where}: a peer needs podSelector, namespaceSelector or ipBlock")
    pod_sel = raw.get("podSelector")
    ns_sel = raw.get("namespaceSelector")
    return Peer(
        pod_selector=None if pod_sel is None else parse_selector(pod_sel, f"{where}.podSelector"),
        namespace_selector=None if ns_sel is None else parse_selector(ns_sel, f"{where}.namespaceSelector"),
    )


def _parse_port(raw: Mapping[str, Any], where: str) -> PolicyPort:
    protocol = str(raw.get("protocol") or "TCP")
    if protocol not in PROTOCOLS:
        raise PolicyError(f"{where}.protocol: unknown protocol {protocol!r}")
    port = raw.get("port")
    end_port = raw.get("endPort")
    if isinstance(port, str):
        if port.isdigit():  # IntOrString "80" is a (invalid) name, never the number
            raise PolicyError(f"{where}.port: {port!r} is a string of digits, not a port name")
        if end_port is not None:
            raise PolicyError(f"{where}.endPort: not allowed with a named port")
    elif port is not None:
        port = int(port)
        if not 1 <= port <= 65535:
            raise PolicyError(f"{where}.port: {port} out of range")
    if end_port is not None:
        if port is None:
            raise PolicyError(f"{where}.endPort: needs port")
        end_port = int(end_port)
        if end_port < int(port):
            raise PolicyError(f"{where}.endPort: {end_port} is below port {port}")
    return PolicyPort(protocol, port, end_port)


def _parse_rule(raw: Mapping[str, Any], peer_field: str, where: str) -> Rule:
    raw_peers = raw.get(peer_field) or ()
    raw_ports = raw.get("ports") or ()
    peers = tuple(_parse_peer(p, f"{where}.{peer_field}[{i}]") for i, p in enumerate(raw_peers)) or None
    ports = tuple(_parse_port(p, f"{where}.ports[{i}]") for i, p in enumerate(raw_ports)) or None
    return Rule(peers, ports)


def parse_policy(obj: Mapping[str, Any]) -> Policy:
    ns, name, _ = _meta(obj, "NetworkPolicy")
    where = f"NetworkPolicy {ns}/{name}: spec"
    spec = obj.get("spec") or {}
    try:
        selector = parse_selector(spec.get("podSelector") or {}, f"{where}.podSelector")
        ingress = tuple(_parse_rule(r or {}, "from", f"{where}.ingress[{i}]") for i, r in enumerate(spec.get("ingress") or ()))
        egress = tuple(_parse_rule(r or {}, "to", f"{where}.egress[{i}]") for i, r in enumerate(spec.get("egress") or ()))
    except SelectorError as exc:
        raise PolicyError(str(exc)) from None
    raw_types = spec.get("policyTypes")
    if raw_types:
        types = frozenset(str(t) for t in raw_types)
        unknown = types - {INGRESS, EGRESS}
        if unknown:
            raise PolicyError(f"{where}.policyTypes: unknown {sorted(unknown)}")
    else:
        # API defaulting: Ingress always; Egress when the policy has egress rules.
        types = frozenset({INGRESS, EGRESS} if egress else {INGRESS})
    return Policy(ns, name, selector, types, ingress, egress)


def inventory(objects: Iterable[Mapping[str, Any]]) -> Inventory:
    """Build an Inventory from Kubernetes objects of any kind (others are ignored).

    Accepts ``List`` objects (``kubectl get -o json``) by flattening their items.
    """
    namespaces: dict[str, Namespace] = {}
    pods: list[Pod] = []
    policies: list[Policy] = []
    skipped: list[str] = []
    stack = deque(objects)
    while stack:
        obj = stack.popleft()
        kind = obj.get("kind")
        if kind and kind.endswith("List"):
            # REST list responses omit each item's kind; PodList items are Pods.
            item_kind = kind[: -len("List")] or None
            items = [dict(it, kind=it.get("kind") or item_kind) for it in obj.get("items") or ()]
            stack.extendleft(reversed(items))
        elif kind == "Namespace":
            ns = parse_namespace(obj)
            namespaces[ns.name] = ns
        elif kind == "Pod":
            if (obj.get("spec") or {}).get("hostNetwork"):
                # NetworkPolicies do not apply to host-network pods.
                ns, name, _ = _meta(obj, "Pod")
                skipped.append(f"Pod {ns}/{name}: hostNetwork, not subject to NetworkPolicy")
                continue
            pods.append(parse_pod(obj))
        elif kind == "NetworkPolicy":
            policies.append(parse_policy(obj))
    return Inventory(namespaces, tuple(pods), tuple(policies), tuple(skipped))
