"""Gateway judges and the nginx configuration the lab renders (pure; real nginx runs in
tests/integration/test_gateway_nginx.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from nimwarden.families.gateway import probe as gw
from nimwarden.families.gateway.judge import (
    RateLimitPolicy,
    judge_authentication,
    judge_internal_paths,
    judge_rate_limit,
)
from nimwarden.lab import gateway as lab_gateway
from nimwarden.outcome import Attempt, Status


def _auth(results, credential="file:token"):
    obs = gw.AuthObservation("https://gw", credential, tuple(gw.PathResult(r, a, c) for r, a, c in results))
    return Attempt("gateway.http", "auth", obs, None, 0.1)


INFER = gw.Request("POST", "/v1/chat/completions", {}, "inference")
META = gw.Request("GET", "/v1/metadata", None, "management")
BROKEN = Attempt("gateway.http", "x", None, "ConnectionError: refused", 0.0)


def test_authentication_good_bad_broken():
    assert judge_authentication(_auth([(INFER, 401, 200), (META, 403, 403)])).status is Status.PASS
    bad = judge_authentication(_auth([(INFER, 200, 200), (META, 401, 403)]))
    assert bad.status is Status.FAIL and "POST /v1/chat/completions -> 200" in bad.reason
    assert judge_authentication(BROKEN).status is Status.ERROR


def test_gateway_that_refuses_everyone_proves_nothing():
    assert judge_authentication(_auth([(INFER, 401, 401)])).status is Status.ERROR
    assert judge_authentication(_auth([(INFER, 401, None)], credential=None)).status is Status.ERROR
    assert judge_authentication(_auth([(META, 401, 403)])).status is Status.ERROR  # no inference probed


def _burst(statuses, first=None, sent=None):
    obs = gw.BurstObservation("https://gw/h", 30, 5.0, sent or sum(statuses.values()), statuses, first, None, 0.2,
                              "first 429 seen" if first else "max_requests reached")
    return Attempt("gateway.http", "burst", obs, None, 0.2)


def test_rate_limit_good_bad_broken_and_documented():
    assert judge_rate_limit(_burst({200: 6, 429: 1}, first=7)).status is Status.PASS
    assert judge_rate_limit(_burst({200: 30})).status is Status.FAIL
    assert judge_rate_limit(BROKEN).status is Status.ERROR
    assert judge_rate_limit(_burst({401: 30})).status is Status.ERROR
    assert judge_rate_limit(_burst({502: 30})).status is Status.ERROR
    late = judge_rate_limit(_burst({200: 20, 429: 1}, first=21), RateLimitPolicy(documented_burst=6))
    assert late.status is Status.FAIL and "documented limit of 6" in late.reason


def _internal(statuses, with_credential=True):
    return Attempt("gateway.http", "internal", gw.InternalObservation("https://gw", with_credential, statuses), None, 0.1)


def test_internal_paths_good_bad_broken():
    assert judge_internal_paths(_internal({"/metrics": 403, "/docs": 404})).status is Status.PASS
    bad = judge_internal_paths(_internal({"/metrics": 200, "/v2/repository/index": 405}))
    assert bad.status is Status.FAIL and "/v2/repository/index -> 405" in bad.reason
    assert judge_internal_paths(_internal({"/metrics": 401})).status is Status.ERROR  # credential rejected
    assert judge_internal_paths(_internal({"/metrics": 401}, with_credential=False)).status is Status.PASS
    assert judge_internal_paths(BROKEN).status is Status.ERROR


def test_credential_header_makes_a_bearer_token():
    assert gw.credential_header(None, "abc") == ("Authorization", "Bearer abc")
    assert gw.credential_header("Authorization", "Basic xyz") == ("Authorization", "Basic xyz")
    assert gw.credential_header("X-Api-Key", "abc") == ("X-Api-Key", "abc")
    assert gw.credential_header("Authorization", None) is None


def test_settings_pick_the_gateway_and_register_the_secret(tmp_path):
    from nimwarden.redact import redact_text

    token_file = tmp_path / "token"
    token_file.write_text("s3cr3t-token-value\n")
    cred = SimpleNamespace(header="Authorization", resolve=lambda: "s3cr3t-token-value", describe=lambda: f"file:{token_file}")
    ep = lambda url, scheme: SimpleNamespace(url=url, scheme=scheme)  # noqa: E731
    dep = SimpleNamespace(kind="nim", models=(), exposure=("gateway",), credentials={"gateway": cred},
                          endpoints={"gateway": ep("https://127.0.0.2:8443", "https"), "http": ep("http://127.0.0.1:8000", "http")},
                          options={"gateway": {"documented_burst": 6}})
    s = gw.entry_point(dep)
    assert s.base_url == "https://127.0.0.2:8443" and s.via_gateway and s.burst_url.endswith("/v1/health/ready")
    assert s.credential[0] == "Authorization" and s.documented_burst == 6
    assert "s3cr3t-token-value" not in redact_text("token s3cr3t-token-value leaked")


def test_hardened_config_authenticates_before_routing_and_limits_rate(tmp_path):
    conf = lab_gateway.render_config(prefix=tmp_path, host="127.0.0.2", https_port=8443, http_port=8080,
                                     upstream_http="http://127.0.0.1:8000", cert=Path("c.pem"), key=Path("k.pem"),
                                     hardened=True, token="tok")
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf and "limit_req_status 429;" in conf
    assert conf.index("return 401") < conf.index("location ~ ^/(")  # auth first: internal paths answer 401 too
    assert "return 308 https://" in conf and "v2/repository" in conf and "v1/metadata" in conf


def test_exposed_config_is_weak_on_purpose(tmp_path):
    conf = lab_gateway.render_config(prefix=tmp_path, host="127.0.0.3", https_port=8443, http_port=8080,
                                     upstream_http="http://127.0.0.1:8000", cert=Path("c.pem"), key=Path("k.pem"),
                                     hardened=False, token=None)
    assert "TLSv1 TLSv1.1" in conf and "@SECLEVEL=0" in conf and "limit_req" not in conf and "401" not in conf


def test_gateway_refuses_a_non_http_upstream(tmp_path):
    with pytest.raises(lab_gateway.GatewayError):
        lab_gateway.render_config(prefix=tmp_path, host="127.0.0.2", https_port=1, http_port=2, upstream_http="https://x",
                                  cert=Path("c"), key=Path("k"), hardened=True, token="t")


def test_nim_front_beside_triton_is_routed_with_the_same_auth_and_limit(tmp_path):
    conf = lab_gateway.render_config(prefix=tmp_path, host="127.0.0.2", https_port=8443, http_port=8080,
                                     upstream_http="http://127.0.0.1:8000", cert=Path("c.pem"), key=Path("k.pem"),
                                     hardened=True, token="tok", routes={"/v1/": "http://127.0.0.1:9000"})
    block = conf[conf.index("location /v1/"):]
    assert "limit_req zone=nw_api" in block.split("}")[0] and "proxy_pass http://127.0.0.1:9000;" in block
    assert conf.index("return 401") < conf.index("location /v1/")


def test_planning_the_gateway_controls_imports_no_http_session():
    """What applies is asked of every deployment of a manifests-only audit: that must not import the probe's
    session (its TLS context and HTTP client); a probe that runs does. The session is the bounded client's, never
    ``requests`` (whose per-read timeout lets a gateway that answers a byte at a time hold the probe for ever)."""
    import subprocess
    import sys

    code = ("import sys; from types import SimpleNamespace as N\n"
            "from nimwarden.families.gateway import judge, k8s_judge, probe\n"
            "e = probe.entry_point(N(options={}, endpoints={}, exposure=(), credentials={}, kind='nim', models=()))\n"
            "assert e.base_url is None and 'nimwarden.families.gateway.session' not in sys.modules\n"
            "probe._session().close()\n"
            "assert 'nimwarden.families.gateway.session' in sys.modules and 'requests' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
