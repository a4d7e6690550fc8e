"""The lab network's declared NetworkPolicies and how lab positions map onto the model.

:func:`declared_inventory` reads ``network.yaml``; :func:`probe_setup` turns a
running lab network (``nimwarden.lab.netns.up``'s state) into the probe plan's
sources, destinations and positions for one deployment.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from nimwarden.netpol.matrix import PortKey
from nimwarden.netpol.objects import Inventory, inventory
from nimwarden.netpol.plan import Destination
from nimwarden.probes.reach import Position

NETWORK = Path(__file__).parent / "network.yaml"
PROBE_PORTS = (PortKey(8000, "TCP"), PortKey(8001, "TCP"), PortKey(8002, "TCP"))


def declared_inventory() -> Inventory:
    return inventory([yaml.safe_load(NETWORK.read_text(encoding="utf-8"))])


def probe_setup(state: dict, deployment: str, inv: Inventory | None = None) -> tuple[list[str], list[Destination], dict[str, Position], dict[str, str]]:
    """Sources, the deployment as destination (ports it serves), positions, and its liveness position."""
    inv = inv or declared_inventory()
    positions = {p["model_pod"]: Position(name, ("ip", "netns", "exec", p["netns"])) for name, p in state["positions"].items()}
    dep = state["positions"][deployment]
    pod = inv.pod(dep["model_pod"])
    served = {PortKey(cp.port, cp.protocol) for cp in pod.ports}
    dest = Destination(pod.key, dep["address"], tuple(k for k in PROBE_PORTS if k in served))
    sources = [p["model_pod"] for name, p in state["positions"].items()]
    return sources, [dest], positions, {pod.key: pod.key}
