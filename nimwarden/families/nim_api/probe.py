"""NIM probe: which documented NIM endpoints answer without credentials, and what they disclose.

Only GETs, plus one minimal completion request (``max_tokens: 1``) on each
inference path: the same thing any client does. Bodies are summarised
(field names, a few disclosing fields) and passed through nimwarden.redact
before they become evidence: a repository override with a credential in its
URL is reported as ``https://nim:nv…xy[sha256:…]@…``, never in clear.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nimwarden.net import http
from nimwarden.outcome import Attempt, attempt
from nimwarden.redact import redact
from nimwarden.target import reachable_http

PROBE = "nim.http"

# path -> (method, category); categories map to the nim-api controls
NIM_PATHS: Mapping[str, tuple[str, str]] = {
    "/v1/health/live": ("GET", "health"),
    "/v1/health/ready": ("GET", "health"),
    "/v1/models": ("GET", "inference"),
    "/v1/chat/completions": ("POST", "inference"),
    "/v1/completions": ("POST", "inference"),
    "/v1/metadata": ("GET", "metadata"),
    "/v1/version": ("GET", "metadata"),
    "/v1/license": ("GET", "metadata"),
    "/v1/metrics": ("GET", "metrics"),
    "/metrics": ("GET", "metrics"),
    "/docs": ("GET", "docs"),
    "/openapi.json": ("GET", "docs"),
}
DISCLOSING_FIELDS = ("profile", "licenseInfo", "repository_override", "modelInfo", "assetInfo", "version", "release", "name", "path")
_BODIES = {
    "/v1/chat/completions": {"model": "any", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1},
    "/v1/completions": {"model": "any", "prompt": "ping", "max_tokens": 1},
}


@dataclass(frozen=True)
class EndpointAnswer:
    path: str
    method: str
    category: str
    status: int
    content_type: str
    disclosed: Mapping[str, Any]  # redacted summary of what the body reveals

    @property
    def reachable(self) -> bool:
        return 200 <= self.status < 300

    def as_dict(self) -> dict[str, Any]:
        return {"request": f"{self.method} {self.path}", "status": self.status, "content_type": self.content_type,
                "disclosed": dict(self.disclosed)}


@dataclass(frozen=True)
class NimObservation:
    base_url: str
    answers: tuple[EndpointAnswer, ...]

    def reachable(self, category: str) -> tuple[EndpointAnswer, ...]:
        return tuple(a for a in self.answers if a.category == category and a.reachable)

    def evidence(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "answers": [a.as_dict() for a in self.answers]}


def _summary(path: str, resp: http.HttpResponse) -> dict[str, Any]:
    ctype = resp.headers.get("content-type", "")
    text = resp.text()[:65536]
    out: dict[str, Any] = {}
    if "json" in ctype:
        try:
            body = json.loads(text)
        except ValueError:
            return {"unparsed_bytes": len(text)}
        if isinstance(body, dict):
            out["fields"] = sorted(body)[:40]
            for key in DISCLOSING_FIELDS:
                if key in body and body[key] not in (None, "", [], {}):
                    out[key] = body[key]
            if path == "/v1/models":
                out["models"] = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)][:20]
        return redact(out)
    if path in ("/v1/metrics", "/metrics"):
        families = sorted({ln.split()[2] for ln in text.splitlines() if ln.startswith("# TYPE ") and len(ln.split()) > 2})
        out["metric_families"] = families[:40]
    elif "html" in ctype:
        out["html_bytes"] = len(text)
    return redact(out)


def _connection(base: str, timeout: tuple[float, float] | http.Limits) -> tuple[http.Connection, str]:
    """One bounded keep-alive connection to the NIM (HTTPS unverified on purpose: the TLS family judges
    certificates), and the path prefix of its base URL."""
    return http.Connection.lenient(base, timeout), urlsplit(base).path.rstrip("/")


def probe_nim(base_url: str, *, guard: Callable[[str], None] | None = None,
              timeout: tuple[float, float] | http.Limits = (2.0, 5.0)) -> Attempt[NimObservation]:
    """Ask every documented NIM path once, without credentials; every exchange bounded (net.http.Connection)."""
    base = base_url.rstrip("/")
    if guard is not None:
        guard(urlsplit(base).hostname or "")

    def run() -> NimObservation:
        answers = []
        conn, prefix = _connection(base, timeout)
        try:
            for path, (method, category) in NIM_PATHS.items():
                resp = conn.exchange(method, prefix + path, json_body=_BODIES.get(path))
                disclosed = _summary(path, resp) if 200 <= resp.status < 300 else {}
                answers.append(EndpointAnswer(path, method, category, resp.status, resp.headers.get("content-type", ""), disclosed))
        finally:
            conn.close()
        return NimObservation(base, tuple(answers))

    return attempt(PROBE, f"{len(NIM_PATHS)} NIM path(s) on {base} without credentials", run, http.exchange_reason)


def serves_nim(deployment: Any) -> bool:
    """A NIM deployment, or a Triton deployment with a NIM front (a ``nim`` endpoint)."""
    return deployment.kind == "nim" or "nim" in dict(deployment.endpoints)


def reachable_base_urls(target: Any, deployment: Any) -> tuple[str, ...]:
    """The NIM API URLs a caller at the probe position can address.

    Candidates: the gateway and the NIM's own endpoint (``http`` for a deployment of
    kind nim, ``nim`` for a NIM front beside Triton). From outside, only those on a
    host that carries an endpoint named in ``exposure`` (a NIM published on the
    gateway's address is reachable whether the profile meant it or not); from inside
    the cluster, all of them.
    """
    own = "http" if deployment.kind == "nim" else "nim"
    return tuple(e.url for e in reachable_http(deployment, target.probe_position, ("gateway", own)).values())


@dataclass(frozen=True)
class DeploymentAnswers:
    urls: tuple[str, ...]
    attempts: list[Attempt[NimObservation]]

    @property
    def subject(self) -> str:
        return " ".join(self.urls)


def deployment_answers(target: Any, deployment: Any) -> DeploymentAnswers:
    """Every reachable NIM base URL of the deployment and its answers (one round per deployment; the
    probe cache shares it among the four NIM controls)."""
    urls = reachable_base_urls(target, deployment)
    limits = http.limits_for(target.timeouts)
    return DeploymentAnswers(urls, [probe_nim(u, guard=target.guard, timeout=limits) for u in urls])


# ------------------------------------------------------------------ CORS

FOREIGN_ORIGIN = "https://nimwarden-cors-probe.invalid"  # a name that can never be a real site (RFC 2606 .invalid)


@dataclass(frozen=True)
class CorsObservation:
    base_url: str
    path: str
    status: int
    allow_origin: str | None
    allow_credentials: bool
    allow_methods: str | None

    def evidence(self) -> dict[str, Any]:
        return {"request": f"OPTIONS {self.base_url}{self.path} (preflight, Origin {FOREIGN_ORIGIN}, method POST)",
                "status": self.status, "access-control-allow-origin": self.allow_origin,
                "access-control-allow-credentials": self.allow_credentials,
                "access-control-allow-methods": self.allow_methods}


def probe_cors(base_url: str, *, guard: Callable[[str], None] | None = None,
               timeout: tuple[float, float] | http.Limits = (2.0, 5.0), path: str = "/v1/chat/completions") -> Attempt[CorsObservation]:
    """One CORS preflight from a foreign origin (what a browser sends before a cross-site POST): does the NIM
    let a page on any site call its API with the visitor's browser? Read-only: a preflight runs no request."""
    base = base_url.rstrip("/")
    if guard is not None:
        guard(urlsplit(base).hostname or "")

    def run() -> CorsObservation:
        conn, prefix = _connection(base, timeout)
        try:
            resp = conn.exchange("OPTIONS", prefix + path, headers={
                "Origin": FOREIGN_ORIGIN, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type"})
        finally:
            conn.close()
        h = resp.headers
        return CorsObservation(base, path, resp.status, h.get("access-control-allow-origin"),
                               str(h.get("access-control-allow-credentials", "")).lower() == "true", h.get("access-control-allow-methods"))

    return attempt("nim.cors", f"CORS preflight on {base}{path} from {FOREIGN_ORIGIN}", run, http.exchange_reason)


def deployment_cors(target: Any, deployment: Any) -> list[Attempt[CorsObservation]]:
    """A preflight on every NIM base URL reachable from the probe position."""
    limits = http.limits_for(target.timeouts)
    return [probe_cors(u, guard=target.guard, timeout=limits) for u in reachable_base_urls(target, deployment)]


# ------------------------------------------------------------------ the NIM release (NIM-ENGINECVE)

NIM_IMAGE = re.compile(r"(?:^|/)nim/[^:@]+:(?P<tag>[^@]+)")


def _version_answer(url: str, target: Any, headers: dict[str, str] | None = None) -> tuple[str | None, str]:
    """(release, what was seen) from ``GET <url>/v1/version``; release None when it did not say."""
    limits = http.limits_for(target.timeouts)
    a = http.request("GET", url.rstrip("/") + "/v1/version", probe="nim.version", limits=limits, guard=target.guard, headers=headers,
                     redact_headers=tuple(k.lower() for k in headers or ()))
    asked = f"GET {url.rstrip('/')}/v1/version" + (" with the gateway credential" if headers else "")
    if not a.completed:
        return None, f"{asked}: {a.error}"
    r = a.observation
    if r.status != 200:
        return None, f"{asked} answered HTTP {r.status}"
    try:
        body = r.json()
        release = str(body.get("release") or "").strip()
    except (ValueError, AttributeError):
        return None, f"{asked} answered 200 but not JSON"
    return (release or None), f"{asked} answered {json.dumps(redact({'release': body.get('release'), 'api': body.get('api')}))}"


NO_NIM_IMAGE = "no NIM image (nvcr.io/nim/…) among the deployment's workloads"


def _image_release(target: Any, deployment: Any) -> tuple[str | None, str]:
    """(release, what was seen) from the NIM's image tag (``nvcr.io/nim/<org>/<model>:<release>``) in cluster state."""
    from nimwarden.k8s import source as k8s
    from nimwarden.outcome import Outcome

    if k8s.unavailable(target, deployment):
        return None, "no cluster state for the deployment"
    w = k8s.for_deployment(target, deployment)
    if isinstance(w, Outcome):
        return None, f"cluster state: {w.reason}"
    images = sorted({str(c.get("image") or "") for t in w.templates for _, c in t.containers() if NIM_IMAGE.search(str(c.get("image") or ""))})
    if not images:
        return None, NO_NIM_IMAGE
    m = NIM_IMAGE.search(images[0])
    return m.group("tag"), f"image tag {images[0]}" + (f" (of {len(images)} NIM images: {', '.join(images)})" if len(images) > 1 else "")


def nim_release(target: Any, deployment: Any) -> Any:  # an Attempt, or not_applicable when no NIM runs there
    """The NIM's release: ``GET /v1/version`` on its own endpoint, through the gateway with the profile's gateway
    credential when that is refused, else the image tag in cluster state. Read-only; an incomplete attempt
    (error) when none of them says."""
    from nimwarden.families.nim_api.engines import NimRelease
    from nimwarden.net.http import auth_headers

    seen: dict[str, Any] = {}
    own = deployment.endpoint("http" if deployment.kind == "nim" else "nim")
    if own is not None:
        release, seen["own_endpoint"] = _version_answer(own.url, target)
        if release:
            return Attempt("nim.version", seen["own_endpoint"], NimRelease(release, f"GET {own.url}/v1/version", seen), None)
    gateway, headers = deployment.endpoint("gateway"), auth_headers(deployment.credentials.get("gateway"))
    if gateway is not None and gateway.scheme in ("http", "https") and headers:
        release, seen["gateway"] = _version_answer(gateway.url, target, headers)
        if release:
            return Attempt("nim.version", seen["gateway"], NimRelease(release, f"GET {gateway.url}/v1/version with the gateway credential", seen), None)
    release, seen["image"] = _image_release(target, deployment)
    if release:
        return Attempt("nim.version", seen["image"], NimRelease(release, seen["image"], seen), None)
    if own is None and gateway is None and seen["image"] == NO_NIM_IMAGE:
        # Nothing to ask, and the cluster state, read, holds no NIM image: no NIM runs here (an operator chart,
        # a Triton workload declared kind nim) — the subject does not exist, so the control does not apply.
        from nimwarden.outcome import not_applicable

        return not_applicable(f"deployment {deployment.name} declares no NIM endpoint and its workloads run no NIM image "
                              "(nvcr.io/nim/…): no NIM release to judge")
    return Attempt("nim.version", "the NIM release (GET /v1/version, its image tag)", None,
                   "no source said which NIM release this is: " + "; ".join(f"{k}: {v}" for k, v in seen.items()))


def grpc_connect(target: Any, deployment: Any) -> Attempt[str]:
    """A TCP connect (nothing sent) to the declared NIM gRPC endpoint (``nim_grpc``)."""
    ep = deployment.endpoint("nim_grpc")
    limits = http.limits_for(target.timeouts)
    return http.tcp_connect(ep.host, ep.port, probe="nim.grpc", limits=limits, guard=target.guard)
