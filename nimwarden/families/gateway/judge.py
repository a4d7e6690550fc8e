"""Gateway judges (pure): authentication, rate limiting, internal paths."""

from __future__ import annotations

from dataclasses import dataclass

from nimwarden.families.gateway.probe import (
    AuthObservation,
    BurstObservation,
    InternalObservation,
    legacy_tls,
)
from nimwarden.outcome import Attempt, Outcome, errored, fail_closed, failed, passed

REFUSED = (401, 403)


@dataclass(frozen=True)
class RateLimitPolicy:
    """The documented limit, when the profile states one: the first 429 must come by then."""

    documented_burst: int | None = None  # requests accepted before 429 (nginx: burst + 1)
    slack: int = 2


@fail_closed
def judge_authentication(a: Attempt[AuthObservation]) -> Outcome:
    """GATEWAY-AUTHN: every request without credentials is refused (401/403), and the
    configured credential is accepted for inference (a gateway that refuses everyone proves nothing)."""
    o = a.observation
    assert o is not None
    ev = a.evidence()
    open_ = [f"{r.request.label()} -> {r.without_credentials}" for r in o.results if r.without_credentials not in REFUSED]
    if open_:
        return failed(f"{o.base_url} answers without credentials: {'; '.join(open_)}{legacy_tls(o.tls)}", **ev, unauthenticated_accepted=open_)
    if o.credential is None:
        return errored(f"{o.base_url} refused every anonymous request, but no credential is configured to show that "
                       "authorised callers get through (add credentials.gateway to the profile)", **ev)
    inference = [r for r in o.results if r.request.category == "inference"]
    if not inference:
        return errored("no inference request was probed: cannot show the credential works", **ev)
    denied = [f"{r.request.label()} -> {r.with_credentials}" for r in inference if not 200 <= (r.with_credentials or 0) < 300]
    if denied:
        return errored(f"{o.base_url} refused the configured credential ({o.credential}): {'; '.join(denied)}", **ev)
    return passed(f"{o.base_url} refused all {len(o.results)} anonymous request(s) with 401/403 and served "
                  f"inference with the credential{legacy_tls(o.tls)}", **ev)


@fail_closed
def judge_rate_limit(a: Attempt[BurstObservation], policy: RateLimitPolicy = RateLimitPolicy()) -> Outcome:
    """GATEWAY-RATELIMIT: a short burst meets a 429 (by the documented limit, when one is given)."""
    o = a.observation
    assert o is not None
    ev = a.evidence()
    if o.first_429_at is not None:
        if policy.documented_burst is not None and o.first_429_at > policy.documented_burst + policy.slack:
            return failed(f"first 429 only at request {o.first_429_at}, past the documented limit of "
                          f"{policy.documented_burst} (+{policy.slack})", **ev)
        return passed(f"429 at request {o.first_429_at} of a burst on {o.url} ({o.elapsed_s:.2f}s); burst stopped there{legacy_tls(o.tls)}", **ev)
    if any(s in (401, 403) for s in o.statuses):
        return errored(f"the burst was refused with {sorted(o.statuses)}: the credential did not work, so the limit is unproven", **ev)
    if not any(200 <= s < 300 for s in o.statuses):
        return errored(f"the burst never succeeded ({dict(o.statuses)}): cannot tell whether a limit exists", **ev)
    return failed(f"{o.sent} requests to {o.url} in {o.elapsed_s:.2f}s without a single 429 ({o.stopped_because}){legacy_tls(o.tls)}", **ev)


@fail_closed
def judge_internal_paths(a: Attempt[InternalObservation]) -> Outcome:
    """GATEWAY-INTERNAL: management and internal paths are not forwarded, even for a valid caller."""
    o = a.observation
    assert o is not None
    ev = a.evidence()
    blocked = (403, 404) + ((401,) if not o.with_credential else ())
    if o.with_credential and any(s == 401 for s in o.statuses.values()):
        rejected = [p for p, s in o.statuses.items() if s == 401]
        return errored(f"the configured credential was rejected on {', '.join(rejected)}: cannot tell what it would reach", **ev)
    reached = [f"{p} -> {s}" for p, s in o.statuses.items() if s not in blocked]
    if reached:
        return failed(f"{o.base_url} forwards internal path(s): {'; '.join(reached)}{legacy_tls(o.tls)}", **ev, reachable=reached)
    return passed(f"{o.base_url} blocks all {len(o.statuses)} internal path(s){legacy_tls(o.tls)}", **ev)
