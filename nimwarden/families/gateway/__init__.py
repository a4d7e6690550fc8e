"""Family gateway: the external API entry point authenticates, rate-limits, and does not forward
management or internal paths; routes do not publish ``/``.

- ``probe``      the bounded probes (anonymous requests, a capped burst, internal paths); ``entry_point``
                 reads ``options.gateway`` and ``credentials.gateway``
- ``judge``      GATEWAY-AUTHN / -RATELIMIT / -INTERNAL
- ``k8s_judge``  GATEWAY-K8SROOT from cluster state
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from nimwarden.families import Applicability, Family, for_controls
from nimwarden.k8s import source as k8s
from nimwarden.schema import Positive, Section


class GatewaySection(Section):
    """``deployments[].options.gateway``: the rate limit the gateway is documented to allow, and the burst's bounds."""

    documented_burst: Annotated[int, Field(ge=0)] = Field(None, description="requests accepted before 429 (nginx: burst + 1)")
    burst_path: Annotated[str, Field(pattern=r"^/")] = Field(None, description="the path the burst asks (default: the readiness path)")
    burst_max_requests: Annotated[int, Field(ge=1, le=1000)] = 30
    burst_max_duration_s: Annotated[Positive, Field(le=60)] = 5.0


def _entry_point(ctx: Applicability) -> str | None:
    from nimwarden.families.gateway.probe import entry_point

    if entry_point(ctx.deployment).base_url is None:
        return f"deployment {ctx.deployment.name} declares neither a gateway nor an exposed HTTP endpoint"
    return None


FAMILY = Family(
    name="gateway",
    schema={"deployments[].options.gateway": GatewaySection},
    options=("deployments[].options.gateway",),
    applies={
        **for_controls("GATEWAY-AUTHN-001 GATEWAY-RATELIMIT-001 GATEWAY-INTERNAL-001", _entry_point),
        "GATEWAY-K8SROOT-001": lambda ctx: k8s.unavailable(ctx.target, ctx.deployment),
    },
)
