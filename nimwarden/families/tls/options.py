"""``options.tls`` of a target and of a deployment: its schema (what a profile may write), what the
family makes of it (``TlsOptions``, the ``TlsPolicy`` each endpoint is judged by) and which
endpoints TLS-PLAINTEXT checks. Below both the probes and the judges, which read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, ValidationError

from nimwarden.schema import EndpointName, ProfilePath, Section, Text
from nimwarden.schema.messages import first_problem


class TlsSection(Section):
    """``options.tls`` (target-wide, and per deployment over it)."""

    ca_file: ProfilePath = Field(None, description="CA bundle the endpoints' chains are verified against")
    require: list[EndpointName] = Field(None, description="endpoint names that must speak TLS (default [gateway])")
    mutual: list[EndpointName] = Field(None, description="endpoint names that must refuse clients without a certificate")
    client_cert: ProfilePath = Field(None, description="client certificate offered where mutual TLS is required")
    client_key: ProfilePath = None
    server_name: Text = Field(None, description="the name clients use (SNI and the hostname check); default: the host")
    expiry_warning_days: Annotated[int, Field(ge=0, le=3650)] = 30


@dataclass(frozen=True)
class TlsPolicy:
    version: str = "2026.11.1"
    expiry_warning_days: int = 30
    min_rsa_bits: int = 2048
    min_ec_bits: int = 256
    require_mutual: bool = False
    server_name: str | None = None  # the name clients use; default: the scanned host


@dataclass(frozen=True)
class TlsOptions:
    """``options.tls`` of a deployment (over the target's): what to require and how to connect."""

    ca_file: str | None = None
    require: tuple[str, ...] = ("gateway",)  # endpoint names that must speak TLS
    mutual: tuple[str, ...] = ()  # endpoint names that must refuse clients without a certificate
    client_cert: str | None = None
    client_key: str | None = None
    server_name: str | None = None
    expiry_warning_days: int = 30

    def policy(self, endpoint: str) -> TlsPolicy:
        return TlsPolicy(expiry_warning_days=self.expiry_warning_days, require_mutual=endpoint in self.mutual,
                         server_name=self.server_name)


def tls_options(target, deployment) -> TlsOptions:
    """The deployment's ``options.tls`` over the target's; ValueError ``options.tls.<field>: why``."""
    merged: dict = {}
    for src in (getattr(target, "options", {}) or {}, getattr(deployment, "options", {}) or {}):
        merged.update(src.get("tls", {}) or {})
    try:
        section = TlsSection.model_validate(merged)
    except ValidationError as exc:
        field, why = first_problem(exc, ("options", "tls"))
        raise ValueError(f"{field}: {why}") from None
    given = section.model_dump(exclude_unset=True)
    for key in ("require", "mutual"):
        if key in given:
            given[key] = tuple(given[key])
    return TlsOptions(**given)


def plaintext_endpoints(target, deployment) -> list[tuple[str, bool]]:
    """The endpoints TLS-PLAINTEXT checks, each with whether TLS is required on it (``options.tls.require``;
    the plain HTTP port ``gateway_http`` is checked for a redirect)."""
    required = tls_options(target, deployment).require
    names = [n for n in (*required, "gateway_http") if deployment.endpoint(n) is not None]
    return [(n, n in required) for n in dict.fromkeys(names)]
