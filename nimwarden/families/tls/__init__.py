"""Family tls: every TLS endpoint of the profile (HTTPS gateway, gRPC with --grpc-use-ssl) scanned
once with sslyze and judged against the TLS policy; plain text where TLS is expected; Ingress and
Route objects without TLS.

- ``probe``      sslyze scan, certificate reading, the plain-text probe
- ``options``    ``options.tls``: its schema, ``tls_options`` and the TLS policy it sets
- ``judge``      TLS-PROTOCOL … TLS-PLAINTEXT
- ``k8s_judge``  TLS-K8SROUTE from cluster state
"""

from __future__ import annotations

from nimwarden.families import Applicability, Family, for_controls
from nimwarden.families.tls.options import TlsSection
from nimwarden.k8s import source as k8s

SCANNED = "TLS-PROTOCOL-001 TLS-CIPHERS-001 TLS-FORWARDSEC-001 TLS-CHAIN-001 TLS-HOSTNAME-001 TLS-EXPIRY-001 TLS-KEYSIZE-001"


def _tls_endpoint(ctx: Applicability) -> str | None:
    name = ctx.params["endpoint"]
    ep = ctx.deployment.endpoint(name)
    if ep is None:
        return f"deployment {ctx.deployment.name} declares no {name} endpoint"
    if not ep.tls:
        return f"{name} endpoint {ep.url} is not TLS (see TLS-PLAINTEXT-001 for whether it must be)"
    return None


def _mutual_required(ctx: Applicability) -> str | None:
    from nimwarden.families.tls.options import tls_options

    if ctx.params["endpoint"] not in tls_options(ctx.target, ctx.deployment).mutual:
        return f"the profile does not require mutual TLS on {ctx.deployment.name}'s {ctx.params['endpoint']} endpoint"
    return _tls_endpoint(ctx)


def _plaintext_candidates(ctx: Applicability) -> str | None:
    from nimwarden.families.tls.options import plaintext_endpoints, tls_options

    if not plaintext_endpoints(ctx.target, ctx.deployment):
        required = tls_options(ctx.target, ctx.deployment).require
        return f"{ctx.deployment.name} declares none of the endpoints required to be TLS ({', '.join(required)})"
    return None


def _check(target) -> None:
    from nimwarden.families.tls.options import tls_options

    for d in target.deployments:
        tls_options(target, d)  # what the suites read: the deployment's section over the target's


FAMILY = Family(
    name="tls",
    schema={"options.tls": TlsSection, "deployments[].options.tls": TlsSection},
    options=("options.tls", "deployments[].options.tls"),
    check=_check,
    applies={
        **for_controls(SCANNED, _tls_endpoint),
        "TLS-MTLS-001": _mutual_required,
        "TLS-PLAINTEXT-001": _plaintext_candidates,
        "TLS-K8SROUTE-001": lambda ctx: k8s.unavailable(ctx.target, ctx.deployment),
    },
)
