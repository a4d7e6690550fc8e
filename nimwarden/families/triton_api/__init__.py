"""Family triton-api: Triton's own APIs probed non-destructively over HTTP and gRPC (restricted
categories, model control, metrics, cloud frontends, known vulnerabilities), and the same concerns
read from the pod's tritonserver flags.

- ``probe``       the bounded HTTP/gRPC calls (wrong-method and nonexistent-name probes only)
- ``inputs``      synthetic inference inputs from model metadata
- ``model_config`` model configurations and metadata read as anyone could, and the secrets they disclose
- ``judge``       the live controls; ``cves.yaml`` the vulnerability table (dated, versioned)
- ``spec_judge``  TRITON-SPEC-* from the container's command and args
"""

from __future__ import annotations

from nimwarden.families import Family, for_controls, needs_endpoint, param
from nimwarden.k8s import source as k8s

BY_PROTOCOL = ("TRITON-MODELCTL-001 TRITON-DYNLOAD-001 TRITON-MODELCONFIG-001 TRITON-SHM-001 TRITON-STATS-001 "
               "TRITON-TRACE-001 TRITON-LOGGING-001 TRITON-AVAIL-001 TRITON-CONFIGSECRET-001")
SPEC = ("TRITON-SPEC-MODELCTL-001 TRITON-SPEC-RESTRICTED-001 TRITON-SPEC-METRICS-001 TRITON-SPEC-TRACE-001 "
        "TRITON-SPEC-CLOUD-001 TRITON-SPEC-EXITONERROR-001 TRITON-SPEC-READINESS-001 TRITON-SPEC-AUTOCOMPLETE-001 "
        "TRITON-SPEC-GRPCSSL-001 TRITON-SPEC-CLIENTSHM-001 TRITON-SPEC-BOUNDS-001 TRITON-SPEC-OPENAI-001")

def _data(target) -> dict:
    from nimwarden.families.triton_api.cves import load_table

    return {"triton_cves": load_table().stamp()}


FAMILY = Family(
    name="triton-api",
    data=_data,
    options=("deployments[].options.tls",),
    applies={
        **for_controls(BY_PROTOCOL, needs_endpoint(param("protocol"))),
        **for_controls("TRITON-TRACE-002 TRITON-CVE-001 TRITON-CVE-002", needs_endpoint("http")),
        "TRITON-METRICS-001": needs_endpoint("metrics"),
        "TRITON-FRONTENDS-001": needs_endpoint(param("frontend")),
        "TRITON-SMINVOKE-001": needs_endpoint("sagemaker"),
        **for_controls(SPEC, lambda ctx: k8s.unavailable(ctx.target, ctx.deployment)),
    },
)
