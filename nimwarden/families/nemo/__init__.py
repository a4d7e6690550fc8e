"""Family nemo: the NeMo microservices — the NeMo Platform (every service on one API port,
``/apis/<service>/v2/...``), the NeMo Guardrails server, and the legacy per-port services (Data Store,
Entity Store, Customizer, Evaluator, Guardrails microservice, Deployment Management, NIM Proxy) — probed
live from the probe position, and the NIM Operator's NeMo resources and the NeMo Platform chart judged
from cluster state.

The seed's warnings are the family's subject: the services have no internal notion of a user and no
rate limits, are not meant to face the internet, and the Data Store is one access boundary for
everything; the NeMo Platform ships with authentication off, and with it on trusts identity headers
that only a gateway may set.
"""

from __future__ import annotations

from nimwarden.families import Family

FAMILY = Family(
    name="nemo",
    applies={},
)
