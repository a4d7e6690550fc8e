"""Port probe: nmap (through python-nmap) over a deployment's hosts.

Bounded: the timing template, host timeout, retries and packet rate are set
explicitly and the scan time is recorded. Scoped: every host is checked
against the target's scope *before* nmap is constructed, and only single
address literals reach nmap's command line (no CIDRs, ranges, names or
options that nmap would expand into other addresses). An expected endpoint the
scan did not see open is scanned again alone, slower, before it is called closed
(a fast scan on a busy machine can lose an answer); the evidence names what only
that second look saw.
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
from nimwarden.net.scope import scoped_addresses
from nimwarden.outcome import Attempt, attempt

PROBE = "ports.nmap"


# --------------------------------------------------------------------------- the documented port table


@dataclass(frozen=True)
class OpenPort:
    host: str
    port: int
    proto: str
    state: str  # open, or open|filtered for UDP without an answer
    service: str = ""  # nmap's guess (from /etc/services unless version detection ran)
    product: str = ""
    version: str = ""

    @property
    def label(self) -> str:
        what = " ".join(x for x in (self.product, self.version) if x) or self.service or "unknown"
        return f"{self.host}:{self.port}/{self.proto} ({what})"


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
    # expected ports the scan did not see open and a second, slower look at them did (:func:`_second_look`)
    seen_second: tuple[str, ...] = ()

    def open_tcp(self) -> tuple[OpenPort, ...]:
        return tuple(p for p in self.open_ports if p.proto == "tcp")

    def evidence(self) -> dict[str, Any]:
        return {
            "hosts": list(self.hosts), "tcp_ports": self.tcp_ports, "udp_ports": list(self.udp_ports),
            "udp_scanned": self.udp_scanned, "udp_note": self.udp_note,
            "open_ports": [p.label for p in self.open_ports],
            "nmap_command": self.command, "nmap_version": self.nmap_version,
            "scan_s": round(self.scan_s, 3), "nmap_elapsed_s": self.nmap_elapsed_s,
        } | ({"open_on_a_second_look": list(self.seen_second)} if self.seen_second else {})


@dataclass(frozen=True)
class ScanLimits:
    """Bounds of one scan, always passed explicitly to nmap."""

    timing: int = 4  # -T4: sane on a LAN/loopback; 3 for slow links
    host_timeout_s: int = 60
    max_retries: int = 1
    max_rate: int = 20000  # packets per second, a hard cap
    version_timeout_s: int = 8  # nmap waits ~6 s for a banner before probing: keep it short
    identify_max_ports: int = 8
    nmap: str = ""  # path of the nmap binary; empty: $NIMWARDEN_NMAP or python-nmap's search path


def _nmap_args(privileged: bool, udp: bool, limits: ScanLimits) -> str:
    kinds = ("-sS" if privileged else "-sT") + (" -sU" if udp else "")
    return (f"-n -Pn {kinds} -T{limits.timing} --host-timeout {limits.host_timeout_s}s "
            f"--max-retries {limits.max_retries} --max-rate {limits.max_rate} --reason")


def _run_nmap(nm, hosts: tuple[str, ...], ports: str, args: str) -> tuple[dict, set[str]]:
    """One nmap run; returns python-nmap's result and the hosts nmap gave up on.

    A host that hit --host-timeout still appears "up" with no ports in python-nmap's
    result, exactly like a host with everything closed: only the XML's ``timedout``
    attribute tells them apart, and reading it is what keeps a timeout from passing.
    """
    import xml.etree.ElementTree as ET

    result = nm.scan(hosts=" ".join(hosts), ports=ports, arguments=args, sudo=False)
    info = result.get("nmap", {}).get("scaninfo", {})
    if "error" in info:
        raise RuntimeError(f"nmap error: {' '.join(info['error'])}")
    timed_out: set[str] = set()
    try:
        root = ET.fromstring(nm.get_nmap_last_output())
    except ET.ParseError as exc:
        raise RuntimeError(f"nmap XML output unreadable: {exc}") from None
    for host in root.iter("host"):
        if host.get("timedout") == "true":
            timed_out.update(a.get("addr", "") for a in host.iter("address"))
    return result, timed_out


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
    TCP endpoints that should answer; one the scan did not see open gets a second look (:func:`_second_look`).

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
    args = _nmap_args(privileged, udp, limits)
    binary = limits.nmap or os.environ.get("NIMWARDEN_NMAP", "")
    nm = nmap.PortScanner(nmap_search_path=(binary,)) if binary else nmap.PortScanner()
    t0 = time.monotonic()
    result, timed_out = _run_nmap(nm, addrs, spec, args)
    if timed_out:
        raise RuntimeError(f"nmap gave up on {', '.join(sorted(timed_out))} after the {limits.host_timeout_s}s host timeout: "
                           "no complete result (raise options.ports.limits.host_timeout_s or narrow tcp_ports)")
    hosts_seen = result.get("scan", {})
    missing = [h for h in addrs if h not in hosts_seen]
    if missing:
        raise RuntimeError(f"nmap returned no result for {', '.join(missing)}")
    found: list[OpenPort] = []
    for host in addrs:
        entry = hosts_seen[host]
        for proto in ("tcp", "udp"):
            for port, p in sorted(entry.get(proto, {}).items()):
                if p.get("state") in ("open", "open|filtered"):
                    found.append(_port(host, port, proto, p))
    elapsed = float(result["nmap"]["scanstats"].get("elapsed", 0.0))
    command = result["nmap"].get("command_line", "")
    seen = {(p.host, p.port) for p in found if p.proto == "tcp" and p.state == "open"}
    missed = sorted({(h, port) for h, port in expected if h in addrs} - seen)
    second = _second_look(nm, missed, privileged, limits) if missed else []
    found += second
    if identify is not None:
        # at most a few: version detection waits for banners, and the scan must stay bounded
        wanted = [p for p in found if p.proto == "tcp" and identify(p)][: limits.identify_max_ports]
        if wanted:
            found = _identify(nm, found, wanted, limits)
    return PortScanObservation(addrs, tcp_ports, tuple(udp_ports), udp, udp_note, tuple(found), command,
                               "{}.{}".format(*nm.nmap_version()), time.monotonic() - t0, elapsed,
                               tuple(p.label for p in second))


def _port(host: str, port: Any, proto: str, p: Mapping[str, Any]) -> OpenPort:
    """One port of python-nmap's result."""
    return OpenPort(host, int(port), proto, p["state"], p.get("name", ""), p.get("product", ""), p.get("version", ""))


def _second_look(nm, missed: list[tuple[str, int]], privileged: bool, limits: ScanLimits) -> list[OpenPort]:
    """The expected ports a scan did not see open, scanned again alone: more retries, a low rate. A fast scan of
    35,000 ports on a busy machine can lose an answer (nmap reads them from a capture buffer that fills while it
    waits for a CPU), which would read as "the endpoint does not answer". Only what answers now is added; what does
    not stays closed, and a look that times out adds nothing."""
    slow = ScanLimits(timing=limits.timing, host_timeout_s=limits.host_timeout_s, max_retries=max(3, limits.max_retries),
                      max_rate=min(limits.max_rate, 500))
    out = []
    for host in sorted({h for h, _ in missed}):
        spec = "T:" + port_spec({port for h, port in missed if h == host})
        result, timed_out = _run_nmap(nm, (host,), spec, _nmap_args(privileged, False, slow))
        if timed_out:
            continue
        for port, p in sorted(result.get("scan", {}).get(host, {}).get("tcp", {}).items()):
            if p.get("state") == "open":
                out.append(_port(host, port, "tcp", p))
    return out


def _identify(nm, found: list[OpenPort], wanted: list[OpenPort], limits: ScanLimits) -> list[OpenPort]:
    """Service/version detection on a few ports, bounded by its own host timeout."""
    named = {}
    for host in sorted({p.host for p in wanted}):
        ports = ",".join(str(p.port) for p in wanted if p.host == host)
        args = (f"-n -Pn -sV --version-light -T{limits.timing} --host-timeout {limits.version_timeout_s}s "
                f"--max-retries {limits.max_retries} --max-rate {limits.max_rate}")
        res = _run_nmap(nm, (host,), ports, args)[0].get("scan", {}).get(host, {})  # a timeout only leaves it unnamed
        for port, p in res.get("tcp", {}).items():
            named[(host, int(port))] = p
    out = []
    for p in found:
        n = named.get((p.host, p.port))
        if n:
            p = OpenPort(p.host, p.port, p.proto, p.state, n.get("name", p.service), n.get("product", ""), n.get("version", ""))
        out.append(p)
    return out


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


def port_spec(ports: set[int]) -> str:
    """Compress a set of ports into nmap's range syntax (no duplicates: nmap warns about those)."""
    out, run = [], []
    for p in sorted(ports):
        if run and p == run[-1] + 1:
            run.append(p)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [p]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def probe_plan(p: PortPlan, guard: Callable[[str], None]) -> Attempt[PortScanObservation]:
    def undocumented(port: OpenPort) -> bool:
        return not p.table.rows_for(port.port, port.proto) and port.port not in p.others

    return probe_ports(p.hosts, guard=guard, tcp_ports=p.tcp_ports, udp_ports=p.udp_ports,
                       identify=undocumented if p.identify else None, limits=p.limits,
                       expected=tuple((h, port) for h, port, _ in p.expected_open))
