"""The scope guard's helpers for tools that take addresses (nmap, the TLS cross-checks): resolve a
host list to in-scope IP literals before any packet is sent, and build a guard from CIDRs."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

from nimwarden.errors import OutOfScope


def scoped_addresses(hosts: Iterable[str], guard: Callable[[str], None]) -> tuple[str, ...]:
    """Only single IP literals, each inside the scope; anything else raises OutOfScope.

    Host names are refused too: nmap would resolve them itself, possibly to an
    address the guard never saw. Resolve first, then hand the address over.
    """
    out: list[str] = []
    for host in hosts:
        try:
            addr = ipaddress.ip_address(str(host).strip("[]"))
        except ValueError:
            try:
                socket.getaddrinfo(str(host), None)
                why = "a host name"
            except OSError:
                why = "a host name that does not resolve"
            raise OutOfScope(f"{host!r} is {why}; nmap is only given single IP addresses checked against the scope") from None
        guard(str(addr))
        if str(addr) not in out:
            out.append(str(addr))
    if not out:
        raise OutOfScope("no hosts to scan")
    return tuple(out)


def guard_for(networks: Iterable[str]) -> Callable[[str], None]:
    """A scope guard from a list of CIDRs/addresses (targets use ``Target.guard``)."""
    nets = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def guard(host: str) -> None:
        addr = ipaddress.ip_address(host)
        if not any(addr in n for n in nets):
            raise OutOfScope(f"{host} is outside the scope ({', '.join(map(str, nets))})")

    return guard
