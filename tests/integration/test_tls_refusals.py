"""TLS-only ports that reset plain text, and a gateway that speaks only TLS 1.0/1.1, against real
servers written for these tests (tests/tls_servers.py: Python ssl, labelled test servers).

- TLS-PLAINTEXT-001: a reset of the plain request on a port that completes a TLS handshake is the
  refusal — the good case, not an error;
- GATEWAY-AUTHN/-INTERNAL/-RATELIMIT: the gateway probe connects with what a legacy-only gateway
  offers, says so in the evidence, and judges what it lets through (the tls family fails its
  protocol).
"""

from __future__ import annotations

import pytest
import yaml

from nimwarden.families.gateway import judge as gj
from nimwarden.families.gateway import probe as gp
from nimwarden.families.tls import judge as tj
from nimwarden.families.tls import probe as tls
from nimwarden.net import scope
from nimwarden.outcome import Status
from tests.conftest import run_audit
from tests.tls_servers import legacy_gateway, tls_only_server

HOST = "127.0.0.71"
GUARD = scope.guard_for(["127.0.0.0/8"])


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("test-servers-pki")


def test_tls_only_port_that_resets_a_plain_request_passes(pki_dir):
    with tls_only_server(pki_dir, HOST) as srv:
        a = tls.probe_plaintext(HOST, srv.port, guard=GUARD, timeout_s=3)
        assert a.completed, a.error  # before the fix: "ConnectionResetError: [Errno 104] Connection reset by peer"
        assert a.observation.plain_reset and a.observation.tls_handshake == "completed"
        out = tj.judge_plaintext(a, "gateway", expect_tls=True)
        assert out.status is Status.PASS, out.reason
        assert "reset" in out.reason and out.evidence["plain_request_reset"] is True


@pytest.mark.parametrize("only_tls10", [False, True], ids=["tls1.0-1.1", "tls1.0"])
def test_gateway_controls_judge_a_legacy_only_gateway(pki_dir, only_tls10):
    with legacy_gateway(pki_dir, HOST, only_tls10=only_tls10) as gw:
        expected = "TLSv1" if only_tls10 else "TLSv1.1"
        auth = gp.probe_auth(gw.url, gp.triton_requests(), guard=GUARD, timeout=(2, 3))
        assert auth.completed, auth.error  # before the fix: SSLError … TLSV1_ALERT_PROTOCOL_VERSION
        internal = gp.probe_internal_paths(gw.url, guard=GUARD, timeout=(2, 3))
        burst = gp.probe_burst(gw.url + "/v2/health/ready", max_requests=10, guard=GUARD, timeout=(2, 3))
        for attempt, judge in ((auth, gj.judge_authentication), (internal, gj.judge_internal_paths), (burst, gj.judge_rate_limit)):
            out = judge(attempt)
            assert out.status is Status.FAIL, (judge.__name__, out.reason)  # the gateway admits anyone
            note = out.evidence["tls_connection"]
            assert note.startswith(f"connected with {expected},") and "the tls family judges the protocol" in note
            assert "the tls family judges the protocol" in out.reason
        assert set(gw.handshakes) == {expected}
        plain = tls.probe_plaintext(HOST, gw.port, guard=GUARD, timeout_s=3)
        assert tj.judge_plaintext(plain, "gateway", expect_tls=True).status is Status.PASS


def test_modern_gateway_evidence_names_its_protocol_without_the_legacy_note(pki_dir):
    with tls_only_server(pki_dir, HOST, status=401) as srv:
        auth = gp.probe_auth(srv.url, gp.triton_requests()[:2], guard=GUARD, timeout=(2, 3))
        assert auth.completed, auth.error
        assert auth.observation.tls in ("connected with TLSv1.3", "connected with TLSv1.2")
        assert "tls family" not in gj.judge_authentication(auth).reason


def test_audit_of_a_legacy_only_gateway(pki_dir, tmp_path):
    """As a user runs it: the tls family fails the protocol, the gateway family judges what gets through."""
    with legacy_gateway(pki_dir, HOST) as gw:
        profile = tmp_path / "legacy.yaml"
        profile.write_text(yaml.safe_dump({
            "name": "legacy-gateway", "scope": ["127.0.0.0/8"], "timeouts": {"connect_s": 2, "read_s": 3},
            "deployments": [{"name": "legacy", "kind": "triton", "expect": "compliant", "models": ["add"],
                             "endpoints": {"gateway": gw.url}, "exposure": ["gateway"]}],
        }))
        proc, summary = run_audit(profile, tmp_path / "reports", "suites/test_tls.py", "suites/test_gateway.py", timeout=240)
    assert summary is not None, proc.stderr[-2000:]
    status: dict[str, set[str]] = {}
    for r in summary["results"]:  # TLS controls run once per endpoint: the gateway's row is the judged one
        status.setdefault(r["control"], set()).add(r["status"])
    assert "fail" in status["TLS-PROTOCOL-001"]
    assert status["TLS-PLAINTEXT-001"] == {"pass"}
    for control in ("GATEWAY-AUTHN-001", "GATEWAY-INTERNAL-001", "GATEWAY-RATELIMIT-001"):
        assert status[control] == {"fail"}, (control, status[control])
    assert not [r for r in summary["results"] if r["status"] == "error"], [r["reason"] for r in summary["results"] if r["status"] == "error"]
    assert proc.returncode == 1
