"""Family nemo: the NeMo microservices — the NeMo Platform (every service on one API port,
``/apis/<service>/v2/...``), the NeMo Guardrails server, and the legacy per-port services (Data Store,
Entity Store, Customizer, Evaluator, Guardrails microservice, Deployment Management, NIM Proxy) — probed
live from the probe position, and the NIM Operator's NeMo resources and the NeMo Platform chart judged
from cluster state.

The seed's warnings are the family's subject: the services have no internal notion of a user and no
rate limits, are not meant to face the internet, and the Data Store is one access boundary for
everything; the NeMo Platform ships with authentication off, and with it on trusts identity headers
that only a gateway may set.

- ``probe``  one bounded, read-only round per reachable URL (GET/OPTIONS, random nonexistent names)
- ``judge``  NEMO-AUTH / -ANON / -SECRETS / -FORGE / -HFTOKEN / -CORS / -DOCS / -RATELIMIT /
  -GUARDRAILS / -GUARDRAILS-MODELS from those rounds
- ``spec_judge``  NEMO-SPEC-AUTH / -EXPOSE / -NETPOL from cluster state: the platform's auth settings as its
  pods run, and the publication and network isolation of every NeMo workload (the NIM Operator's NeMo
  resources through what the operator renders, ``nimwarden.k8s.nemo_operator``)
"""

from __future__ import annotations

from nimwarden.families import Applicability, Family, for_controls
from nimwarden.k8s import source as k8s

# judged from cluster state: any deployment with a namespace or selector; the judge says not applicable when
# none of its workloads is NeMo
SPEC = "NEMO-SPEC-AUTH-001 NEMO-SPEC-EXPOSE-001 NEMO-SPEC-NETPOL-001"


def _platform(ctx: Applicability) -> str | None:
    from nimwarden.families.nemo.probe import platform_urls

    if not platform_urls(ctx.target, ctx.deployment):
        return (f"deployment {ctx.deployment.name} declares no NeMo Platform endpoint (nemo, nemo_gateway) "
                f"reachable from the probe position ({ctx.target.probe_position})")
    return None


def _any_service(ctx: Applicability) -> str | None:
    from nimwarden.families.nemo.probe import legacy_urls, platform_urls

    if not (platform_urls(ctx.target, ctx.deployment) or legacy_urls(ctx.target, ctx.deployment)):
        return (f"deployment {ctx.deployment.name} declares no NeMo service endpoint (nemo, nemo_gateway, nemo_datastore, …) "
                f"reachable from the probe position ({ctx.target.probe_position})")
    return None


def _platform_or_guardrails(ctx: Applicability) -> str | None:
    from nimwarden.families.nemo.probe import guardrails_urls, platform_urls

    if not (platform_urls(ctx.target, ctx.deployment) or guardrails_urls(ctx.target, ctx.deployment)):
        return (f"deployment {ctx.deployment.name} declares no NeMo Platform or Guardrails endpoint reachable from the "
                f"probe position ({ctx.target.probe_position})")
    return None


def _guardrails(ctx: Applicability) -> str | None:
    from nimwarden.families.nemo.probe import guardrails_urls

    if not guardrails_urls(ctx.target, ctx.deployment):
        return (f"deployment {ctx.deployment.name} declares no NeMo Guardrails endpoint (guardrails) reachable from the "
                f"probe position ({ctx.target.probe_position})")
    return None


FAMILY = Family(
    name="nemo",
    applies={
        **for_controls("NEMO-AUTH-001 NEMO-SECRETS-001 NEMO-FORGE-001 NEMO-HFTOKEN-001 NEMO-RATELIMIT-001", _platform),
        "NEMO-ANON-001": _any_service,
        **for_controls("NEMO-CORS-001 NEMO-DOCS-001", _platform_or_guardrails),
        **for_controls("NEMO-GUARDRAILS-001 NEMO-GUARDRAILS-MODELS-001", _guardrails),
        **for_controls(SPEC, lambda ctx: k8s.unavailable(ctx.target, ctx.deployment)),
    },
)
