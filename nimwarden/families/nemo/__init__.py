"""Family nemo: the NeMo microservices — the NeMo Platform (every service on one API port,
``/apis/<service>/v2/...``), the NeMo Guardrails server, and the legacy per-port services (Data Store,
Entity Store, Customizer, Evaluator, Guardrails microservice, Deployment Management, NIM Proxy) — probed
live from the probe position, and the NIM Operator's NeMo resources and the NeMo Platform chart judged
from cluster state.

The seed's warnings are the family's subject: the services have no internal notion of a user and no
rate limits, are not meant to face the internet, and the Data Store is one access boundary for
everything; the NeMo Platform ships with authentication off, and with it on trusts identity headers
that only a gateway may set.

- ``spec_judge``  NEMO-SPEC-AUTH / -EXPOSE / -NETPOL from cluster state: the platform's auth settings as its
  pods run, and the publication and network isolation of every NeMo workload (the NIM Operator's NeMo
  resources through what the operator renders, ``nimwarden.k8s.nemo_operator``)
"""

from __future__ import annotations

from nimwarden.families import Family, for_controls
from nimwarden.k8s import source as k8s

# judged from cluster state: any deployment with a namespace or selector; the judge says not applicable when
# none of its workloads is NeMo
SPEC = "NEMO-SPEC-AUTH-001 NEMO-SPEC-EXPOSE-001 NEMO-SPEC-NETPOL-001"

FAMILY = Family(
    name="nemo",
    applies={
        **for_controls(SPEC, lambda ctx: k8s.unavailable(ctx.target, ctx.deployment)),
    },
)
