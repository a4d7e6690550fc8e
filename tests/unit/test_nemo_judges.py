"""The nemo family's judges on rounds built to the shape of real answers (as the real NeMo Platform 0.6.0,
its gateway and a NeMo Guardrails server gave them in the lab): a good, a bad and an undecidable case per
control, and an incomplete round (the probe broke) that is an error, never a pass."""

from __future__ import annotations

import dataclasses

import pytest

from nimwarden.families.nemo import judge
from nimwarden.families.nemo.probe import (
    FOREIGN_ORIGIN,
    PLATFORM_LISTS,
    Answer,
    Burst,
    GuardrailsRound,
    LegacyRound,
    PlatformRound,
)
from nimwarden.outcome import Attempt

BASE = "https://127.0.0.2:8443"


def answer(label: str, status: int, **kw) -> Answer:
    return Answer(label, status, **kw)


def platform(auth: bool = True, *, via_gateway: bool = False, credential: bool = False, forged: int | None = None,
             secret: int | None = None, hf: int | None = None, lists: int | None = None, docs: int | None = None,
             cors_origin: str | None = None, discovery: dict | None = None) -> Attempt[PlatformRound]:
    """A round as the real platform answers: ``auth`` on (401 to anonymous callers, a service principal let
    through) or off (every route open, 404 for random names); keyword arguments override single answers."""
    anon = 401 if auth else 404
    r = PlatformRound(
        BASE, via_gateway, "credentials.nemo (file:token)" if credential else None,
        discovery=answer("GET /apis/auth/discovery (no credentials)", 200,
                         data=discovery if discovery is not None else {"auth_enabled": auth, "oidc": None}),
        version=answer("GET /cluster-info", 200, data={"platform_version": "0.6.0", "revision": "dev"}),
        lists=tuple(answer(f"GET {p.format(ws='<random>')} ({svc}, no credentials)", lists or (401 if auth else (200 if "{ws}" not in p else 404)))
                    for svc, p in PLATFORM_LISTS.items()),
        secret_access=answer("GET /apis/secrets/v2/workspaces/<random>/secrets/<random>/access (no credentials)", secret or anon),
        docs=tuple(answer(f"GET {p} (no credentials)", docs or (401 if auth else 200)) for p in ("/docs", "/redoc", "/openapi.json")),
        forge_anonymous=answer("GET /apis/entities/v2/workspaces/<random> (no credentials)", anon),
        forge_credential=answer("GET /apis/entities/v2/workspaces/<random> with the credential", 403) if credential else None,
        forged=answer("GET /apis/entities/v2/workspaces/<random> with forged X-NMP-Principal-Id: service:nimwarden-probe",
                      forged or 404),
        hf_service_bearer=answer("GET /apis/files/v2/hf/api/models/<random>/<random> with Authorization: Bearer service:nimwarden-probe",
                                 hf or 404),
        cors=answer("OPTIONS /apis/entities/v2/workspaces (preflight)", 200 if cors_origin else 401,
                    headers=({"access-control-allow-origin": cors_origin, "access-control-allow-credentials": "true"}
                             if cors_origin else {})),
    )
    return Attempt("nemo.http", f"NeMo Platform round on {BASE}", r)


def broken(what: str = "NeMo Platform round") -> Attempt:
    return Attempt("nemo.http", f"{what} on {BASE}", None, f"GET {BASE}/apis/auth/discovery: connection refused (nothing listening)")


def guardrails(status: int = 401, models: str = '{"data":[{"id":"m"}]}', cors_origin: str | None = None) -> Attempt[GuardrailsRound]:
    r = GuardrailsRound("http://127.0.0.3:7331", answer("GET /v1/rails/configs (no credentials)", status,
                                                        data=[{"id": "lab"}] if status == 200 else None),
                        answer("GET /v1/models (no credentials)", status, excerpt=models if status == 200 else ""),
                        answer("GET /openapi.json (no credentials)", status),
                        answer("OPTIONS /v1/chat/completions (preflight)", 200 if cors_origin else 405,
                               headers={"access-control-allow-origin": cors_origin, "access-control-allow-credentials": "true"}
                               if cors_origin else {}))
    return Attempt("nemo.http", "NeMo Guardrails server round on http://127.0.0.3:7331 (4 requests)", r)


# --------------------------------------------------------------------------- NEMO-AUTH-001


def test_auth_on_passes_off_fails_and_an_odd_answer_is_an_error():
    good, bad = judge.auth_enabled(platform(True)), judge.auth_enabled(platform(False))
    assert good.status == "pass" and "NeMo Platform 0.6.0" in good.reason and good.evidence["platform_version"] == "0.6.0"
    assert bad.status == "fail" and "auth_enabled: false" in bad.reason
    assert judge.auth_enabled(platform(discovery={"status": "ok"})).status == "error"  # not a NeMo Platform's answer
    assert judge.auth_enabled(platform(discovery={"auth_enabled": "yes"})).status == "error"
    assert judge.auth_enabled(broken()).status == "error"


# --------------------------------------------------------------------------- NEMO-ANON-001


def test_anonymous_lists_refused_pass_open_fail_naming_the_route():
    assert judge.anonymous_reads([platform(True)], []).status == "pass"
    bad = judge.anonymous_reads([platform(False)], [])
    assert bad.status == "fail" and "/apis/entities/v2/workspaces (entities, no credentials) -> 200" in bad.reason
    assert "/apis/secrets/v2/workspaces/<random>/secrets (secrets, no credentials) -> 404" in bad.reason
    assert judge.anonymous_reads([platform(True, lists=500)], []).status == "error"
    assert judge.anonymous_reads([broken()], []).status == "error"


def test_legacy_services_open_fail_and_a_404_on_a_list_route_is_not_a_pass():
    def legacy(status: int) -> Attempt:
        r = LegacyRound("nemo_entitystore", "Entity Store", "http://127.0.0.3:8000",
                        (answer("GET /v1/namespaces (Entity Store, no credentials)", status),))
        return Attempt("nemo.http", "Entity Store list routes on http://127.0.0.3:8000", r)

    bad = judge.anonymous_reads([], [legacy(200)])
    assert bad.status == "fail" and "Entity Store" in bad.reason and "/v1/namespaces" in bad.reason
    assert judge.anonymous_reads([], [legacy(403)]).status == "pass"
    assert judge.anonymous_reads([], [legacy(404)]).status == "error"  # not that service: cannot tell
    # one URL open among several: the verdict fails, naming it
    assert judge.anonymous_reads([platform(True)], [legacy(200)]).status == "fail"


# --------------------------------------------------------------------------- NEMO-SECRETS-001


def test_secret_access_route():
    assert judge.secret_access(platform(True)).status == "pass"
    bad = judge.secret_access(platform(False))
    assert bad.status == "fail" and "reached the secret lookup" in bad.reason
    assert judge.secret_access(platform(True, secret=502)).status == "error"


# --------------------------------------------------------------------------- NEMO-FORGE-001


def test_forged_service_principal_is_critical_where_anonymous_was_refused():
    bad = judge.identity_forgery(platform(True))  # auth on, no gateway: the real platform's answers
    assert bad.status == "fail" and bad.severity == "critical" and "honoured a forged service principal" in bad.reason
    gateway = judge.identity_forgery(platform(True, via_gateway=True, credential=True, forged=403))
    assert gateway.status == "pass" and "through its gateway" in gateway.reason
    open_ = judge.identity_forgery(platform(False))
    assert open_.status == "fail" and open_.severity == "high" and "admits anonymous callers" in open_.reason


def test_forgery_cannot_be_told_when_the_credential_itself_gets_in():
    r = platform(True, credential=True)
    obs = dataclasses.replace(r.observation, forge_credential=answer("GET … with the credential", 404))
    out = judge.identity_forgery(Attempt(r.probe, r.request, obs))
    assert out.status == "error" and "cannot tell" in out.reason
    assert judge.identity_forgery(platform(True, forged=503)).status == "error"
    assert judge.identity_forgery(broken()).status == "error"


# --------------------------------------------------------------------------- NEMO-HFTOKEN-001


def test_hf_routes_and_a_service_bearer():
    bad = judge.hf_service_bearer(platform(True))  # the platform itself takes `Bearer service:*`, auth on or off
    assert bad.status == "fail" and bad.severity == "critical"
    assert judge.hf_service_bearer(platform(True, hf=401)).status == "pass"
    assert judge.hf_service_bearer(platform(True, hf=500)).status == "error"


# --------------------------------------------------------------------------- NEMO-CORS-001 / NEMO-DOCS-001


def test_cors_echoing_a_foreign_origin_fails_on_platform_and_guardrails():
    assert judge.cors([platform(True)], [guardrails()]).status == "pass"
    assert judge.cors([platform(True, cors_origin=FOREIGN_ORIGIN)], []).status == "fail"
    bad = judge.cors([platform(True)], [guardrails(cors_origin=FOREIGN_ORIGIN)])
    assert bad.status == "fail" and "Guardrails" in bad.reason
    assert judge.cors([platform(True, cors_origin="*")], []).status == "fail"  # * with credentials
    assert judge.cors([broken()], []).status == "error"
    # a URL that does not answer as a NeMo Platform (discovery not its JSON) cannot have its CORS judged: never a pass
    assert judge.cors([platform(True, discovery={"status": "ok"})], []).status == "error"


def test_docs_served_fail_refused_or_absent_pass():
    assert judge.docs([platform(True)], [guardrails()]).status == "pass"
    bad = judge.docs([platform(False)], [])
    assert bad.status == "fail" and "GET /openapi.json (no credentials) -> 200" in bad.reason
    assert judge.docs([platform(True, docs=404)], []).status == "pass"
    assert judge.docs([platform(True, docs=502)], []).status == "error"


# --------------------------------------------------------------------------- NEMO-RATELIMIT-001


def test_burst_without_429_fails_with_429_passes():
    def burst(statuses: dict, first: int | None) -> Attempt:
        return Attempt("nemo.http", "burst", Burst(BASE + "/apis/auth/discovery", sum(statuses.values()), statuses, first, 0.4))

    assert judge.rate_limits([burst({200: 20, 429: 1}, 21)]).status == "pass"
    bad = judge.rate_limits([burst({200: 40}, None)])
    assert bad.status == "fail" and "40 back-to-back requests" in bad.reason
    assert judge.rate_limits([burst({502: 40}, None)]).status == "error"
    assert judge.rate_limits([broken("burst")]).status == "error"
    assert judge.rate_limits([]).status == "error"  # nothing probed is never a pass


# --------------------------------------------------------------------------- Guardrails


@pytest.mark.parametrize("control", [judge.guardrails_anonymous, judge.guardrails_models])
def test_guardrails_controls(control):
    assert control(guardrails(401)).status == "pass"
    assert control(guardrails(200)).status == "fail"
    assert control(guardrails(502)).status == "error"
    assert control(broken("NeMo Guardrails server round")).status == "error"


def test_guardrails_model_list_empty_is_not_a_finding():
    out = judge.guardrails_models(guardrails(200, models='{"data": []}'))
    assert out.status == "pass" and "empty list" in out.reason
