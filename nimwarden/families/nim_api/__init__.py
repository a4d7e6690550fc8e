"""Family nim-api: what a caller without credentials reaches on a NIM (kind nim, or a Triton
deployment with a NIM front declared as its ``nim`` endpoint), and what it discloses (redacted).

- ``probe``  one bounded request per NIM path and category, from the probe position
- ``judge``       NIM-INFERENCE / -METADATA / -METRICS / -DOCS, and NIM-CORS from a foreign-origin preflight
- ``spec_judge``  NIM-SPEC-* from the container's environment (TLS, CORS origins, queue bound)
"""

from __future__ import annotations

from nimwarden.families import Applicability, Family, for_controls
from nimwarden.k8s import source as k8s


def _reachable_nim(ctx: Applicability) -> str | None:
    from nimwarden.families.nim_api.probe import reachable_base_urls, serves_nim

    if not serves_nim(ctx.deployment):
        return f"deployment {ctx.deployment.name} is not a NIM and declares no nim endpoint"
    if not reachable_base_urls(ctx.target, ctx.deployment):
        return f"deployment {ctx.deployment.name} has no HTTP endpoint reachable from the probe position"
    return None


FAMILY = Family(
    name="nim-api",
    applies={
        **for_controls("NIM-INFERENCE-001 NIM-METADATA-001 NIM-METRICS-001 NIM-DOCS-001 NIM-CORS-001", _reachable_nim),
        **for_controls("NIM-SPEC-SSL-001 NIM-SPEC-CORS-001 NIM-SPEC-QUEUE-001", lambda ctx: k8s.unavailable(ctx.target, ctx.deployment)),
    },
)
