"""Gateway probe: authentication, rate limiting and path blocking at the external entry point.

Read-only and bounded: wrong-method and read-only requests for management
paths (docs/facts.md), one small inference, and a short burst capped in count and
duration that stops at the first 429. Certificates and protocol versions are not checked here
(the TLS family judges them): the probe connects with whatever TLS the gateway offers, down to
TLS 1.0 (``nimwarden.net.tls_client.lenient_context``), records the version it got in the
evidence, and judges what the gateway lets through. Every request has a timeout.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from nimwarden.net.http import Limits, credential_header, exchange_reason, limits_for
from nimwarden.outcome import Attempt, attempt

if TYPE_CHECKING:
    from nimwarden.families.gateway.session import ProbeSession

PROBE = "gateway.http"


@dataclass(frozen=True)
class Request:
    """One request the probe may send: method, path, optional JSON body, and what it stands for."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    category: str = "management"  # inference | management | health | internal

    def label(self) -> str:
        return f"{self.method} {self.path}"


def triton_requests(model: str = "add") -> tuple[Request, ...]:
    infer = {"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]},
                        {"name": "INPUT1", "shape": [4], "datatype": "FP32", "data": [1, 1, 1, 1]}]}
    return (
        Request("POST", f"/v2/models/{model}/infer", infer, "inference"),
        Request("GET", "/v2/health/ready", None, "health"),
        Request("GET", f"/v2/models/{model}", None, "management"),
        Request("GET", f"/v2/models/{model}/config", None, "management"),
        Request("GET", "/v2/repository/index", None, "management"),  # wrong method on purpose: 403/405, loads nothing
        Request("GET", "/v2/logging", None, "management"),
        Request("GET", "/v2/trace/setting", None, "management"),
        Request("GET", "/v2/models/stats", None, "management"),
        Request("GET", "/v2/systemsharedmemory/status", None, "management"),
    )


def nim_requests() -> tuple[Request, ...]:
    chat = {"model": "any", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
    return (
        Request("POST", "/v1/chat/completions", chat, "inference"),
        Request("POST", "/v1/completions", {"model": "any", "prompt": "ping", "max_tokens": 1}, "inference"),
        Request("GET", "/v1/health/ready", None, "health"),
        Request("GET", "/v1/models", None, "management"),
        Request("GET", "/v1/metadata", None, "management"),
        Request("GET", "/v1/license", None, "management"),
        Request("GET", "/v1/metrics", None, "management"),
        Request("GET", "/docs", None, "management"),
    )


INTERNAL_PATHS = ("/v2/repository/index", "/v2/logging", "/v2/trace/setting", "/metrics", "/v1/metrics",
                  "/v1/metadata", "/docs", "/openapi.json", "/v2/systemsharedmemory/status")


def _session() -> ProbeSession:
    # the HTTP client is imported when a probe runs, not when the runner asks what applies
    from nimwarden.families.gateway.session import ProbeSession

    return ProbeSession()


def _send(s: ProbeSession, base: str, r: Request, headers: Mapping[str, str], timeout: tuple[float, float] | Limits) -> int:
    return s.probe(r.method, base + r.path, headers=headers, timeout=timeout, body=r.body).status_code


def legacy_tls(note: str | None) -> str:
    """A reason's suffix when the probe had to accept a protocol below TLS 1.2."""
    return f" ({note})" if note and "the tls family" in note else ""


@dataclass(frozen=True)
class PathResult:
    request: Request
    without_credentials: int
    with_credentials: int | None  # None when no credential is configured

    def as_dict(self) -> dict[str, Any]:
        return {"request": self.request.label(), "category": self.request.category,
                "without_credentials": self.without_credentials, "with_credentials": self.with_credentials}


@dataclass(frozen=True)
class AuthObservation:
    base_url: str
    credential: str | None  # where the credential came from (never its value)
    results: tuple[PathResult, ...]
    tls: str | None = None  # how the probe connected (ProbeSession.tls_note)

    def evidence(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "credential": self.credential or "none configured",
                "responses": [r.as_dict() for r in self.results], **({"tls_connection": self.tls} if self.tls else {})}


def _check_scope(base: str, guard: Callable[[str], None] | None) -> None:
    if guard is not None:
        guard(urlsplit(base).hostname or "")


def probe_auth(
    base_url: str,
    requests_: Sequence[Request],
    *,
    credential: tuple[str, str, str] | None = None,  # (header, value, description)
    guard: Callable[[str], None] | None = None,
    timeout: tuple[float, float] | Limits = (2.0, 5.0),
) -> Attempt[AuthObservation]:
    """Send each request once without credentials, and inference/health requests once more
    with the credential (when one is configured)."""
    base = base_url.rstrip("/")
    _check_scope(base, guard)

    def run() -> AuthObservation:
        out = []
        with _session() as s:
            for r in requests_:
                anon = _send(s, base, r, {}, timeout)
                # with the credential only where a success is expected: every extra request
                # counts against the gateway's rate limit (management paths: GATEWAY-INTERNAL)
                wanted = credential is not None and r.category in ("inference", "health")
                cred = _send(s, base, r, {credential[0]: credential[1]}, timeout) if wanted else None
                if cred == 429:  # a rate limit still counting an earlier burst: wait it out once
                    time.sleep(1.0)
                    cred = _send(s, base, r, {credential[0]: credential[1]}, timeout)
                out.append(PathResult(r, anon, cred))
            return AuthObservation(base, credential[2] if credential else None, tuple(out), s.tls_note())

    return attempt(PROBE, f"{len(requests_)} request(s) to {base} with and without credentials", run, exchange_reason)


@dataclass(frozen=True)
class InternalObservation:
    base_url: str
    with_credential: bool
    statuses: Mapping[str, int]  # path -> status
    tls: str | None = None  # how the probe connected (ProbeSession.tls_note)

    def evidence(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "with_credential": self.with_credential, "statuses": dict(self.statuses),
                **({"tls_connection": self.tls} if self.tls else {})}


def probe_internal_paths(
    base_url: str,
    paths: Sequence[str] = INTERNAL_PATHS,
    *,
    credential: tuple[str, str, str] | None = None,
    guard: Callable[[str], None] | None = None,
    timeout: tuple[float, float] | Limits = (2.0, 5.0),
) -> Attempt[InternalObservation]:
    """GET each internal path through the gateway, with the credential when there is one:
    a valid caller must not reach them either."""
    base = base_url.rstrip("/")
    _check_scope(base, guard)

    def run() -> InternalObservation:
        headers = {credential[0]: credential[1]} if credential else {}
        with _session() as s:
            statuses = {p: _send(s, base, Request("GET", p), headers, timeout) for p in paths}
            return InternalObservation(base, credential is not None, statuses, s.tls_note())

    return attempt(PROBE, f"GET {len(paths)} internal path(s) through {base}", run, exchange_reason)


@dataclass(frozen=True)
class BurstObservation:
    url: str
    max_requests: int
    max_duration_s: float
    sent: int
    statuses: Mapping[int, int]  # status -> count
    first_429_at: int | None  # 1-based index of the first 429
    retry_after: str | None
    elapsed_s: float
    stopped_because: str
    tls: str | None = None  # how the probe connected (ProbeSession.tls_note)

    def evidence(self) -> dict[str, Any]:
        return {"url": self.url, "max_requests": self.max_requests, "max_duration_s": self.max_duration_s,
                "sent": self.sent, "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "first_429_at": self.first_429_at, "retry_after": self.retry_after,
                "elapsed_s": round(self.elapsed_s, 3), "stopped_because": self.stopped_because,
                **({"tls_connection": self.tls} if self.tls else {})}


def probe_burst(
    url: str,
    *,
    credential: tuple[str, str, str] | None = None,
    max_requests: int = 30,
    max_duration_s: float = 5.0,
    guard: Callable[[str], None] | None = None,
    timeout: tuple[float, float] | Limits = (2.0, 5.0),
) -> Attempt[BurstObservation]:
    """Sequential GETs on one keep-alive connection until the first 429, ``max_requests`` or
    ``max_duration_s``, whichever comes first: enough to prove a limit, never a flood."""
    if max_requests < 1 or max_requests > 1000 or max_duration_s <= 0 or max_duration_s > 60:
        raise ValueError("burst must stay within 1..1000 requests and 60 s")
    _check_scope(url, guard)

    def run() -> BurstObservation:
        headers = {credential[0]: credential[1]} if credential else {}
        counts: Counter[int] = Counter()
        first, retry_after, why = None, None, "max_requests reached"
        t0 = time.monotonic()
        with _session() as s:
            for i in range(1, max_requests + 1):
                if time.monotonic() - t0 > max_duration_s:
                    why = "max_duration_s reached"
                    break
                resp = s.probe("GET", url, headers=headers, timeout=timeout)
                counts[resp.status_code] += 1
                if resp.status_code == 429:
                    first, retry_after, why = i, resp.headers.get("retry-after"), "first 429 seen"
                    break
            return BurstObservation(url, max_requests, max_duration_s, sum(counts.values()), dict(counts), first,
                                    retry_after, time.monotonic() - t0, why, s.tls_note())

    return attempt(PROBE, f"burst of at most {max_requests} GET {url} in {max_duration_s}s", run, exchange_reason)


# --------------------------------------------------------------------------- from a target profile


@dataclass(frozen=True)
class GatewayEntry:
    base_url: str | None  # the external API entry: the gateway, else the first exposed HTTP(S) endpoint
    via_gateway: bool
    credential: tuple[str, str, str] | None  # (header, value, where it came from)
    requests: tuple[Request, ...]
    burst_url: str | None
    burst_max_requests: int
    burst_max_duration_s: float
    documented_burst: int | None


def entry_point(deployment: Any) -> GatewayEntry:
    """Everything the gateway suite needs, read from the deployment's profile entry.

    The credential is ``credentials.gateway`` (header defaults to Authorization, a bare
    token becomes ``Bearer <token>``); its value is registered for redaction at once.
    """
    from nimwarden.redact import register

    opts = dict((getattr(deployment, "options", {}) or {}).get("gateway", {}) or {})
    eps = dict(deployment.endpoints)
    base, via = None, False
    if "gateway" in eps:
        base, via = eps["gateway"].url, True
    else:
        for name in deployment.exposure:
            e = eps.get(name)
            if e is not None and e.scheme in ("http", "https"):
                base = e.url
                break
    credential = None
    cred = (getattr(deployment, "credentials", {}) or {}).get("gateway")
    if cred is not None:
        value = cred.resolve()
        register(value)
        hv = credential_header(cred.header, value)
        if hv:
            register(hv[1])
            credential = (hv[0], hv[1], cred.describe())
    if deployment.kind == "nim":
        reqs, default_path = nim_requests(), "/v1/health/ready"
    else:
        reqs, default_path = triton_requests(deployment.models[0] if deployment.models else "add"), "/v2/health/ready"
        if "nim" in eps:  # a NIM front beside Triton behind the same gateway: its paths too
            reqs = reqs + nim_requests()
    path = str(opts.get("burst_path", default_path))
    documented = opts.get("documented_burst")
    return GatewayEntry(
        base_url=base, via_gateway=via, credential=credential, requests=reqs,
        burst_url=(base.rstrip("/") + path) if base else None,
        burst_max_requests=int(opts.get("burst_max_requests", 30)),
        burst_max_duration_s=float(opts.get("burst_max_duration_s", 5.0)),
        documented_burst=int(documented) if documented is not None else None,
    )


def timeout_of(target: Any) -> Limits:
    """The limits of one gateway request: the target profile's ``timeouts`` (connect_s, read_s, give_up_after)."""
    return limits_for(target.timeouts)
