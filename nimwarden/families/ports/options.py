"""``options.ports`` (target-wide, and per deployment over it): the schema of the section the scan
plan reads (``probe.plan``)."""

from __future__ import annotations

import functools
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from nimwarden.families.ports.port_table import POSITIONS, TABLES
from nimwarden.schema import Section, Text, problem


@functools.lru_cache(maxsize=64)
def parse_port_spec(spec: str) -> frozenset[int]:
    """nmap's port list (``"1-1024,8000"``) as a set; ValueError when it is not one. Remembered: every deployment
    of a large profile asks for the same ``"1-65535"`` (65,535 ports, ~1 ms to build)."""
    ports: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        a, b = int(lo), int(hi or lo)
        if not 0 < a <= b < 65536:
            raise ValueError(f"bad port range {part!r}")
        ports.update(range(a, b + 1))
    return frozenset(ports)


def _port_spec(value: str) -> str:
    if not all(c.isdigit() or c in ",-" for c in value):
        raise problem(f"ports and ranges only (digits, commas and dashes, e.g. \"30000-65535,8000\"), got {value!r}")
    try:
        parse_port_spec(value)
    except ValueError as exc:
        raise problem(f"{exc} in {value!r}; ports run from 1 to 65535, ranges low-high") from None
    return value


Port = Annotated[int, Field(ge=1, le=65535)]


class DocumentedPort(Section):
    """A site row added to the port table: a port the site documents, and from where it may answer."""

    port: Port
    proto: Literal["tcp", "udp"] = "tcp"
    service: Text = None
    role: Text = "api"
    kinds: list[Text] = []
    reachable_from: list[Literal[POSITIONS]] = ["cluster-internal"]  # type: ignore[valid-type]
    source: Text = "site"


class ScanLimitsSection(Section):
    """Bounds of one nmap scan (``probe.ScanLimits``)."""

    timing: Annotated[int, Field(ge=0, le=5)] = 4
    host_timeout_s: Annotated[int, Field(ge=1, le=3600)] = 60
    max_retries: Annotated[int, Field(ge=0, le=10)] = 1
    max_rate: Annotated[int, Field(ge=1, le=1_000_000)] = 20000
    version_timeout_s: Annotated[int, Field(ge=1, le=600)] = 8
    identify_max_ports: Annotated[int, Field(ge=0, le=1000)] = 8
    nmap: str = Field("", description="path of the nmap binary; empty: $NIMWARDEN_NMAP or the search path")


class PortsSection(Section):
    hosts: list[Text] = Field(None, description="hosts to scan; default: the endpoints' hosts reachable from the probe position")
    table: Literal[tuple(TABLES)] = "current"  # type: ignore[valid-type]
    tcp_ports: Annotated[str, AfterValidator(_port_spec)] = Field(
        "1-65535", description="TCP range scanned besides every documented port, nmap syntax")
    documented: list[DocumentedPort] = []
    limits: ScanLimitsSection = None
    identify: bool = Field(True, description="identify the service on an undocumented open port (nmap -sV)")
