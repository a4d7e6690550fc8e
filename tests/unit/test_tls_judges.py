"""TLS judges and the lab PKI: good, bad and broken cases from constructed observations
(the real handshakes are in tests/integration/test_tls_*.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from nimwarden.families.tls import judge as j
from nimwarden.families.tls.probe import AcceptedCipher, CertificateInfo, PlaintextObservation, TlsObservation
from nimwarden.lab import pki
from nimwarden.outcome import Attempt, Status

NOW = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
MODERN = {"SSLv2": False, "SSLv3": False, "TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": True}
GOOD_SUITES = (AcceptedCipher("TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", False, 128, "ECDH 253"),
               AcceptedCipher("TLSv1.3", "TLS_AES_128_GCM_SHA256", False, 128, "ECDH 253"))


def cert(**kw):
    base = dict(subject="CN=gw", issuer="CN=lab CA", self_signed=False, not_before=NOW - dt.timedelta(days=1),
                not_after=NOW + dt.timedelta(days=90), key_type="RSA", key_bits=2048, san_dns=("gw.lab",),
                san_ip=("127.0.0.2",), chain_valid=True, chain_error=None, trust="ca.pem")
    base.update(kw)
    return CertificateInfo(**base)


def obs(protocols=MODERN, ciphers=GOOD_SUITES, certificate=None, no_cert="accepted", server_name="127.0.0.2"):
    o = TlsObservation("127.0.0.2", 443, server_name, protocols, ciphers, certificate or cert(), "DISABLED", no_cert)
    return Attempt("tls.sslyze", "scan", o, None, 0.5)


BROKEN = Attempt("tls.sslyze", "scan", None, "TLS handshake with 127.0.0.2:443 failed: connection reset", 0.1)
POLICY = j.TlsPolicy()
JUDGES = (j.judge_protocols, j.judge_ciphers, j.judge_forward_secrecy, j.judge_chain, j.judge_hostname, j.judge_key_size)


@pytest.mark.parametrize("judge", JUDGES + (j.judge_mutual,))
def test_every_judge_errors_on_an_incomplete_scan(judge):
    assert judge(BROKEN, j.TlsPolicy(require_mutual=True)).status is Status.ERROR


@pytest.mark.parametrize("judge", JUDGES)
def test_every_judge_passes_a_good_endpoint(judge):
    assert judge(obs(), POLICY).status is Status.PASS


def test_expiry_good_window_expired_and_not_yet_valid():
    assert j.judge_expiry(obs(), POLICY, now=NOW).status is Status.PASS
    soon = j.judge_expiry(obs(certificate=cert(not_after=NOW + dt.timedelta(days=10))), POLICY, now=NOW)
    assert soon.status is Status.FAIL and soon.severity == "medium" and "10 day(s)" in soon.reason
    gone = j.judge_expiry(obs(certificate=cert(not_after=NOW - dt.timedelta(days=1))), POLICY, now=NOW)
    assert gone.status is Status.FAIL and gone.severity == "critical" and "expired" in gone.reason
    early = j.judge_expiry(obs(certificate=cert(not_before=NOW + dt.timedelta(days=1))), POLICY, now=NOW)
    assert early.status is Status.FAIL
    wide = j.judge_expiry(obs(), j.TlsPolicy(expiry_warning_days=120), now=NOW)
    assert wide.status is Status.FAIL  # the window is configurable


@pytest.mark.parametrize("legacy", ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"])
def test_each_legacy_protocol_fails_by_name(legacy):
    out = j.judge_protocols(obs(protocols={**MODERN, legacy: True}), POLICY)
    assert out.status is Status.FAIL and legacy in out.reason


def test_no_modern_protocol_fails():
    none = {p: False for p in MODERN}
    assert j.judge_protocols(obs(protocols=none), POLICY).status is Status.FAIL


@pytest.mark.parametrize("name,anon,why", [
    ("TLS_RSA_WITH_NULL_SHA256", False, "NULL"), ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", False, "EXPORT"),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", False, "RC4"), ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", False, "3DES"),
    ("TLS_RSA_WITH_DES_CBC_SHA", False, "DES"), ("TLS_DH_anon_WITH_AES_128_CBC_SHA", True, "anonymous"),
])
def test_weak_suites_fail_naming_the_suite(name, anon, why):
    out = j.judge_ciphers(obs(ciphers=GOOD_SUITES + (AcceptedCipher("TLSv1.2", name, anon, 128, None),)), POLICY)
    assert out.status is Status.FAIL and name in out.reason and why in out.reason


def test_static_rsa_key_exchange_fails_forward_secrecy():
    suite = AcceptedCipher("TLSv1.2", "TLS_RSA_WITH_AES_128_GCM_SHA256", False, 128, None)
    out = j.judge_forward_secrecy(obs(ciphers=GOOD_SUITES + (suite,)), POLICY)
    assert out.status is Status.FAIL and "TLS_RSA_WITH_AES_128_GCM_SHA256" in out.reason


def test_chain_invalid_fails_with_openssl_reason():
    out = j.judge_chain(obs(certificate=cert(chain_valid=False, chain_error="self-signed certificate", self_signed=True)), POLICY)
    assert out.status is Status.FAIL and "self-signed certificate" in out.reason


@pytest.mark.parametrize("name,ok", [("127.0.0.2", True), ("gw.lab", True), ("127.0.0.9", False), ("x.gw.lab", False)])
def test_hostname_matching(name, ok):
    out = j.judge_hostname(obs(server_name=name), POLICY)
    assert (out.status is Status.PASS) == ok


def test_wildcard_covers_one_label_only():
    assert j.name_matches("a.lab.example", ("*.lab.example",), ())
    assert not j.name_matches("a.b.lab.example", ("*.lab.example",), ())
    assert not j.name_matches("lab.example", ("*.lab.example",), ())


def test_certificate_without_san_fails_hostname():
    out = j.judge_hostname(obs(certificate=cert(san_dns=(), san_ip=())), POLICY)
    assert out.status is Status.FAIL and "subjectAltName" in out.reason


@pytest.mark.parametrize("key_type,bits,ok", [("RSA", 1024, False), ("RSA", 2048, True), ("EC secp256r1", 256, True), ("EC secp192r1", 192, False)])
def test_key_size(key_type, bits, ok):
    out = j.judge_key_size(obs(certificate=cert(key_type=key_type, key_bits=bits)), POLICY)
    assert (out.status is Status.PASS) == ok


def test_mutual_tls():
    policy = j.TlsPolicy(require_mutual=True)
    assert j.judge_mutual(obs(no_cert="refused: certificate required"), policy).status is Status.PASS
    assert j.judge_mutual(obs(no_cert="accepted"), policy).status is Status.FAIL
    assert j.judge_mutual(obs(), POLICY).status is Status.ERROR  # asked where not required: a suite bug


def _plain(tls_state, status, location=None, reset=False):
    return Attempt("tls.plaintext", "GET", PlaintextObservation("127.0.0.2", 80, tls_state, status, location, reset), None, 0.01)


def test_plaintext_judge():
    assert j.judge_plaintext(_plain("completed", None), "gateway", True).status is Status.PASS
    redirect = j.judge_plaintext(_plain("failed: WRONG_VERSION_NUMBER", 308, "https://gw/"), "gateway_http", True)
    assert redirect.status is Status.PASS and redirect.evidence["redirects_to_https"]
    assert j.judge_plaintext(_plain("failed: x", 200), "gateway_http", True).status is Status.FAIL
    assert j.judge_plaintext(_plain("failed: x", 301, "http://gw/"), "gateway_http", True).status is Status.FAIL
    assert j.judge_plaintext(_plain("failed: x", None), "grpc", True).status is Status.FAIL
    assert j.judge_plaintext(_plain("failed: x", None), "grpc", False).status is Status.ERROR
    assert j.judge_plaintext(Attempt("tls.plaintext", "GET", None, "refused", 0.0), "grpc", True).status is Status.ERROR


def test_plaintext_reset_is_the_refusal_on_a_tls_port():
    """A TLS-only port that resets a plain request (tests/integration/test_tls_refusals.py shows a real one)."""
    out = j.judge_plaintext(_plain("completed", None, reset=True), "gateway", True)
    assert out.status is Status.PASS and "reset" in out.reason and out.evidence["plain_request_reset"] is True
    # a port that resets the handshake too shows nothing: error, never a pass or a fail
    both = j.judge_plaintext(_plain("failed: [Errno 104] Connection reset by peer", None, reset=True), "gateway", True)
    assert both.status is Status.ERROR and "cannot tell" in both.reason


def test_settings_reject_unknown_keys():
    from types import SimpleNamespace

    dep = SimpleNamespace(options={"tls": {"ca_fil": "x"}})
    with pytest.raises(ValueError, match="ca_fil"):
        j.tls_options(SimpleNamespace(options={}), dep)
    s = j.tls_options(SimpleNamespace(options={"tls": {"expiry_warning_days": 10}}), SimpleNamespace(options={"tls": {"mutual": ["grpc"]}}))
    assert s.policy("grpc").require_mutual and not s.policy("gateway").require_mutual and s.expiry_warning_days == 10


def test_lab_pki_issues_a_verifiable_chain_and_a_weak_self_signed_certificate(tmp_path):
    out = pki.lab_pki(tmp_path, {"hardened": ["127.0.0.2", "localhost"]}, weak_hosts={"exposed": ["127.0.0.3"]})
    ca = x509.load_pem_x509_certificate(open(out["ca"], "rb").read())
    leaf = x509.load_pem_x509_certificate(open(out["servers"]["hardened"]["cert"], "rb").read())
    leaf.verify_directly_issued_by(ca)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert (tmp_path / "hardened-server.key").stat().st_mode & 0o777 == 0o600
    weak = x509.load_pem_x509_certificate(open(out["self_signed"]["exposed"]["cert"], "rb").read())
    assert weak.issuer == weak.subject and weak.public_key().key_size == 1024
    assert weak.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) < dt.timedelta(days=30)


def test_plaintext_over_all_endpoints():
    tls_ok, redirect = _plain("completed", None), _plain("failed: x", 308, "https://gw/")
    plain, broken = _plain("failed: x", 200), Attempt("tls.plaintext", "GET", None, "refused", 0.0)
    assert j.judge_plaintext_all([("gateway", tls_ok, True), ("gateway_http", redirect, False)]).status is Status.PASS
    out = j.judge_plaintext_all([("gateway", tls_ok, True), ("grpc", plain, True), ("x", broken, True)])
    assert out.status is Status.FAIL and "grpc" in out.reason and out.evidence["endpoints"]["x"]["status"] == "error"
    assert j.judge_plaintext_all([("gateway", tls_ok, True), ("x", broken, True)]).status is Status.ERROR
    assert j.judge_plaintext_all([]).status is Status.ERROR


def test_testssl_json_is_parsed_and_incomplete_output_refused():
    from nimwarden.families.tls.probe import TlsProbeError
    from tests.tls_crosscheck import parse_testssl

    rows = [{"id": "SSLv2", "finding": "not offered"}, {"id": "SSLv3", "finding": "not offered"},
            {"id": "TLS1", "finding": "offered (deprecated)"}, {"id": "TLS1_1", "finding": "offered (deprecated)"},
            {"id": "TLS1_2", "finding": "offered"}, {"id": "TLS1_3", "finding": "offered with final"},
            {"id": "ALPN", "finding": "http/1.1"}]
    assert parse_testssl(rows) == {"SSLv2": False, "SSLv3": False, "TLSv1.0": True, "TLSv1.1": True,
                                   "TLSv1.2": True, "TLSv1.3": True}
    with pytest.raises(TlsProbeError):
        parse_testssl(rows[:3])
