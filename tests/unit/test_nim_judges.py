"""NIM endpoint judges (pure): anonymous reachability per category, disclosure evidence."""

from __future__ import annotations

import pytest

from nimwarden.families.nim_api.judge import WHAT, judge_anonymous, judge_anonymous_all
from nimwarden.families.nim_api.probe import NIM_PATHS, EndpointAnswer, NimObservation
from nimwarden.outcome import Attempt, Status


def _obs(status_for, disclosed=None):
    answers = tuple(EndpointAnswer(p, m, c, status_for(p, c), "application/json", (disclosed or {}).get(p, {}))
                    for p, (m, c) in NIM_PATHS.items())
    return Attempt("nim.http", "GET", NimObservation("https://nim", answers), None, 0.1)


OPEN = _obs(lambda p, c: 200, {"/v1/metadata": {"repository_override": "https://nim:nv…xy[sha256:1234abcd]@models/"}})
CLOSED = _obs(lambda p, c: 401)
HEALTH_ONLY = _obs(lambda p, c: 200 if c == "health" else 404)
BROKEN = Attempt("nim.http", "GET", None, "ConnectTimeout", 2.0)


@pytest.mark.parametrize("category", sorted(WHAT))
def test_good_bad_broken(category):
    assert judge_anonymous(CLOSED, category).status is Status.PASS
    assert judge_anonymous(HEALTH_ONLY, category).status is Status.PASS  # health answering is expected
    bad = judge_anonymous(OPEN, category)
    assert bad.status is Status.FAIL and "without credentials" in bad.reason
    assert judge_anonymous(BROKEN, category).status is Status.ERROR


def test_metadata_disclosure_is_evidence_and_raises_severity():
    out = judge_anonymous(OPEN, "metadata")
    assert out.severity == "high" and "repository_override" in out.evidence["disclosed"]["GET /v1/metadata"]


def test_not_a_nim_is_an_error():
    assert judge_anonymous(_obs(lambda p, c: 404), "docs").status is Status.ERROR


def test_unknown_category_is_a_bug():
    with pytest.raises(ValueError):
        judge_anonymous(CLOSED, "everything")


def test_all_endpoints_combined():
    assert judge_anonymous_all([CLOSED, CLOSED], "metrics").status is Status.PASS
    assert judge_anonymous_all([CLOSED, OPEN], "metrics").status is Status.FAIL
    assert judge_anonymous_all([CLOSED, BROKEN], "metrics").status is Status.ERROR
    assert judge_anonymous_all([OPEN, BROKEN], "metrics").status is Status.FAIL
    assert judge_anonymous_all([], "metrics").status is Status.ERROR


def test_reachable_base_urls_follow_the_probe_position():
    from types import SimpleNamespace

    from nimwarden.families.nim_api.probe import reachable_base_urls, serves_nim

    ep = lambda url, host: SimpleNamespace(url=url, host=host, scheme=url.split(":")[0])  # noqa: E731
    dep = SimpleNamespace(kind="triton", exposure=("gateway",), endpoints={
        "http": ep("http://127.0.0.1:8000", "127.0.0.1"), "nim": ep("http://127.0.0.1:9000", "127.0.0.1"),
        "gateway": ep("https://127.0.0.2:8443", "127.0.0.2")})
    outside = SimpleNamespace(probe_position="external")
    inside = SimpleNamespace(probe_position="cluster-internal")
    assert serves_nim(dep)
    assert reachable_base_urls(outside, dep) == ("https://127.0.0.2:8443",)
    assert set(reachable_base_urls(inside, dep)) == {"https://127.0.0.2:8443", "http://127.0.0.1:9000"}
    leaky = SimpleNamespace(kind="triton", exposure=("gateway",), endpoints={
        "nim": ep("http://127.0.0.3:9000", "127.0.0.3"), "gateway": ep("https://127.0.0.3:8443", "127.0.0.3")})
    assert set(reachable_base_urls(outside, leaky)) == {"https://127.0.0.3:8443", "http://127.0.0.3:9000"}
    assert not serves_nim(SimpleNamespace(kind="triton", endpoints={"http": dep.endpoints["http"]}))
