"""Family network-policy: what the policies declare (static controls over the pure model in
``nimwarden.netpol``) and what the network does (NETPOL-ENFORCED-001, probed live).

- ``options``       the schema of ``kubernetes.options.network_policy``
- ``requirements``  the deployment's requirements (``kubernetes.options.network_policy``, seeds as
                    defaults) and the static checks against them
- ``inventory``     the NetworkPolicy inventory from the target's cluster state
- ``live``          where the live probes run: the lab's network namespaces or probe pods
                    (``incluster``)
- ``judge``         NETPOL-* verdicts
"""

from __future__ import annotations

from nimwarden.families import Applicability, Family, for_controls
from nimwarden.families.network_policy.options import NetworkPolicySection
from nimwarden.k8s import source as k8s

STATIC = "NETPOL-DEFAULTDENY-001 NETPOL-NIMAPI-001 NETPOL-EGRESS-001 NETPOL-METRICS-001"


def _enforcement(ctx: Applicability) -> str | None:
    from nimwarden.families.network_policy.live import unavailable

    return unavailable(ctx.target, ctx.deployment)


def _check(target) -> None:
    from nimwarden.families.network_policy.requirements import requirements_from_mapping
    from nimwarden.k8s.probe_pods import probe_options_from_mapping

    section = (target.kubernetes.options or {}).get("network_policy")
    if section is None:
        return
    if not isinstance(section, dict):
        raise ValueError("kubernetes.options.network_policy: must be a mapping")
    try:
        requirements_from_mapping(section)
        if section.get("probe") is not None:
            probe_options_from_mapping(section["probe"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        field, sep, why = str(exc).partition(": ")
        if sep and field.startswith("network_policy"):
            raise ValueError(f"kubernetes.options.{field}: {why}") from None
        raise ValueError(f"kubernetes.options.network_policy: {exc or type(exc).__name__}") from None


FAMILY = Family(
    name="network-policy",
    schema={"kubernetes.options.network_policy": NetworkPolicySection},
    options=("kubernetes.options.network_policy",),
    check=_check,
    applies={
        **for_controls(STATIC, lambda ctx: k8s.unavailable(ctx.target, ctx.deployment)),
        "NETPOL-DB-001": lambda ctx: k8s.unavailable(ctx.target),
        "NETPOL-ENFORCED-001": _enforcement,
    },
)
