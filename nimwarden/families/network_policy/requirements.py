"""What the policies declare, checked against the deployment's network requirements.

Pure functions over an :class:`Inventory`; each returns :class:`Violation`s
that name the policy and the rule (``NetworkPolicy nim/allow-gw ingress[0].from[1]``).
The judges in :mod:`nimwarden.families.network_policy.judge` turn them into outcomes.

Peers are judged two ways at once: against the namespaces and pods the
snapshot holds (what is admitted today) and by shape (what the selector would
admit tomorrow): a missing ``from``, an ipBlock, or an empty namespaceSelector
admits sources nobody listed, whatever exists today.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nimwarden.netpol.matrix import PortKey
from nimwarden.netpol.model import peer_matches, port_matches, selects
from nimwarden.netpol.objects import (
    EGRESS,
    INGRESS,
    NAME_LABEL,
    Inventory,
    Peer,
    Pod,
    Policy,
    PolicyPort,
    Rule,
)
from nimwarden.netpol.selectors import MATCH_ALL, Selector, parse_selector

SEED_GATEWAY = ("ingress-nginx",)  # NIM Operator — Security: example NetworkPolicy
SEED_EGRESS = (PortKey(443, "TCP"), PortKey(53, "TCP"), PortKey(53, "UDP"))


@dataclass(frozen=True)
class Owner:
    """Pods allowed to reach a database: a namespace (None = the database's own) and a pod selector."""

    namespace: str | None
    pod_selector: Selector = MATCH_ALL

    def matches(self, pod: Pod, home: str) -> bool:
        return pod.namespace == (self.namespace or home) and self.pod_selector.matches(pod.labels)


@dataclass(frozen=True)
class Database:
    name: str
    namespace: str
    pod_selector: Selector
    ports: tuple[PortKey, ...]
    owners: tuple[Owner, ...]


@dataclass(frozen=True)
class Requirements:
    """Network requirements for NIM/Triton/NeMo workloads; defaults follow the seeds."""

    workload_namespaces: tuple[str, ...] = ()
    require_egress_isolation: bool = True
    gateway_namespaces: tuple[str, ...] = SEED_GATEWAY
    api_ports: tuple[PortKey, ...] = (PortKey(8000, "TCP"),)
    egress_allowed: tuple[PortKey, ...] = SEED_EGRESS
    monitoring_namespaces: tuple[str, ...] = ("monitoring",)
    metrics_ports: tuple[PortKey, ...] = (PortKey(8002, "TCP"),)
    databases: tuple[Database, ...] = ()


@dataclass(frozen=True)
class Violation:
    where: str  # "NetworkPolicy ns/name ingress[0].from[1]" or "Namespace ns" or "Pod ns/name"
    problem: str
    subject: str = ""  # the pod or namespace the violation is about
    severity: str | None = None  # None: the control's own severity

    def describe(self) -> str:
        about = f"{self.subject}: " if self.subject else ""
        return f"{about}{self.where}: {self.problem}"


@dataclass(frozen=True)
class Admission:
    """One way an isolated pod admits traffic on a port: a rule, and one of its peers (or all)."""

    policy: Policy
    rule_index: int
    peer_index: int | None  # None: the rule has no from/to (every source)
    peer: Peer | None

    @property
    def where(self) -> str:
        peer = "" if self.peer_index is None else f".from[{self.peer_index}]"
        return f"NetworkPolicy {self.policy.key} ingress[{self.rule_index}]{peer}"


def _ports(raw: Iterable[Any], where: str) -> tuple[PortKey, ...]:
    out = []
    for item in raw:
        if isinstance(item, Mapping):
            out.append(PortKey(int(item["port"]), str(item.get("protocol", "TCP"))))
        else:
            port, _, proto = str(item).partition("/")
            out.append(PortKey(int(port), proto or "TCP"))
    if not out:
        raise ValueError(f"{where}: at least one port")
    return tuple(out)


def requirements_from_mapping(raw: Mapping[str, Any] | None, workload_namespaces: Iterable[str] = ()) -> Requirements:
    """Requirements from a profile section (``kubernetes.options.network_policy``), seeds as defaults.

    Ports are written ``8000`` or ``"53/UDP"``. Raises ValueError naming the field.
    """
    raw = raw or {}
    base = Requirements()
    dbs = []
    for i, db in enumerate(raw.get("databases") or ()):
        where = f"network_policy.databases[{i}]"
        owners = tuple(
            Owner(o.get("namespace"), parse_selector(o.get("podSelector") or {}, f"{where}.owners[{j}].podSelector"))
            for j, o in enumerate(db.get("owners") or ())
        )
        if not owners:
            raise ValueError(f"{where}.owners: name at least one owning service")
        dbs.append(Database(str(db["name"]), str(db["namespace"]), parse_selector(db.get("podSelector") or {}, f"{where}.podSelector"), _ports(db.get("ports") or (), f"{where}.ports"), owners))
    ns = tuple(raw.get("workload_namespaces") or workload_namespaces)
    return Requirements(
        workload_namespaces=ns,
        require_egress_isolation=bool(raw.get("require_egress_isolation", base.require_egress_isolation)),
        gateway_namespaces=tuple(raw.get("gateway_namespaces") or base.gateway_namespaces),
        api_ports=_ports(raw["api_ports"], "network_policy.api_ports") if "api_ports" in raw else base.api_ports,
        egress_allowed=_ports(raw["egress_allowed"], "network_policy.egress_allowed") if "egress_allowed" in raw else base.egress_allowed,
        monitoring_namespaces=tuple(raw.get("monitoring_namespaces") or base.monitoring_namespaces),
        metrics_ports=_ports(raw["metrics_ports"], "network_policy.metrics_ports") if "metrics_ports" in raw else base.metrics_ports,
        databases=tuple(dbs),
    )


# -- default deny ---------------------------------------------------------------
def _allows_everything(rule: Rule) -> bool:
    return rule.peers is None and rule.ports is None


def default_deny_policies(inv: Inventory, namespace: str, direction: str) -> list[Policy]:
    """Policies that isolate every pod (present and future) of ``namespace`` in ``direction``."""
    return [
        p
        for p in inv.policies_in(namespace)
        if p.pod_selector.is_empty and direction in p.types and not any(_allows_everything(r) for r in p.rules(direction))
    ]


def check_default_deny(inv: Inventory, namespaces: Iterable[str], egress_too: bool) -> tuple[list[Violation], dict[str, list[str]]]:
    violations: list[Violation] = []
    covered: dict[str, list[str]] = {}
    directions = (INGRESS, EGRESS) if egress_too else (INGRESS,)
    for ns in namespaces:
        for direction in directions:
            found = default_deny_policies(inv, ns, direction)
            covered[f"{ns} {direction.lower()}"] = [p.key for p in found]
            if not found:
                wide = [p.key for p in inv.policies_in(ns) if p.pod_selector.is_empty and direction in p.types]
                why = f" ({', '.join(wide)} selects every pod but allows all traffic)" if wide else ""
                violations.append(Violation(f"Namespace {ns}", f"no default-deny {direction.lower()} policy (podSelector {{}}, policyTypes [{direction}], no allow-all rule){why}", ns))
    return violations, covered


# -- who may reach a port ---------------------------------------------------------
def admissions(inv: Inventory, pod: Pod, key: PortKey) -> tuple[bool, list[Admission]]:
    """Whether ``pod`` is isolated for ingress, and every (rule, peer) admitting traffic to ``key``."""
    isolated = False
    out: list[Admission] = []
    for pol in inv.policies_in(pod.namespace):
        if INGRESS not in pol.types or not selects(pol, pod):
            continue
        isolated = True
        for i, rule in enumerate(pol.ingress):
            if rule.ports is not None and not any(port_matches(pp, key.port, key.protocol, pod) for pp in rule.ports):
                continue
            if rule.peers is None:
                out.append(Admission(pol, i, None, None))
            else:
                out.extend(Admission(pol, i, j, peer) for j, peer in enumerate(rule.peers))
    return isolated, out


def _admitted_namespaces(inv: Inventory, adm: Admission, also: Iterable[str] = ()) -> list[str]:
    """Namespaces the peer admits among those known, those it pins by name, and ``also``.

    A namespace missing from the snapshot (manifests rarely carry the ingress
    controller's) is judged by its automatic name label alone.
    """
    assert adm.peer is not None
    sel = adm.peer.namespace_selector
    if sel is None:
        return [adm.policy.namespace]
    names = set(inv.namespaces) | inv.pod_namespaces() | set(sel.pinned_values(NAME_LABEL) or ()) | set(also)
    return sorted(n for n in names if sel.matches(inv.namespace(n).labels))


def check_sources_limited_to_namespaces(
    inv: Inventory, pods: Iterable[Pod], keys: Iterable[PortKey], allowed: tuple[str, ...], what: str, require_path: bool
) -> tuple[list[Violation], list[dict[str, Any]]]:
    """Every source admitted to ``keys`` on ``pods`` must live in one of ``allowed`` namespaces.

    With ``require_path`` a port that nobody may reach, not even ``allowed``,
    is reported too (low severity: a broken service, not an exposure).
    """
    violations: list[Violation] = []
    seen: list[dict[str, Any]] = []
    for pod in pods:
        for key in keys:
            isolated, adms = admissions(inv, pod, key)
            if not isolated:
                violations.append(Violation(f"Pod {pod.key}", f"no NetworkPolicy selects it for ingress: {key} is open to every source", pod.key))
                continue
            admits_allowed = False
            before = len(violations)
            for adm in adms:
                entry: dict[str, Any] = {"pod": pod.key, "port": str(key), "rule": adm.where}
                if adm.peer is None:
                    violations.append(Violation(adm.where, f"rule has no 'from': {key} open to every source, not only {what}", pod.key))
                elif adm.peer.ip_block is not None:
                    violations.append(Violation(adm.where, f"{adm.peer.ip_block.describe()} admits addresses, not {what}", pod.key))
                elif adm.peer.namespace_selector is not None and adm.peer.namespace_selector.is_empty:
                    violations.append(Violation(adm.where, f"empty namespaceSelector admits every namespace to {key}, not only {what}", pod.key))
                else:
                    nss = _admitted_namespaces(inv, adm, allowed)
                    entry["namespaces"] = nss
                    outside = [n for n in nss if n not in allowed]
                    if outside:
                        violations.append(Violation(adm.where, f"admits namespace(s) {', '.join(outside)} to {key}; only {what} ({', '.join(allowed)}) may reach it", pod.key))
                    elif nss:
                        admits_allowed = True
                        sel = adm.peer.namespace_selector
                        if sel is not None and sel.pinned_values(NAME_LABEL) is None:
                            entry["note"] = f"namespaceSelector {sel.describe()} uses a mutable label; pin {NAME_LABEL} to name the namespace exactly"
                seen.append(entry)
            if require_path and not admits_allowed and len(violations) == before:
                unknown = [n for n in allowed if n not in inv.namespaces]
                if unknown:
                    # Its labels are unknown, so a label selector may still admit it: say so, do not guess.
                    seen.append({"pod": pod.key, "port": str(key), "note": f"namespace(s) {', '.join(unknown)} not in the snapshot; whether {what} is admitted cannot be confirmed"})
                else:
                    violations.append(Violation(f"Pod {pod.key}", f"no rule admits {what} to {key}: the intended path is blocked", pod.key, severity="low"))
    return violations, seen


# -- egress -------------------------------------------------------------------------
def _port_within(pp: PolicyPort, allowed: tuple[PortKey, ...]) -> bool:
    if pp.port is None or isinstance(pp.port, str):
        return False  # every port of the protocol / a name resolved per destination: unbounded
    hi = pp.end_port if pp.end_port is not None else pp.port
    return all(PortKey(p, pp.protocol) in allowed for p in range(pp.port, hi + 1))


def check_egress_limited(inv: Inventory, pods: Iterable[Pod], allowed: tuple[PortKey, ...]) -> list[Violation]:
    violations: list[Violation] = []
    allowed_txt = ", ".join(map(str, allowed))
    for pod in pods:
        policies = [p for p in inv.policies_in(pod.namespace) if EGRESS in p.types and selects(p, pod)]
        if not policies:
            violations.append(Violation(f"Pod {pod.key}", "no NetworkPolicy selects it for egress: it may connect anywhere", pod.key))
            continue
        for pol in policies:
            for i, rule in enumerate(pol.egress):
                where = f"NetworkPolicy {pol.key} egress[{i}]"
                if rule.ports is None:
                    violations.append(Violation(where, f"rule has no 'ports': every port allowed (only {allowed_txt})", pod.key))
                    continue
                for j, pp in enumerate(rule.ports):
                    if not _port_within(pp, allowed):
                        violations.append(Violation(f"{where}.ports[{j}]", f"{pp.describe()} is outside {allowed_txt}", pod.key))
    return violations


# -- databases ----------------------------------------------------------------------
def check_database_owners(inv: Inventory, db: Database) -> tuple[list[Violation], list[Pod]]:
    pods = [p for p in inv.pods_in(db.namespace) if db.pod_selector.matches(p.labels)]
    violations: list[Violation] = []
    for pod in pods:
        for key in db.ports:
            isolated, adms = admissions(inv, pod, key)
            if not isolated:
                violations.append(Violation(f"Pod {pod.key}", f"no NetworkPolicy selects it for ingress: {db.name} {key} open to every source", pod.key))
                continue
            for adm in adms:
                if adm.peer is None or adm.peer.ip_block is not None:
                    what = "has no 'from'" if adm.peer is None else f"uses {adm.peer.ip_block.describe()}"  # type: ignore[union-attr]
                    violations.append(Violation(adm.where, f"{what}: {db.name} {key} reachable beyond its owning services", pod.key))
                    continue
                strangers = [p.key for p in inv.pods if peer_matches(inv, adm.policy, adm.peer, p) and not any(o.matches(p, db.namespace) for o in db.owners)]
                if strangers:
                    shown = ", ".join(strangers[:5]) + (f" and {len(strangers) - 5} more" if len(strangers) > 5 else "")
                    violations.append(Violation(adm.where, f"admits {shown} to {db.name} {key}, which are not its owning services", pod.key))
                elif adm.peer.namespace_selector is not None and adm.peer.namespace_selector.is_empty and (adm.peer.pod_selector is None or adm.peer.pod_selector.is_empty):
                    violations.append(Violation(adm.where, f"admits every pod of every namespace to {db.name} {key}", pod.key))
    return violations, pods
