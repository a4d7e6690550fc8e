"""Family ports: nmap over each deployment's hosts, diffed against the vendor's port table
(``port_table_current.yaml``, versioned; ``seed`` kept as a named table), and Services that publish the API ports outside the cluster.

- ``options``    ``options.ports``: its schema
- ``probe``      the scan plan and the nmap scan (one per deployment), the port table
- ``judge``      PORTS-UNDOCUMENTED / -POSITION / -EXPECTED from the scan
- ``k8s_judge``  PORTS-K8SEXPOSE from cluster state
"""

from __future__ import annotations

from nimwarden.families import Applicability, Family, for_controls
from nimwarden.families.ports.options import PortsSection
from nimwarden.k8s import source as k8s


def _no_host(ctx: Applicability) -> str | None:
    from nimwarden.families.ports.probe import declared_hosts

    if not declared_hosts(ctx.target, ctx.deployment):
        return f"deployment {ctx.deployment.name} declares no host reachable from {ctx.target.probe_position}"
    return None


def _table_names(target) -> set[str]:
    return {str(((d.options or {}).get("ports") or {}).get("table") or ((target.options or {}).get("ports") or {}).get("table") or "current")
            for d in target.deployments}


def _tables(target) -> dict:
    from nimwarden.families.ports.port_table import stamp

    return {f"port_table_{n}": stamp(n) for n in sorted(_table_names(target))}


def _check(target) -> None:
    from nimwarden.families.ports.probe import check_options

    check_options(target)


FAMILY = Family(
    name="ports",
    data=_tables,
    schema={"options.ports": PortsSection, "deployments[].options.ports": PortsSection},
    check=_check,
    options=("options.ports", "deployments[].options.ports"),
    applies={
        **for_controls("PORTS-UNDOCUMENTED-001 PORTS-POSITION-001 PORTS-EXPECTED-001", _no_host),
        "PORTS-K8SEXPOSE-001": lambda ctx: k8s.unavailable(ctx.target, ctx.deployment),
    },
)
