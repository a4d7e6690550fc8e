"""Live probes of the nemo family: what a caller at the probe position reaches on the NeMo Platform, the
NeMo Guardrails server and the legacy per-port NeMo microservices.

Non-destructive by construction: GET and OPTIONS only, and every name in a path is random and new
(``nimwarden-probe-<hex>``), so no existing workspace, secret or file is ever read. A route that answers
404 for a random name to a caller without credentials has let that caller through to its lookup (it is
open); 401/403 says it is guarded. Every request goes through the bounded client (``nimwarden.net.http``:
one deadline per call, the target's scope checked first); a gateway's rate limit (429) is waited out a
few times, then recorded. Bodies become evidence only as short, redacted excerpts.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nimwarden.net.http import HttpResponse, Limits, credential_header, limits_for, request
from nimwarden.net.tls_client import lenient_context
from nimwarden.outcome import Attempt, attempt
from nimwarden.redact import redact_text, register
from nimwarden.target import reachable_http

PROBE = "nemo.http"
PLATFORM_ENDPOINTS = ("nemo_gateway", "nemo")
# Legacy per-port microservices: endpoint name -> (service, its list routes from NVIDIA's client SDK,
# nemo-microservices 1.5.0; the Data Store's Hugging Face-compatible API for the Data Store)
LEGACY: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "nemo_datastore": ("Data Store", ("/v1/hf/api/models", "/v1/hf/api/datasets")),
    "nemo_entitystore": ("Entity Store", ("/v1/namespaces", "/v1/projects", "/v1/datasets", "/v1/models")),
    "nemo_customizer": ("Customizer", ("/v1/customization/configs", "/v1/customization/jobs")),
    "nemo_evaluator": ("Evaluator", ("/v1/evaluation/configs", "/v1/evaluation/jobs", "/v2/evaluation/jobs")),
    "nemo_guardrails": ("Guardrails microservice", ("/v1/guardrail/configs", "/v1/guardrail/models")),
    "nemo_deployment": ("Deployment Management", ("/v1/deployment/configs", "/v1/deployment/model-deployments")),
    "nim_proxy": ("NIM Proxy", ("/v1/models",)),
}
# One list route per NeMo Platform service, in a workspace that does not exist (``{ws}``).
PLATFORM_LISTS: Mapping[str, str] = {
    "entities": "/apis/entities/v2/workspaces",
    "projects": "/apis/entities/v2/workspaces/{ws}/projects",
    "secrets": "/apis/secrets/v2/workspaces/{ws}/secrets",
    "files": "/apis/files/v2/workspaces/{ws}/filesets",
    "models": "/apis/models/v2/workspaces/{ws}/models",
    "jobs": "/apis/jobs/v2/workspaces/{ws}/jobs",
    "guardrails": "/apis/guardrails/v2/workspaces/{ws}/configs",
    "evaluator": "/apis/evaluator/v2/workspaces/{ws}/evaluate/jobs",
    "customization": "/apis/customization/v2/workspaces/{ws}/automodel/jobs",
    "inference-gateway": "/apis/inference-gateway/v2/workspaces/{ws}/virtual-models",
    "auth": "/apis/auth/v2/iam/role-bindings",
}
SECRET_ACCESS = "/apis/secrets/v2/workspaces/{ws}/secrets/{name}/access"
FORGE_ROUTE = "/apis/entities/v2/workspaces/{ws}"
HF_ROUTE = "/apis/files/v2/hf/api/models/{ws}/{name}"
DOCS = ("/docs", "/redoc", "/openapi.json")
DISCOVERY = "/apis/auth/discovery"
FORGED_PRINCIPAL = "service:nimwarden-probe"
# What a forged caller sends: the platform's identity headers (and its successor's, X-NHX-*).
FORGED_HEADERS = {"X-NMP-Principal-Id": FORGED_PRINCIPAL, "X-NMP-Principal-Email": "probe@nimwarden.invalid",
                  "X-NMP-Scopes": "platform:read", "X-NHX-Principal-Id": FORGED_PRINCIPAL}
FOREIGN_ORIGIN = "https://nimwarden-cors-probe.invalid"
RETRIES_ON_429 = 3


@dataclass(frozen=True)
class Answer:
    """One request and what came back (status, a short redacted excerpt, the CORS headers)."""

    label: str
    status: int
    excerpt: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    waited_429: int = 0
    data: Any = None  # the parsed JSON body, for the few answers a judge reads (discovery, cluster-info)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"request": self.label, "status": self.status}
        if self.excerpt:
            out["body"] = self.excerpt
        if self.headers:
            out["headers"] = dict(self.headers)
        if self.waited_429:
            out["rate_limited_retries"] = self.waited_429
        return out


class Failed(Exception):
    """A request got no HTTP answer: the round is incomplete (the judges say error)."""


@dataclass
class _Client:
    base: str
    limits: Limits
    guard: Callable[[str], None] | None
    credential: tuple[str, str] | None = None

    def ask(self, method: str, path: str, label: str, headers: Mapping[str, str] | None = None,
            with_credential: bool = False, parse: bool = False) -> Answer:
        sent = dict(headers or {})
        if with_credential and self.credential:
            sent[self.credential[0]] = self.credential[1]
        waited = 0
        while True:
            a = request(method, self.base + path, probe=PROBE, limits=self.limits, guard=self.guard, headers=sent,
                        ssl_context=lenient_context(), redact_headers=("authorization",))
            if not a.completed:
                raise Failed(f"{method} {self.base}{path}: {a.error}")
            resp: HttpResponse = a.observation  # type: ignore[assignment]
            if resp.status != 429 or waited >= RETRIES_ON_429:
                break
            waited += 1
            time.sleep(_retry_after(resp))
        cors = {k: v for k, v in resp.headers.items() if k.startswith("access-control-")}
        data = None
        if parse and 200 <= resp.status < 300:
            try:
                data = resp.json()
            except ValueError:
                data = None
        return Answer(label, resp.status, _excerpt(resp), cors, waited, data)


def _retry_after(resp: HttpResponse) -> float:
    try:
        return min(5.0, max(0.5, float(resp.headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


def _excerpt(resp: HttpResponse, n: int = 240) -> str:
    text = resp.text()
    return redact_text(text[:n] + ("…" if len(text) > n else "")) if text else ""


def probe_name() -> str:
    return f"nimwarden-probe-{secrets.token_hex(5)}"


# --------------------------------------------------------------------------- the NeMo Platform


@dataclass(frozen=True)
class PlatformRound:
    base_url: str
    via_gateway: bool
    credential: str | None  # where the credential sent with the forged request came from (never its value)
    discovery: Answer
    version: Answer
    lists: tuple[Answer, ...]
    secret_access: Answer
    docs: tuple[Answer, ...]
    forge_anonymous: Answer
    forge_credential: Answer | None
    forged: Answer
    hf_service_bearer: Answer
    cors: Answer

    def evidence(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "via_gateway": self.via_gateway, "platform_version": self.platform_version}

    @property
    def platform_version(self) -> str | None:
        data = self.version.data
        version = data.get("platform_version") if isinstance(data, dict) else None
        return str(version) if version else None


def probe_platform(base_url: str, *, via_gateway: bool, limits: Limits, guard=None,
                   credential: tuple[str, str, str] | None = None) -> Attempt[PlatformRound]:
    """One round on a NeMo Platform URL: discovery and version, every service's list route and the secret
    access route without credentials, the API docs, a forged identity (with the deployment's credential when
    it declares one, so that a gateway lets the request reach the platform), a fixed ``Bearer service:*`` on
    the files service's Hugging Face routes, and a CORS preflight from a foreign origin."""
    base = base_url.rstrip("/")
    if credential:
        register(credential[1])
    client = _Client(base, limits, guard, (credential[0], credential[1]) if credential else None)
    ws, name = probe_name(), probe_name()

    def run() -> PlatformRound:
        lists = tuple(client.ask("GET", p.format(ws=ws), f"GET {p.format(ws='<random>')} ({svc}, no credentials)")
                      for svc, p in PLATFORM_LISTS.items())
        forge_path = FORGE_ROUTE.format(ws=ws)
        shown = FORGE_ROUTE.format(ws="<random>")
        forged_label = f"GET {shown} with forged {', '.join(f'{k}: {v}' for k, v in FORGED_HEADERS.items() if k.endswith('-Id'))}"
        return PlatformRound(
            base, via_gateway, credential[2] if credential else None,
            discovery=client.ask("GET", DISCOVERY, f"GET {DISCOVERY} (no credentials)", parse=True),
            # The version for the evidence: with the deployment's credential when it has one (a gateway may ask for it).
            version=client.ask("GET", "/cluster-info", "GET /cluster-info" + (f" with the {credential[2]} credential" if credential else ""),
                               with_credential=True, parse=True),
            lists=lists,
            secret_access=client.ask("GET", SECRET_ACCESS.format(ws=ws, name=name),
                                     f"GET {SECRET_ACCESS.format(ws='<random>', name='<random>')} (no credentials)"),
            docs=tuple(client.ask("GET", p, f"GET {p} (no credentials)") for p in DOCS),
            forge_anonymous=client.ask("GET", forge_path, f"GET {shown} (no credentials)"),
            forge_credential=(client.ask("GET", forge_path, f"GET {shown} with the {credential[2]} credential", with_credential=True)
                              if credential else None),
            forged=client.ask("GET", forge_path, forged_label + (f" and the {credential[2]} credential" if credential else ""),
                              FORGED_HEADERS, with_credential=True),
            hf_service_bearer=client.ask("GET", HF_ROUTE.format(ws=ws, name=name),
                                         f"GET {HF_ROUTE.format(ws='<random>', name='<random>')} with Authorization: Bearer {FORGED_PRINCIPAL}",
                                         {"Authorization": f"Bearer {FORGED_PRINCIPAL}"}),
            cors=client.ask("OPTIONS", PLATFORM_LISTS["entities"],
                            f"OPTIONS {PLATFORM_LISTS['entities']} (preflight, Origin {FOREIGN_ORIGIN})",
                            {"Origin": FOREIGN_ORIGIN, "Access-Control-Request-Method": "GET",
                             "Access-Control-Request-Headers": "authorization"}),
        )

    return attempt(PROBE, f"NeMo Platform round on {base} ({len(PLATFORM_LISTS) + 12} GET/OPTIONS requests, random names)",
                   run, describe=str)


@dataclass(frozen=True)
class Burst:
    url: str
    sent: int
    statuses: Mapping[int, int]
    first_429: int | None
    seconds: float

    def evidence(self) -> dict[str, Any]:
        return {"url": self.url, "sent": self.sent, "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "first_429_at": self.first_429, "seconds": round(self.seconds, 2)}


def probe_burst(base_url: str, *, limits: Limits, guard=None, max_requests: int = 40, max_seconds: float = 6.0) -> Attempt[Burst]:
    """At most ``max_requests`` GETs of the unauthenticated discovery route in ``max_seconds``, back to back,
    stopping at the first 429: does anything in front of the platform limit the rate?"""
    url = base_url.rstrip("/") + DISCOVERY

    def run() -> Burst:
        counts: dict[int, int] = {}
        first = None
        t0 = time.monotonic()
        for i in range(max_requests):
            a = request("GET", url, probe=PROBE, limits=limits, guard=guard, ssl_context=lenient_context())
            if not a.completed:
                raise Failed(f"GET {url}: {a.error}")
            status = a.observation.status  # type: ignore[union-attr]
            counts[status] = counts.get(status, 0) + 1
            if status == 429:
                first = i + 1
                break
            if time.monotonic() - t0 > max_seconds:
                break
        return Burst(url, sum(counts.values()), counts, first, time.monotonic() - t0)

    return attempt(PROBE, f"burst of at most {max_requests} GET {url} in {max_seconds:g}s", run, describe=str)


# --------------------------------------------------------------------------- Guardrails and legacy services


@dataclass(frozen=True)
class GuardrailsRound:
    base_url: str
    configs: Answer
    models: Answer
    docs: Answer
    cors: Answer

    def evidence(self) -> dict[str, Any]:
        return {"base_url": self.base_url}


def probe_guardrails(base_url: str, *, limits: Limits, guard=None) -> Attempt[GuardrailsRound]:
    """A NeMo Guardrails server without credentials: its configurations, the upstream model list it fetches
    with its own key, its API docs, and a CORS preflight on the chat API."""
    client = _Client(base_url.rstrip("/"), limits, guard)

    def run() -> GuardrailsRound:
        return GuardrailsRound(
            client.base,
            configs=client.ask("GET", "/v1/rails/configs", "GET /v1/rails/configs (no credentials)", parse=True),
            models=client.ask("GET", "/v1/models", "GET /v1/models (no credentials)"),
            docs=client.ask("GET", "/openapi.json", "GET /openapi.json (no credentials)"),
            cors=client.ask("OPTIONS", "/v1/chat/completions", f"OPTIONS /v1/chat/completions (preflight, Origin {FOREIGN_ORIGIN})",
                            {"Origin": FOREIGN_ORIGIN, "Access-Control-Request-Method": "POST",
                             "Access-Control-Request-Headers": "authorization,content-type"}),
        )

    return attempt(PROBE, f"NeMo Guardrails server round on {client.base} (4 requests)", run, describe=str)


@dataclass(frozen=True)
class LegacyRound:
    endpoint: str
    service: str
    base_url: str
    lists: tuple[Answer, ...]

    def evidence(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "service": self.service, "base_url": self.base_url}


def probe_legacy(endpoint: str, base_url: str, *, limits: Limits, guard=None) -> Attempt[LegacyRound]:
    """A legacy NeMo microservice's list routes without credentials."""
    service, routes = LEGACY[endpoint]
    client = _Client(base_url.rstrip("/"), limits, guard)

    def run() -> LegacyRound:
        return LegacyRound(endpoint, service, client.base,
                           tuple(client.ask("GET", p, f"GET {p} ({service}, no credentials)") for p in routes))

    return attempt(PROBE, f"{service} list routes on {client.base}", run, describe=str)


# --------------------------------------------------------------------------- from a target profile


def _reachable(target: Any, deployment: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The deployment's endpoints among ``names`` that a caller at the probe position can address."""
    return reachable_http(deployment, target.probe_position, names)


def platform_urls(target: Any, deployment: Any) -> dict[str, Any]:
    return _reachable(target, deployment, PLATFORM_ENDPOINTS)


def guardrails_urls(target: Any, deployment: Any) -> dict[str, Any]:
    return _reachable(target, deployment, ("guardrails",))


def legacy_urls(target: Any, deployment: Any) -> dict[str, Any]:
    return _reachable(target, deployment, tuple(LEGACY))


def limits_of(target: Any) -> Limits:
    return limits_for(target.timeouts, max_body=256 * 1024)


def credential_of(deployment: Any) -> tuple[str, str, str] | None:
    """``credentials.nemo`` (header defaults to Authorization; a bare token becomes ``Bearer <token>``)."""
    cred = dict(getattr(deployment, "credentials", {}) or {}).get("nemo")
    if cred is None:
        return None
    sent = credential_header(cred.header, cred.resolve())
    return (*sent, f"credentials.nemo ({cred.describe()})") if sent else None


@dataclass(frozen=True)
class DeploymentNemo:
    """Every NeMo round of one deployment (the probe cache shares it among the family's controls)."""

    platform: tuple[Attempt[PlatformRound], ...]
    guardrails: tuple[Attempt[GuardrailsRound], ...]
    legacy: tuple[Attempt[LegacyRound], ...]
    urls: tuple[str, ...]

    @property
    def subject(self) -> str:
        return " ".join(self.urls)


def deployment_nemo(target: Any, deployment: Any) -> DeploymentNemo:
    limits, cred = limits_of(target), credential_of(deployment)
    plat = platform_urls(target, deployment)
    rails = guardrails_urls(target, deployment)
    legacy = legacy_urls(target, deployment)
    return DeploymentNemo(
        tuple(probe_platform(e.url, via_gateway=n == "nemo_gateway", limits=limits, guard=target.guard, credential=cred)
              for n, e in plat.items()),
        tuple(probe_guardrails(e.url, limits=limits, guard=target.guard) for e in rails.values()),
        tuple(probe_legacy(n, e.url, limits=limits, guard=target.guard) for n, e in legacy.items()),
        tuple(e.url for e in (*plat.values(), *rails.values(), *legacy.values())),
    )


@dataclass(frozen=True)
class DeploymentBursts:
    attempts: tuple[Attempt[Burst], ...]
    urls: tuple[str, ...]

    @property
    def subject(self) -> str:
        return " ".join(self.urls)


def deployment_bursts(target: Any, deployment: Any) -> DeploymentBursts:
    """A burst on each reachable NeMo Platform URL (after the rounds: it may leave a limiter counting)."""
    urls = tuple(e.url for e in platform_urls(target, deployment).values())
    return DeploymentBursts(tuple(probe_burst(u, limits=limits_of(target), guard=target.guard) for u in urls), urls)
