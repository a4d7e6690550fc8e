"""Gateway probes and judges against real nginx (hardened and exposed) in front of the real
NIM stand-in process."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from nimwarden.errors import OutOfScope
from nimwarden.families.gateway import probe as gw
from nimwarden.families.gateway.judge import (
    RateLimitPolicy,
    judge_authentication,
    judge_internal_paths,
    judge_rate_limit,
)
from nimwarden.lab import gateway, nimstub
from nimwarden.net import scope
from nimwarden.outcome import Status

pytestmark = pytest.mark.skipif(not Path(gateway.NGINX).exists(), reason="nginx is not installed (Debian nginx-light)")

GOOD, BAD = "127.0.0.72", "127.0.0.73"
GUARD = scope.guard_for(["127.0.0.0/8"])


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    state = tmp_path_factory.mktemp("edge")
    stub = nimstub.start("upstream", state)
    specs = [{"name": "good", "hardened": True, "host": GOOD, "upstream": stub["url"], "nim": False},
             {"name": "bad", "hardened": False, "host": BAD, "upstream": stub["url"], "nim": False}]
    e = gateway.up_edge(state, specs, log=lambda *_: None)
    yield e
    gateway.down_edge(e)
    nimstub.stop(stub)


def _url(edge, name):
    return edge["deployments"][name]["gateway"]["https_url"]


def _credential(edge, token=None):
    token = token or Path(edge["deployments"]["good"]["gateway"]["token_file"]).read_text().strip()
    header, value = gw.credential_header("Authorization", token)
    return header, value, "file:token"


def test_hardened_gateway_refuses_anonymous_and_serves_the_credential(edge):
    a = gw.probe_auth(_url(edge, "good"), gw.nim_requests(), credential=_credential(edge), guard=GUARD)
    out = judge_authentication(a)
    assert out.status is Status.PASS, out.reason
    assert all(r["without_credentials"] == 401 for r in out.evidence["responses"])
    assert "Bearer" not in repr(out.evidence)  # the token never reaches evidence


def test_exposed_gateway_serves_anonymous_callers(edge):
    out = judge_authentication(gw.probe_auth(_url(edge, "bad"), gw.nim_requests(), guard=GUARD))
    assert out.status is Status.FAIL and "POST /v1/chat/completions -> 200" in out.reason


def test_wrong_credential_is_an_error_not_a_pass(edge):
    a = gw.probe_auth(_url(edge, "good"), gw.nim_requests(), credential=_credential(edge, "not-the-token"), guard=GUARD)
    assert judge_authentication(a).status is Status.ERROR


def test_no_credential_configured_is_an_error(edge):
    assert judge_authentication(gw.probe_auth(_url(edge, "good"), gw.nim_requests(), guard=GUARD)).status is Status.ERROR


def test_rate_limit_is_proven_by_a_short_burst_that_stops_at_the_first_429(edge):
    a = gw.probe_burst(_url(edge, "good") + "/v1/health/live", credential=_credential(edge), max_requests=30,
                       max_duration_s=5, guard=GUARD)
    out = judge_rate_limit(a, RateLimitPolicy(documented_burst=gateway.DEFAULT_BURST + 1))
    assert out.status is Status.PASS, out.reason
    obs = a.observation
    assert obs.first_429_at == obs.sent <= gateway.DEFAULT_BURST + 3 and obs.stopped_because == "first 429 seen"


def test_no_rate_limit_is_a_finding_and_the_burst_stays_bounded(edge):
    a = gw.probe_burst(_url(edge, "bad") + "/v1/health/live", max_requests=25, max_duration_s=5, guard=GUARD)
    out = judge_rate_limit(a)
    assert out.status is Status.FAIL and a.observation.sent == 25 and "without a single 429" in out.reason


def test_documented_limit_exceeded_is_a_finding(edge):
    a = gw.probe_burst(_url(edge, "good") + "/v1/health/live", credential=_credential(edge), max_requests=30,
                       max_duration_s=5, guard=GUARD)
    # a documented limit of 0 is exceeded by any 429, wherever the token bucket stands
    assert judge_rate_limit(a, RateLimitPolicy(documented_burst=0, slack=0)).status is Status.FAIL


def test_internal_paths_blocked_on_hardened_and_forwarded_on_exposed(edge):
    good = judge_internal_paths(gw.probe_internal_paths(_url(edge, "good"), credential=_credential(edge), guard=GUARD))
    assert good.status is Status.PASS and set(good.evidence["statuses"].values()) == {403}
    bad = judge_internal_paths(gw.probe_internal_paths(_url(edge, "bad"), guard=GUARD))
    assert bad.status is Status.FAIL and "/v1/metadata -> 200" in bad.reason and "/metrics -> 200" in bad.reason


def test_unreachable_gateway_is_an_error_for_every_control():
    with socket.socket() as s:
        s.bind(("127.0.0.74", 0))
        url = f"https://127.0.0.74:{s.getsockname()[1]}"
    assert judge_authentication(gw.probe_auth(url, gw.nim_requests(), guard=GUARD)).status is Status.ERROR
    assert judge_rate_limit(gw.probe_burst(url, guard=GUARD)).status is Status.ERROR
    assert judge_internal_paths(gw.probe_internal_paths(url, guard=GUARD)).status is Status.ERROR


def test_out_of_scope_gateway_is_refused():
    with pytest.raises(OutOfScope):
        gw.probe_burst("https://192.0.2.1/", guard=GUARD)


def test_burst_bounds_are_enforced():
    with pytest.raises(ValueError):
        gw.probe_burst("https://127.0.0.1/", max_requests=100000, guard=GUARD)
