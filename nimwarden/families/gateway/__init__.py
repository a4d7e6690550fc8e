"""Family gateway: the external API entry point authenticates, rate-limits, and does not forward
management or internal paths; routes do not publish ``/``.

- ``probe``      the bounded probes (anonymous requests, a capped burst, internal paths); ``entry_point``
                 reads ``options.gateway`` and ``credentials.gateway``
- ``judge``      GATEWAY-AUTHN / -RATELIMIT / -INTERNAL
- ``k8s_judge``  GATEWAY-K8SROOT from cluster state
"""

from __future__ import annotations

from nimwarden.families import Applicability, Family, for_controls
from nimwarden.k8s import source as k8s


def _entry_point(ctx: Applicability) -> str | None:
    from nimwarden.families.gateway.probe import entry_point

    if entry_point(ctx.deployment).base_url is None:
        return f"deployment {ctx.deployment.name} declares neither a gateway nor an exposed HTTP endpoint"
    return None


FAMILY = Family(
    name="gateway",
    options=("deployments[].options.gateway",),
    applies={
        **for_controls("GATEWAY-AUTHN-001 GATEWAY-RATELIMIT-001 GATEWAY-INTERNAL-001", _entry_point),
        "GATEWAY-K8SROOT-001": lambda ctx: k8s.unavailable(ctx.target, ctx.deployment),
    },
)
