"""Family nim-api: what a caller without credentials reaches on a NIM (kind nim, or a Triton
deployment with a NIM front declared as its ``nim`` endpoint), and what it discloses (redacted).

- ``probe``  one bounded request per NIM path and category, from the probe position
- ``judge``       NIM-INFERENCE / -METADATA / -METRICS / -DOCS, and NIM-CORS from a foreign-origin preflight
- ``spec_judge``  NIM-SPEC-* from the container's environment (TLS, CORS origins, queue bound)
- ``engines``     NIM-ENGINECVE: the engines a NIM release bundles (``engines.yaml``, dated) and their advisories
- ``grpc``        NIM-GRPC: the NIM's gRPC API, live and from its workload
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


def _data(target) -> dict:
    from nimwarden.families.nim_api.engines import load_table

    return {"nim_engines": load_table().stamp()}


def _a_nim(ctx: Applicability) -> str | None:
    from nimwarden.families.nim_api.probe import serves_nim

    if not serves_nim(ctx.deployment):
        return f"deployment {ctx.deployment.name} is not a NIM and declares no nim endpoint"
    return None


def _grpc(ctx: Applicability) -> str | None:
    from nimwarden.families.nim_api.grpc import GRPC_ENDPOINT

    if ctx.deployment.endpoint(GRPC_ENDPOINT) is None and k8s.unavailable(ctx.target, ctx.deployment):
        return (f"deployment {ctx.deployment.name} declares no {GRPC_ENDPOINT} endpoint and its workloads cannot be read "
                f"({k8s.unavailable(ctx.target, ctx.deployment)})")
    return None


FAMILY = Family(
    name="nim-api",
    data=_data,
    applies={
        "NIM-ENGINECVE-001": _a_nim,
        "NIM-GRPC-001": _grpc,
        **for_controls("NIM-INFERENCE-001 NIM-METADATA-001 NIM-METRICS-001 NIM-DOCS-001 NIM-CORS-001", _reachable_nim),
        **for_controls("NIM-SPEC-SSL-001 NIM-SPEC-CORS-001 NIM-SPEC-QUEUE-001", lambda ctx: k8s.unavailable(ctx.target, ctx.deployment)),
    },
)
