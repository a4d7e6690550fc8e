"""Port probe: nmap (through python-nmap) over a deployment's hosts.

Bounded: the timing template, host timeout, retries and packet rate are set
explicitly and the scan time is recorded. Scoped: every host is checked
against the target's scope *before* nmap is constructed, and only single
address literals reach nmap's command line (no CIDRs, ranges, names or
options that nmap would expand into other addresses). A fast scan on a busy
machine can lose an answer: an expected endpoint the scan did not see open, and
the TCP ports that gave no answer at all, are scanned again alone, slower, before
anything is called closed (:mod:`nimwarden.families.ports.scanner`); the evidence
names what only that second look saw.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nimwarden.errors import OutOfScope
from nimwarden.families.ports.options import parse_port_spec  # noqa: F401 - part of the probe's interface
from nimwarden.families.ports.port_table import POSITIONS, PortRow, PortTable, load_port_table, rows_from
from nimwarden.families.ports.scanner import (  # noqa: F401 - part of the probe's interface
    LOOK_AGAIN_MAX,
    OpenPort,
    ScanLimits,
    look_again,
    nmap_args,
    port_of,
    port_spec,
    run_nmap,
    unanswered,
)
from nimwarden.families.ports.scanner import identify as identify_versions
from nimwarden.net.scope import scoped_addresses
from nimwarden.outcome import Attempt, attempt

PROBE = "ports.nmap"


# --------------------------------------------------------------------------- the documented port table


@dataclass(frozen=True)
class PortScanObservation:
    hosts: tuple[str, ...]
    tcp_ports: str
    udp_ports: tuple[int, ...]
    udp_scanned: bool
    udp_note: str
    open_ports: tuple[OpenPort, ...]
    command: str
    nmap_version: str
    scan_s: float  # wall time of the nmap runs
    nmap_elapsed_s: float  # nmap's own figure
    # ports the scan did not see open and a second, slower look at them did (scanner.look_again)
    seen_second: tuple[str, ...] = ()
    looked_again: int = 0  # TCP ports that gave the scan no answer, looked at again
    filtering: Mapping[str, int] = field(default_factory=dict)  # host -> ports that gave no answer, too many to look again

    def open_tcp(self) -> tuple[OpenPort, ...]:
        return tuple(p for p in self.open_ports if p.proto == "tcp")

    def evidence(self) -> dict[str, Any]:
        return {
            "hosts": list(self.hosts), "tcp_ports": self.tcp_ports, "udp_ports": list(self.udp_ports),
            "udp_scanned": self.udp_scanned, "udp_note": self.udp_note,
            "open_ports": [p.label for p in self.open_ports],
            "nmap_command": self.command, "nmap_version": self.nmap_version,
            "scan_s": round(self.scan_s, 3), "nmap_elapsed_s": self.nmap_elapsed_s,
        } | ({"open_on_a_second_look": list(self.seen_second)} if self.seen_second else {}) \
          | ({"unanswered_looked_at_again": self.looked_again} if self.looked_again else {}) \
          | ({"unanswered_not_looked_at_again": dict(self.filtering)} if self.filtering else {})


def scan(
    hosts: Iterable[str],
    *,
    guard: Callable[[str], None],
    tcp_ports: str = "1-65535",
    udp_ports: Sequence[int] = (),
    identify: Callable[[OpenPort], bool] | None = None,
    limits: ScanLimits = ScanLimits(),
    expected: Sequence[tuple[str, int]] = (),
) -> PortScanObservation:
    """Scan ``hosts``; ``identify`` picks open TCP ports worth nmap's version detection. ``expected``: (host, port) of
    TCP endpoints that should answer; one the scan did not see open gets a second look, and so does every TCP port
    that gave no answer on a host where few did not (:func:`scanner.look_again`).

    Raises OutOfScope before nmap is even constructed when a host is out of scope.
    """
    addrs = scoped_addresses(hosts, guard)
    if not all(c.isdigit() or c in ",-" for c in tcp_ports):
        raise OutOfScope(f"port specification {tcp_ports!r} may only hold digits, commas and dashes")
    import nmap  # python-nmap; imported after the scope check on purpose

    privileged = os.geteuid() == 0
    udp = bool(udp_ports) and privileged
    udp_note = "scanned" if udp else ("no documented UDP ports" if not udp_ports else "UDP scan needs root: not scanned")
    spec = f"T:{tcp_ports}" + (f",U:{','.join(str(p) for p in udp_ports)}" if udp else "")
    args = nmap_args(privileged, udp, limits)
    binary = limits.nmap or os.environ.get("NIMWARDEN_NMAP", "")
    nm = nmap.PortScanner(nmap_search_path=(binary,)) if binary else nmap.PortScanner()
    t0 = time.monotonic()
    result, timed_out = run_nmap(nm, addrs, spec, args)
    if timed_out:
        raise RuntimeError(f"nmap gave up on {', '.join(sorted(timed_out))} after the {limits.host_timeout_s}s host timeout: "
                           "no complete result (raise options.ports.limits.host_timeout_s or narrow tcp_ports)")
    hosts_seen = result.get("scan", {})
    missing = [h for h in addrs if h not in hosts_seen]
    if missing:
        raise RuntimeError(f"nmap returned no result for {', '.join(missing)}")
    found: list[OpenPort] = []
    silent: set[tuple[str, int]] = set()  # TCP ports that gave no answer, where few did not (scanner: a lost reply)
    filtering: dict[str, int] = {}  # hosts where too many gave no answer to look again: they filter
    for host in addrs:
        entry = hosts_seen[host]
        for proto in ("tcp", "udp"):
            for port, p in sorted(entry.get(proto, {}).items()):
                if p.get("state") in ("open", "open|filtered"):
                    found.append(port_of(host, port, proto, p))
    for host, (quiet, unnamed) in unanswered(nm.get_nmap_last_output()).items():
        if host not in addrs:
            continue
        if len(quiet) > LOOK_AGAIN_MAX or unnamed:
            filtering[host] = len(quiet) + unnamed
        else:
            silent.update((host, port) for port in quiet)
    elapsed = float(result["nmap"]["scanstats"].get("elapsed", 0.0))
    command = result["nmap"].get("command_line", "")
    seen = {(p.host, p.port) for p in found if p.proto == "tcp" and p.state == "open"}
    missed = sorted(({(h, port) for h, port in expected if h in addrs} - seen) | silent)
    second = look_again(nm, missed, privileged, limits, frozenset(silent)) if missed else []
    found += second
    if identify is not None:
        # at most a few: version detection waits for banners, and the scan must stay bounded
        wanted = [p for p in found if p.proto == "tcp" and identify(p)][: limits.identify_max_ports]
        if wanted:
            found = identify_versions(nm, found, wanted, limits)
    return PortScanObservation(addrs, tcp_ports, tuple(udp_ports), udp, udp_note, tuple(found), command,
                               "{}.{}".format(*nm.nmap_version()), time.monotonic() - t0, elapsed,
                               tuple(p.label for p in second), len(silent), filtering)


def probe_ports(
    hosts: Iterable[str],
    *,
    guard: Callable[[str], None],
    tcp_ports: str = "1-65535",
    udp_ports: Sequence[int] = (),
    identify: Callable[[OpenPort], bool] | None = None,
    limits: ScanLimits = ScanLimits(),
    expected: Sequence[tuple[str, int]] = (),
) -> Attempt[PortScanObservation]:
    """The port scan as an Attempt. The scope check runs first and raises: never an observation."""
    hosts = tuple(hosts)
    scoped_addresses(hosts, guard)
    return attempt(PROBE, f"nmap {' '.join(hosts)} tcp {tcp_ports} udp {','.join(map(str, udp_ports)) or '-'}",
                   lambda: scan(hosts, guard=guard, tcp_ports=tcp_ports, udp_ports=udp_ports, identify=identify, limits=limits,
                                expected=expected))


# --------------------------------------------------------------------------- from a target profile


@dataclass(frozen=True)
class PortPlan:
    """What to scan for one deployment and the policy to judge it by."""

    hosts: tuple[str, ...]
    tcp_ports: str
    udp_ports: tuple[int, ...]
    position: str
    kind: str
    table: PortTable
    expected_open: tuple[tuple[str, int, str], ...]  # (host, port, endpoint name)
    identify: bool
    limits: ScanLimits
    # Ports declared as endpoints of the target's *other* deployments: on a shared host
    # (a node IP, a lab's loopback) a wildcard listener shows up on every address; it
    # is that deployment's finding, judged in its own scan, not this one's.
    others: Mapping[int, str] = field(default_factory=dict)


def _options(target: Any, deployment: Any) -> dict:
    merged: dict = {}
    for src in (getattr(target, "options", {}) or {}, getattr(deployment, "options", {}) or {}):
        merged.update(src.get("ports", {}) or {})
    return merged


def declared_hosts(target: Any, deployment: Any) -> tuple[str, ...]:
    """The hosts to scan as the profile names them: ``options.ports.hosts``, else the hosts of the
    endpoints reachable from the probe position (``exposure`` from outside, all from inside)."""
    opts = _options(target, deployment)
    eps = dict(deployment.endpoints)
    if opts.get("hosts"):
        return tuple(str(h) for h in opts["hosts"])
    if target.probe_position == "external":
        return tuple(dict.fromkeys(e.host for n, e in eps.items() if n in set(deployment.exposure)))
    return tuple(dict.fromkeys(e.host for e in eps.values()))


@dataclass(frozen=True)
class DeploymentScan:
    deployment: str
    plan: PortPlan
    attempt: Attempt[PortScanObservation]

    @property
    def subject(self) -> str:
        return f"{self.deployment}:{','.join(self.plan.hosts)}"


def deployment_scan(target: Any, deployment: Any) -> DeploymentScan:
    """The deployment's plan and its one nmap scan (the probe cache keeps it for the three port controls)."""
    p = plan(target, deployment)
    return DeploymentScan(deployment.name, p, probe_plan(p, target.guard))


def plan(target: Any, deployment: Any, table: PortTable | None = None) -> PortPlan:
    """Build the scan plan for a deployment from the target profile.

    Hosts: ``options.ports.hosts``, else the hosts of the endpoints the profile
    says are reachable from the probe position (``exposure``) when probing from
    outside, all endpoint hosts from inside the cluster. Each declared endpoint
    documents its own port (the profile moved it off the default), reachable
    from outside only when it is named in ``exposure``; ``options.ports.documented``
    adds site rows. The TCP range scanned always includes every documented port.
    """
    opts = _options(target, deployment)
    position = target.probe_position
    table = table or load_port_table(str(opts.get("table", "current")))
    eps = dict(deployment.endpoints)
    exposed = set(deployment.exposure)
    hosts = resolve(declared_hosts(target, deployment))
    site = rows_from(opts.get("documented", []), "options.ports.documented")
    own = tuple(
        PortRow(e.port, "tcp", f"{deployment.name} {n} endpoint ({e.url})", "api", (),
                POSITIONS if n in exposed else ("cluster-internal",), "target profile")
        for n, e in eps.items() if _addr(e.host) in hosts
    )
    table = table.extended(own + site, f"{getattr(target, 'name', 'target')}")
    expected = tuple((_addr(e.host), e.port, n) for n, e in eps.items()
                     if _addr(e.host) in hosts and (position == "cluster-internal" or n in exposed))
    spec = str(opts.get("tcp_ports", "1-65535"))
    tcp = port_spec(parse_port_spec(spec) | set(table.tcp_ports()) | {p for _, p, _ in expected})
    limits = scan_limits(opts)
    others = {e.port: d.name for d in getattr(target, "deployments", ()) if d.name != deployment.name
              for e in d.endpoints.values() if e.port not in {x.port for x in eps.values()}}
    return PortPlan(hosts, tcp, table.udp_ports(), position, deployment.kind, table, expected,
                    bool(opts.get("identify", True)), limits, others)


def scan_limits(opts: Mapping[str, Any]) -> ScanLimits:
    """``options.ports.limits`` (merged) as the scan's bounds."""
    return ScanLimits(**{k: (str(v) if k == "nmap" else int(v)) for k, v in (opts.get("limits") or {}).items()})


def check_options(target: Any) -> None:
    """What a scan plan reads from each deployment's ``options.ports`` (over the target's), without resolving
    or scanning anything: a section the plan could not use fails when the profile loads."""
    for deployment in getattr(target, "deployments", ()):
        opts = _options(target, deployment)  # the table's name is one of TABLES (the schema says so)
        rows_from(opts.get("documented", []), "options.ports.documented")
        scan_limits(opts)
        parse_port_spec(str(opts.get("tcp_ports", "1-65535")))


def _addr(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return resolve((host,))[0] if resolve((host,)) else host


def resolve(hosts: Iterable[str]) -> tuple[str, ...]:
    """Host names to addresses, before the scope guard sees them (nmap never resolves: -n)."""

    out: list[str] = []
    for h in hosts:
        try:
            out.append(str(ipaddress.ip_address(h.strip("[]"))))
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(h, None, proto=socket.IPPROTO_TCP)
        except OSError:
            out.append(h)  # left as a name: the scope check refuses it with a clear message
            continue
        out.extend(i[4][0] for i in infos)
    return tuple(dict.fromkeys(out))


def probe_plan(p: PortPlan, guard: Callable[[str], None]) -> Attempt[PortScanObservation]:
    def undocumented(port: OpenPort) -> bool:
        return not p.table.rows_for(port.port, port.proto) and port.port not in p.others

    return probe_ports(p.hosts, guard=guard, tcp_ports=p.tcp_ports, udp_ports=p.udp_ports,
                       identify=undocumented if p.identify else None, limits=p.limits,
                       expected=tuple((h, port) for h, port, _ in p.expected_open))
