"""Judges of the nemo family's live controls (pure): a round's answers against what NVIDIA's NeMo
security guidance asks.

How an answer to a caller without (valid) credentials reads:
- 401 or 403: refused — the route is guarded;
- 2xx, or 404 for a random, nonexistent name: let through — the route's own handler ran (a 404 from
  the lookup proves nothing but that the caller got that far, which is the finding);
- anything else (5xx, a 429 that did not clear, a redirect): cannot tell — error, never pass.
A control judges every reachable URL of the deployment: any fail fails, else any error errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from nimwarden.families.nemo.probe import (
    FOREIGN_ORIGIN,
    FORGED_HEADERS,
    Answer,
    Burst,
    GuardrailsRound,
    LegacyRound,
    PlatformRound,
)
from nimwarden.outcome import Attempt, Outcome, combine_urls, errored, fail_closed, failed, passed


def refused(a: Answer) -> bool:
    return a.status in (401, 403)


def let_through(a: Answer) -> bool:
    return 200 <= a.status < 300 or a.status == 404


def _shown(answers: Iterable[Answer]) -> str:
    return "; ".join(f"{a.label} -> {a.status}" for a in answers)


def _evidence(a: Attempt, *answers: Answer | None, **more: Any) -> dict[str, Any]:
    ev = a.evidence()
    ev["answers"] = [x.as_dict() for x in answers if x is not None]
    ev.update(more)
    return ev


def combine(outcomes: Sequence[Outcome], what: str) -> Outcome:
    """One verdict over every reachable URL: any fail fails, else any error errors, else pass."""
    return combine_urls(outcomes, "per_url") or errored(f"no {what} was probed")


def _version(r: PlatformRound) -> str:
    return f"NeMo Platform {r.platform_version}" if r.platform_version else "the NeMo Platform (version not disclosed)"


# --------------------------------------------------------------------------- platform controls


@fail_closed
def auth_enabled(a: Attempt[PlatformRound]) -> Outcome:
    """NEMO-AUTH-001: the platform reports authentication on (its unauthenticated discovery answer)."""
    r = a.observation
    assert r is not None
    ev = _evidence(a, r.discovery, r.version)
    if r.discovery.status != 200:
        return errored(f"{r.base_url}{r.discovery.label[4:]} answered {r.discovery.status}: the platform's auth discovery "
                       "cannot be read, so whether authentication is on is unknown", **ev)
    body = r.discovery.data
    if not isinstance(body, dict) or "auth_enabled" not in body:
        return errored(f"{r.base_url}/apis/auth/discovery did not answer as a NeMo Platform does (not the expected JSON: "
                       "no auth_enabled field)", **ev)
    enabled = body["auth_enabled"]
    if enabled is True:
        return passed(f"{_version(r)} at {r.base_url} has authentication on (auth_enabled: true)", **ev)
    if enabled is False:
        return failed(f"{_version(r)} at {r.base_url} has authentication off (auth_enabled: false): every route of every "
                      "service answers anyone who reaches it", **ev)
    return errored(f"{r.base_url}/apis/auth/discovery: auth_enabled is {enabled!r}, not a boolean", **ev)


def _anonymous_lists(answers: Sequence[Answer], where: str, ev: dict, through_404: bool = True) -> Outcome:
    open_ = [x for x in answers if (let_through(x) if through_404 else 200 <= x.status < 300)]
    if open_:
        return failed(f"{where} answers without credentials: {_shown(open_)}", **ev, open_routes=[x.label for x in open_])
    unknown = [x for x in answers if not refused(x)]
    if unknown:
        return errored(f"{where}: cannot tell whether these refuse anonymous callers: {_shown(unknown)}", **ev)
    return passed(f"{where} refuses anonymous callers on every list route ({len(answers)}: 401/403)", **ev)


@fail_closed
def anonymous_platform(a: Attempt[PlatformRound]) -> Outcome:
    r = a.observation
    assert r is not None
    return _anonymous_lists(r.lists, f"{_version(r)} at {r.base_url}", _evidence(a, *r.lists))


@fail_closed
def anonymous_legacy(a: Attempt[LegacyRound]) -> Outcome:
    r = a.observation
    assert r is not None
    # A legacy service's list route exists by name: 404 there means "not this service", not "let through".
    return _anonymous_lists(r.lists, f"the NeMo {r.service} at {r.base_url}", _evidence(a, *r.lists), through_404=False)


def anonymous_reads(platform: Sequence[Attempt], legacy: Sequence[Attempt]) -> Outcome:
    """NEMO-ANON-001: no NeMo service answers its list routes to anonymous callers."""
    return combine([*map(anonymous_platform, platform), *map(anonymous_legacy, legacy)], "NeMo service URL")


def _guarded(a: Attempt[PlatformRound], x: Answer, guarded: str, open_: str, severity: str | None = None) -> Outcome:
    """One route asked with (at most) a made-up credential: refused passes, let through fails, anything else errors."""
    r = a.observation
    assert r is not None
    ev = _evidence(a, x)
    if refused(x):
        return passed(f"{r.base_url}: {guarded} ({x.status})", **ev)
    if let_through(x):
        return failed(f"{r.base_url}: {x.label} answered {x.status}: {open_}", severity=severity, **ev)
    return errored(f"{r.base_url}: {x.label} answered {x.status}: whether the route is guarded is unknown", **ev)


@fail_closed
def secret_access(a: Attempt[PlatformRound]) -> Outcome:
    """NEMO-SECRETS-001: the secrets service's value route refuses callers without credentials."""
    return _guarded(a, a.observation.secret_access, "the secret-access route refuses anonymous callers",
                    "an anonymous caller reached the secret lookup, so the value of any secret whose name it knows or lists "
                    "is returned in plain text")


@fail_closed
def identity_forgery(a: Attempt[PlatformRound]) -> Outcome:
    """NEMO-FORGE-001: a request carrying forged identity headers (a ``service:`` principal) is refused."""
    r = a.observation
    assert r is not None
    anon, cred, forged = r.forge_anonymous, r.forge_credential, r.forged
    ev = _evidence(a, anon, cred, forged, forged_headers=sorted(FORGED_HEADERS))
    where = f"{_version(r)} at {r.base_url}" + (" (through its gateway)" if r.via_gateway else "")
    if refused(forged):
        return passed(f"{where} refuses a forged service principal ({forged.status})", **ev)
    if not let_through(forged):
        return errored(f"{where}: the forged request answered {forged.status}: whether the identity was honoured is unknown", **ev)
    if let_through(anon):
        return failed(f"{where} admits anonymous callers, so a forged identity gets in too ({_shown([anon, forged])}); "
                      "NEMO-AUTH-001 and NEMO-ANON-001 say why", severity="high", **ev)
    if cred is not None and let_through(cred):
        return errored(f"{where}: the {r.credential} alone already gets past this route ({cred.status}), so the probe cannot "
                       "tell whether the forged headers were honoured; give nimwarden a credential with no role", **ev)
    return failed(f"{where} honoured a forged service principal: {forged.label} -> {forged.status} where the same request "
                  f"{'with only the credential' if cred is not None else 'without it'} was refused "
                  f"({(cred or anon).status}). Any caller who can reach it is a platform service; the gateway in front must "
                  "strip every X-NMP-Principal-* / X-NMP-Authorized / X-NMP-Scopes header", severity="critical", **ev)


@fail_closed
def hf_service_bearer(a: Attempt[PlatformRound]) -> Outcome:
    """NEMO-HFTOKEN-001: the files service's Hugging Face routes refuse a fixed ``Bearer service:*``."""
    return _guarded(a, a.observation.hf_service_bearer, "the Hugging Face-compatible file routes refuse a made-up service bearer",
                    "any caller presenting the fixed token 'service:<anything>' reads and writes filesets as a platform service",
                    severity="critical")


def _cors(a: Attempt, x: Answer, where: str) -> Outcome:
    ev = _evidence(a, x)
    origin = x.headers.get("access-control-allow-origin")
    creds = str(x.headers.get("access-control-allow-credentials", "")).lower() == "true"
    if x.status >= 500:
        return errored(f"{where}: the preflight answered {x.status}: whether cross-site calls are allowed is unknown", **ev)
    if origin == FOREIGN_ORIGIN or (origin == "*" and creds):
        return failed(f"{where} lets any web page call it with the visitor's credentials: a preflight from {FOREIGN_ORIGIN} got "
                      f"Access-Control-Allow-Origin: {origin}" + (", Access-Control-Allow-Credentials: true" if creds else ""), **ev)
    shown = f"Access-Control-Allow-Origin: {origin}" if origin else "no Access-Control-Allow-Origin"
    return passed(f"{where} does not grant a foreign origin ({x.status}, {shown})", **ev)


@fail_closed
def cors_platform(a: Attempt[PlatformRound]) -> Outcome:
    r = a.observation
    assert r is not None
    if not isinstance(r.discovery.data, dict) or "auth_enabled" not in r.discovery.data:
        # Only a URL that answers as a NeMo Platform can have its CORS answer judged (a pass needs a platform).
        return errored(f"{r.base_url} does not answer as a NeMo Platform (GET /apis/auth/discovery -> {r.discovery.status}, "
                       "not the expected JSON), so its CORS answer cannot be judged", **_evidence(a, r.discovery, r.cors))
    return _cors(a, r.cors, f"{_version(r)} at {r.base_url}")


@fail_closed
def cors_guardrails(a: Attempt[GuardrailsRound]) -> Outcome:
    r = a.observation
    assert r is not None
    if not (refused(r.configs) or isinstance(r.configs.data, list)):
        return errored(f"{r.base_url} does not answer as a NeMo Guardrails server (GET /v1/rails/configs -> {r.configs.status}, "
                       "not the expected JSON list), so its CORS answer cannot be judged", **_evidence(a, r.configs, r.cors))
    return _cors(a, r.cors, f"the NeMo Guardrails server at {r.base_url}")


def cors(platform: Sequence[Attempt], guardrails: Sequence[Attempt]) -> Outcome:
    """NEMO-CORS-001: neither the platform nor a Guardrails server reflects arbitrary origins with credentials."""
    return combine([*map(cors_platform, platform), *map(cors_guardrails, guardrails)], "NeMo URL")


@fail_closed
def api_docs(a: Attempt) -> Outcome:
    """NEMO-DOCS-001: the interactive API docs and the OpenAPI document are not served to anonymous callers."""
    r = a.observation
    assert r is not None
    answers = list(r.docs) if isinstance(r, PlatformRound) else [r.docs]
    where = f"{_version(r)} at {r.base_url}" if isinstance(r, PlatformRound) else f"the NeMo Guardrails server at {r.base_url}"
    ev = _evidence(a, *answers)
    served = [x for x in answers if 200 <= x.status < 300]
    if served:
        return failed(f"{where} serves its API description to anonymous callers: {_shown(served)}", **ev)
    unknown = [x for x in answers if not (refused(x) or x.status == 404)]
    if unknown:
        return errored(f"{where}: cannot tell whether the API docs are served: {_shown(unknown)}", **ev)
    return passed(f"{where} does not serve its API docs to anonymous callers ({_shown(answers)})", **ev)


def docs(platform: Sequence[Attempt], guardrails: Sequence[Attempt]) -> Outcome:
    return combine([api_docs(a) for a in (*platform, *guardrails)], "NeMo URL")


@fail_closed
def rate_limited(a: Attempt[Burst]) -> Outcome:
    """NEMO-RATELIMIT-001: something in front of the platform limits the request rate (429)."""
    b = a.observation
    assert b is not None
    ev = a.evidence()
    if b.first_429 is not None:
        return passed(f"{b.url}: rate limited after {b.first_429} request(s) in {b.seconds:.1f}s (429)", **ev)
    statuses = ", ".join(f"{k}x{v}" for k, v in sorted(b.statuses.items()))
    if any(s >= 500 for s in b.statuses):
        return errored(f"{b.url}: the burst got server errors ({statuses}), so whether a limit exists is unknown", **ev)
    return failed(f"{b.url}: {b.sent} back-to-back requests in {b.seconds:.1f}s, none limited (statuses {statuses}): "
                  "the NeMo services have no rate limit of their own, and nothing in front adds one", **ev)


def rate_limits(bursts: Sequence[Attempt]) -> Outcome:
    return combine([rate_limited(b) for b in bursts], "NeMo Platform URL")


# --------------------------------------------------------------------------- Guardrails server


@fail_closed
def guardrails_anonymous(a: Attempt[GuardrailsRound]) -> Outcome:
    """NEMO-GUARDRAILS-001: a Guardrails server reachable from the probe position refuses anonymous callers."""
    r = a.observation
    assert r is not None
    x = r.configs
    ev = _evidence(a, x)
    if refused(x):
        return passed(f"the NeMo Guardrails server at {r.base_url} refuses anonymous callers ({x.status})", **ev)
    if 200 <= x.status < 300:
        return failed(f"the NeMo Guardrails server at {r.base_url} answers anonymous callers ({x.label} -> {x.status}): it has "
                      "no authentication of its own, so its chat API and configurations are open to whoever reaches it", **ev)
    return errored(f"the NeMo Guardrails server at {r.base_url}: {x.label} answered {x.status}: not a Guardrails server, or "
                   "whether it is guarded is unknown", **ev)


@fail_closed
def guardrails_models(a: Attempt[GuardrailsRound]) -> Outcome:
    """NEMO-GUARDRAILS-MODELS-001: the server does not list its upstream's models, fetched with its own key, to anonymous callers."""
    r = a.observation
    assert r is not None
    x = r.models
    ev = _evidence(a, x)
    if refused(x):
        return passed(f"the NeMo Guardrails server at {r.base_url} refuses the model list to anonymous callers ({x.status})", **ev)
    if 200 <= x.status < 300:
        listed = '"data":[]' not in x.excerpt.replace(" ", "")
        if listed:
            return failed(f"the NeMo Guardrails server at {r.base_url} lists its upstream's models to anonymous callers "
                          f"({x.label} -> {x.status}), fetched with the server's own API key", **ev)
        return passed(f"the NeMo Guardrails server at {r.base_url} answers {x.label} with an empty list (no upstream key used)", **ev)
    return errored(f"the NeMo Guardrails server at {r.base_url}: {x.label} answered {x.status}: whether it lists models is unknown", **ev)


def each(attempts: Sequence[Attempt], judge: Callable[[Attempt], Outcome], what: str) -> Outcome:
    """``judge`` on every attempt, combined (:func:`combine`)."""
    return combine([judge(a) for a in attempts], what)
