"""NIM endpoint judges (pure): what a caller without credentials reaches and learns.

Health endpoints answering anonymously is expected (Kubernetes probes use
them) and only recorded. Everything else is a finding when it answers 2xx
without credentials: inference and model listing, metadata/version/licence
(profile, licence and repository override disclosure), metrics, the OpenAPI
explorer.
"""

from __future__ import annotations

from nimwarden.families.nim_api.probe import NimObservation
from nimwarden.outcome import Attempt, Outcome, combine_urls, errored, fail_closed, failed, passed

WHAT = {
    "inference": "inference and model listing",
    "metadata": "metadata, version and licence",
    "metrics": "metrics",
    "docs": "the OpenAPI explorer",
}


@fail_closed
def judge_anonymous(a: Attempt[NimObservation], category: str) -> Outcome:
    """NIM-*: no endpoint of ``category`` answers 2xx without credentials."""
    if category not in WHAT:
        raise ValueError(f"unknown NIM endpoint category {category!r}")
    o = a.observation
    assert o is not None
    ev = a.evidence()
    if all(x.status == 404 for x in o.answers):
        return errored(f"{o.base_url} answered 404 on every documented NIM path: not a NIM endpoint, or the wrong URL", **ev)
    reached = o.reachable(category)
    if reached:
        labels = [f"{x.method} {x.path} -> {x.status}" for x in reached]
        disclosed = {f"{x.method} {x.path}": dict(x.disclosed) for x in reached if x.disclosed}
        severity = None
        if category == "metadata" and any("repository_override" in d for d in disclosed.values()):
            severity = "high"  # the override URL names where models come from, sometimes with a credential
        return failed(f"{o.base_url} serves {WHAT[category]} without credentials: {'; '.join(labels)}",
                      severity=severity, **ev, reachable=labels, disclosed=disclosed)
    asked = [x for x in o.answers if x.category == category]
    statuses = ", ".join(f"{x.path} -> {x.status}" for x in asked)
    if any(x.status >= 500 for x in asked):
        # A server error is not a refusal: whether credentials would be demanded is unknown.
        return errored(f"{o.base_url} answered with a server error (5xx), so whether it refuses {WHAT[category]} "
                       f"to anonymous callers is unknown ({statuses})", **ev)
    return passed(f"{o.base_url} refuses {WHAT[category]} to anonymous callers ({statuses})", **ev)


def judge_anonymous_all(attempts: list[Attempt[NimObservation]], category: str) -> Outcome:
    """The verdict over every reachable NIM base URL: any fail fails, else any error errors."""
    outcomes = [judge_anonymous(a, category) for a in attempts]
    return combine_urls(outcomes, "per_endpoint", single_pass_as_is=False) or errored(f"no NIM endpoint to probe for {WHAT[category]}")


@fail_closed
def judge_cors(attempts: list, nim_answers: list | None = None) -> Outcome:
    """NIM-CORS: a preflight from a foreign origin is not granted: no echo of that origin, and no ``*``
    together with credentials (``*`` alone is recorded: a browser then sends no cookies or auth).

    Only a NIM that answers as a NIM can be judged: when the same URLs' NIM round (``nim_answers``)
    could not be judged, or a preflight got a server error, the verdict is an error, never a pass."""
    if not attempts:
        return errored("no NIM URL was preflighted")
    if nim_answers is not None:
        round_ = judge_anonymous_all(nim_answers, "inference")
        if round_.status.value == "error":
            return errored(f"the NIM API did not answer as a NIM, so its CORS cannot be judged: {round_.reason}",
                           preflights=[a.evidence() for a in attempts])
    broken = [a for a in attempts if a.observation.status >= 500]
    if broken:
        return errored("the CORS preflight got a server error: " + ", ".join(f"{a.observation.base_url} HTTP {a.observation.status}" for a in broken),
                       preflights=[a.evidence() for a in attempts])
    from nimwarden.families.nim_api.probe import FOREIGN_ORIGIN

    evidence = {"preflights": [a.evidence() for a in attempts], "foreign_origin": FOREIGN_ORIGIN,
                "expected": "no Access-Control-Allow-Origin for a foreign origin (or * without credentials)"}
    granted, star = [], []
    for a in attempts:
        o = a.observation
        if o.allow_origin == FOREIGN_ORIGIN or (o.allow_origin == "*" and o.allow_credentials):
            granted.append(f"{o.base_url}: Access-Control-Allow-Origin {o.allow_origin}"
                           f"{' with credentials' if o.allow_credentials else ''} for {FOREIGN_ORIGIN}")
        elif o.allow_origin == "*":
            star.append(o.base_url)
    if granted:
        return failed("any web page can call the NIM API from a visitor's browser: " + "; ".join(granted), **evidence)
    note = f" (Access-Control-Allow-Origin * without credentials on {', '.join(star)})" if star else ""
    return passed(f"no NIM URL grants a foreign origin{note}", **evidence)
