"""The vendor port tables (versioned data) and the rows a profile adds to them.

Two named tables ship: ``current`` (the default: ``port_table_current.yaml``, the seed table with
NVIDIA's changes since) and ``seed`` (``port_table_seed.yaml``, the seed documents' table). A profile
picks one with ``options.ports.table``; every finding names the table and its version."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from nimwarden.catalog import SAFE_LOADER

POSITIONS = ("external", "cluster-internal")


@dataclass(frozen=True)
class PortRow:
    port: int
    proto: str  # tcp | udp
    service: str
    role: str
    kinds: tuple[str, ...]
    reachable_from: tuple[str, ...]
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"port": self.port, "proto": self.proto, "service": self.service, "role": self.role,
                "reachable_from": list(self.reachable_from), "source": self.source}


@dataclass(frozen=True)
class PortTable:
    version: str
    rows: tuple[PortRow, ...]
    sources: Mapping[str, str] = field(default_factory=dict)

    def rows_for(self, port: int, proto: str, kind: str | None = None) -> tuple[PortRow, ...]:
        """Rows documenting ``port/proto``; those for ``kind`` when any exist."""
        rows = tuple(r for r in self.rows if r.port == port and r.proto == proto)
        if kind:
            own = tuple(r for r in rows if not r.kinds or kind in r.kinds)
            return own or rows
        return rows

    def udp_ports(self) -> tuple[int, ...]:
        return tuple(sorted({r.port for r in self.rows if r.proto == "udp"}))

    def tcp_ports(self) -> tuple[int, ...]:
        return tuple(sorted({r.port for r in self.rows if r.proto == "tcp"}))

    def extended(self, extra: Iterable[PortRow], version_suffix: str) -> PortTable:
        """A table with site/lab rows in front: they win where they document the same port."""
        extra = tuple(extra)
        if not extra:
            return self
        keys = {(r.port, r.proto) for r in extra}
        return PortTable(f"{self.version}+{version_suffix}", extra + tuple(r for r in self.rows if (r.port, r.proto) not in keys), self.sources)


def _row(raw: Mapping[str, Any], where: str) -> PortRow:
    try:
        port, proto = int(raw["port"]), str(raw.get("proto", "tcp")).lower()
        reach = tuple(raw.get("reachable_from", ("cluster-internal",)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    if not 0 < port < 65536 or proto not in ("tcp", "udp") or any(p not in POSITIONS for p in reach):
        raise ValueError(f"{where}: bad port row {dict(raw)!r}")
    return PortRow(port, proto, str(raw.get("service", f"{port}/{proto}")), str(raw.get("role", "api")),
                   tuple(raw.get("kinds", ())), reach, str(raw.get("source", "site")))


def rows_from(raw: Sequence[Mapping[str, Any]], where: str = "rows") -> tuple[PortRow, ...]:
    return tuple(_row(r, f"{where}[{i}]") for i, r in enumerate(raw))


TABLES = {"current": "port_table_current.yaml", "seed": "port_table_seed.yaml"}


def _read(name: str) -> dict[str, Any]:
    if name not in TABLES:
        raise ValueError(f"options.ports.table: unknown port table {name!r} (known: {', '.join(TABLES)})")
    return yaml.load(resources.files("nimwarden.families.ports").joinpath(TABLES[name]).read_text(encoding="utf-8"), Loader=SAFE_LOADER)


def load_port_table(name: str = "current") -> PortTable:
    """A named vendor port table shipped with the package (``current`` or ``seed``)."""
    raw = _read(name)
    if raw.get("extends"):
        base = load_port_table(str(raw["extends"]))
        drop = {(int(r["port"]), str(r.get("proto", "tcp")), str(r["service"])) for r in raw.get("remove") or ()}
        kept = tuple(r for r in base.rows if (r.port, r.proto, r.service) not in drop)
        missing = drop - {(r.port, r.proto, r.service) for r in base.rows}
        if missing:
            raise ValueError(f"{TABLES[name]}: remove names rows the {raw['extends']} table does not have: {sorted(missing)}")
        rows = kept + rows_from(raw.get("add") or (), f"{TABLES[name]}: add")
        return PortTable(f"{raw['name']} {raw['version']}", rows, {**base.sources, **dict(raw.get("sources", {}))})
    return PortTable(f"{raw.get('name', name)} {raw['version']}", rows_from(raw["ports"], f"{TABLES[name]}: ports"), dict(raw.get("sources", {})))


def stamp(name: str = "current") -> dict[str, Any]:
    """The table's identity for reports: name, version and both dates (as_of, checked)."""
    from nimwarden.dated import parse_dates

    raw = _read(name)
    source = f"nimwarden/families/ports/{TABLES[name]}"
    return parse_dates(raw, source).stamp(f"port table {raw.get('name', name)}", str(raw["version"]), source)
