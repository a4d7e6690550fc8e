"""Size the live probe matrix from the model: the pairs that matter, not every pair.

Every expected-blocked flow is probed (each one is a place where an
unenforced policy would show), plus a deterministic sample of
expected-allowed flows per destination port (they prove the destination is
alive, so that a silent block means something), plus one liveness flow per
destination port from the destination's own position when it has one.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nimwarden.netpol.enforcement import LIVENESS, Flow
from nimwarden.netpol.matrix import PortKey, ReachabilityMatrix
from nimwarden.netpol.model import ReachabilityModel
from nimwarden.netpol.objects import Inventory


@dataclass(frozen=True)
class Destination:
    pod: str  # model pod key
    address: str
    ports: tuple[PortKey, ...]


def plan_flows(
    inv: Inventory,
    sources: Sequence[str],
    destinations: Sequence[Destination],
    allowed_sample: int = 2,
    liveness_from: Mapping[str, str] | None = None,
    seed: int = 0,
) -> list[Flow]:
    """Flows to probe. ``liveness_from`` maps a destination pod to the position that can reach it locally."""
    keys = sorted({k for d in destinations for k in d.ports}, key=lambda k: (k.port, k.protocol))
    matrix = ReachabilityMatrix(inv, keys)
    model = ReachabilityModel(inv)
    rnd = random.Random(seed)
    flows: list[Flow] = []
    for dest in destinations:
        for key in dest.ports:
            allowed: list[Flow] = []
            for src in sources:
                if src == dest.pod:
                    continue
                expected = matrix.allowed(src, dest.pod, key.port, key.protocol)
                why = model.evaluate(src, dest.pod, key.port, key.protocol).explain()
                flow = Flow(src, dest.pod, dest.address, key.port, key.protocol, expected, why)
                (allowed if expected else flows).append(flow)
            flows.extend(sorted(rnd.sample(allowed, min(allowed_sample, len(allowed))), key=lambda f: f.source))
            local = (liveness_from or {}).get(dest.pod)
            if local is not None:
                flows.append(Flow(local, dest.pod, dest.address, key.port, key.protocol, True, "liveness: the destination's own position", LIVENESS))
    return flows
