"""Running nmap for the port probe: its arguments, its result, and the looks after the first scan.

A fast scan of tens of thousands of ports on a busy machine can lose an answer: nmap reads the replies from a
capture buffer that fills while it waits for a CPU, and a port whose reply was lost is reported ``filtered``
(``no-response``) among ports that answered. Read as it is, that hides an open port: an undeclared listener would
pass PORTS-UNDOCUMENTED-001 and an expected endpoint would be called closed. So after the scan, the TCP ports that gave
no answer (where there are few of them: a host that drops everything is a firewall, not a lost reply) and the
expected endpoints not seen open are scanned again alone, slower (:func:`look_again`). A second look that nmap
gives up on leaves the port unknown: the probe is an error, never a pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nimwarden.families.ports.options import parse_port_spec

# At most this many unanswered TCP ports per host are looked at again (at 500 packets/s with 3 retries, ~2 s);
# more is a host that filters, and those ports stay filtered (the evidence counts them).
LOOK_AGAIN_MAX = 256


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
class ScanLimits:
    """Bounds of one scan, always passed explicitly to nmap."""

    timing: int = 4  # -T4: sane on a LAN/loopback; 3 for slow links
    host_timeout_s: int = 60
    max_retries: int = 1
    max_rate: int = 20000  # packets per second, a hard cap
    version_timeout_s: int = 8  # nmap waits ~6 s for a banner before probing: keep it short
    identify_max_ports: int = 8
    nmap: str = ""  # path of the nmap binary; empty: $NIMWARDEN_NMAP or python-nmap's search path


def nmap_args(privileged: bool, udp: bool, limits: ScanLimits) -> str:
    kinds = ("-sS" if privileged else "-sT") + (" -sU" if udp else "")
    return (f"-n -Pn {kinds} -T{limits.timing} --host-timeout {limits.host_timeout_s}s "
            f"--max-retries {limits.max_retries} --max-rate {limits.max_rate} --reason")


def run_nmap(nm, hosts: tuple[str, ...], ports: str, args: str) -> tuple[dict, set[str]]:
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


def port_of(host: str, port: Any, proto: str, p: Mapping[str, Any]) -> OpenPort:
    """One port of python-nmap's result."""
    return OpenPort(host, int(port), proto, p["state"], p.get("name", ""), p.get("product", ""), p.get("version", ""))


def unanswered(xml_text: str) -> dict[str, tuple[list[int], int]]:
    """Per host, the TCP ports of a scan that gave no answer at all (``filtered``, reason ``no-response``: an answer
    lost, or a port a firewall drops), from nmap's XML: those listed one by one and those it folded into a count
    (``extraports``, whose ``extrareasons`` name the ports). Returns host -> (ports, folded ports nmap did not name)."""
    import xml.etree.ElementTree as ET

    out: dict[str, tuple[list[int], int]] = {}
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return out  # run_nmap has read this output already: it parses
    for host in root.iter("host"):
        addr = next((a.get("addr", "") for a in host.iter("address") if a.get("addrtype") in ("ipv4", "ipv6")), "")
        listed: set[int] = set()
        unnamed = 0
        for ports in host.iter("ports"):
            for port in ports.iter("port"):
                state = port.find("state")
                if port.get("protocol") == "tcp" and state is not None and state.get("state") == "filtered" \
                        and state.get("reason") == "no-response":
                    listed.add(int(port.get("portid", "0")))
            for extra in ports.iter("extraports"):
                if extra.get("state") != "filtered":
                    continue
                for why in extra.iter("extrareasons"):
                    if why.get("reason") != "no-response" or why.get("proto", "tcp") != "tcp":
                        continue
                    try:
                        listed.update(parse_port_spec(why.get("ports") or ""))
                    except ValueError:  # an nmap that does not name them
                        unnamed += int(why.get("count", "0") or 0)
        if addr and (listed or unnamed):
            out[addr] = (sorted(listed), unnamed)
    return out


def look_again(nm, ports: list[tuple[str, int]], privileged: bool, limits: ScanLimits,
               must_answer: frozenset[tuple[str, int]] = frozenset()) -> list[OpenPort]:
    """``ports`` (host, port) scanned again alone: more retries, a low rate; the ones open now. ``must_answer``: ports
    that gave no answer to the first scan; if nmap gives up on the second look at one of them, whether it is open is
    unknown and the probe fails (RuntimeError). An expected port whose second look times out stays closed."""
    slow = ScanLimits(timing=limits.timing, host_timeout_s=limits.host_timeout_s, max_retries=max(3, limits.max_retries),
                      max_rate=min(limits.max_rate, 500))
    out = []
    for host in sorted({h for h, _ in ports}):
        spec = "T:" + port_spec({port for h, port in ports if h == host})
        result, timed_out = run_nmap(nm, (host,), spec, nmap_args(privileged, False, slow))
        if timed_out:
            lost = sorted(port for h, port in must_answer if h == host)
            if lost:
                raise RuntimeError(f"nmap gave up on the second look at {host} (ports {port_spec(set(lost))} gave no answer "
                                   "to the first scan): whether they are open is unknown")
            continue
        for port, p in sorted(result.get("scan", {}).get(host, {}).get("tcp", {}).items()):
            if p.get("state") == "open":
                out.append(port_of(host, port, "tcp", p))
    return out


def identify(nm, found: list[OpenPort], wanted: list[OpenPort], limits: ScanLimits) -> list[OpenPort]:
    """Service/version detection on a few ports, bounded by its own host timeout."""
    named = {}
    for host in sorted({p.host for p in wanted}):
        ports = ",".join(str(p.port) for p in wanted if p.host == host)
        args = (f"-n -Pn -sV --version-light -T{limits.timing} --host-timeout {limits.version_timeout_s}s "
                f"--max-retries {limits.max_retries} --max-rate {limits.max_rate}")
        res = run_nmap(nm, (host,), ports, args)[0].get("scan", {}).get(host, {})  # a timeout only leaves it unnamed
        for port, p in res.get("tcp", {}).items():
            named[(host, int(port))] = p
    out = []
    for p in found:
        n = named.get((p.host, p.port))
        if n:
            p = OpenPort(p.host, p.port, p.proto, p.state, n.get("name", p.service), n.get("product", ""), n.get("version", ""))
        out.append(p)
    return out


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
