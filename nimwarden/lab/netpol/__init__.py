"""The lab network's declared NetworkPolicies and how lab positions map onto the model.

:func:`declared_inventory` reads ``network.yaml``; :func:`probe_setup` turns a
running lab network (``nimwarden.lab.netns.up``'s state) into the probe plan's
sources, destinations and positions for one deployment.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from nimwarden.net.reach import Position, probe_attempt
from nimwarden.netpol.enforcement import Observation
from nimwarden.netpol.matrix import PortKey
from nimwarden.netpol.objects import Inventory, inventory
from nimwarden.netpol.plan import Destination, plan_flows
from nimwarden.outcome import Attempt, Outcome, errored, not_applicable

NETWORK = Path(__file__).parent / "network.yaml"
# The server's ports, and the Ray head's next to it (GCS, dashboard, client server: nimwarden/lab/ray.py).
PROBE_PORTS = (PortKey(8000, "TCP"), PortKey(8001, "TCP"), PortKey(8002, "TCP"), PortKey(6379, "TCP"), PortKey(8265, "TCP"),
               PortKey(10001, "TCP"))


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


def unavailable(lab_state_file: Path, deployment: str) -> str | None:
    """Why a lab deployment's network cannot be probed, or None: it needs the lab network that
    ``nimwarden lab up`` built (netns.json next to the lab's state.json) and this deployment's
    server inside its namespace (``deployments.<name>.netns`` in state.json)."""
    from nimwarden.lab import netns

    lab_dir = Path(lab_state_file).parent
    ok, why = netns.available()
    state = netns.read_state(lab_dir)
    if not state or not state.get("ready"):
        reason = why if not ok else "nimwarden lab up did not build it"
        return f"the lab network is not up ({reason}); the lab runs on loopback only, where no network policy can be enforced or probed"
    try:
        lab = json.loads(Path(lab_state_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # enforcement_attempt reports the unreadable state as an error
    dep = (lab.get("deployments") or {}).get(deployment) or {}
    if deployment not in state["positions"] or not dep.get("netns"):
        return f"deployment {deployment} runs on loopback, not inside the lab network"
    return None


def enforcement_attempt(lab_state_file: Path, deployment: str, timeout_s: float = 0.8) -> Attempt[list[Observation]] | Outcome:
    """Probe one lab deployment's flows from every lab position, or say why that cannot be done."""
    from nimwarden.lab import netns

    reason = unavailable(lab_state_file, deployment)
    if reason:
        return not_applicable(reason)
    try:
        json.loads(Path(lab_state_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return errored(f"cannot read the lab state {lab_state_file}: {exc}")
    state = netns.read_state(Path(lab_state_file).parent)
    inv = declared_inventory()
    sources, dests, positions, liveness = probe_setup(state, deployment, inv)
    flows = plan_flows(inv, sources, dests, allowed_sample=2, liveness_from=liveness)
    return probe_attempt(flows, positions, timeout_s=timeout_s)
