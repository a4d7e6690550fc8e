"""TLS probe and judges against real nginx gateways (lab PKI), a real handshake-resetting
server, and nmap's ssl-enum-ciphers as an independent cross-check."""

from __future__ import annotations

import shutil
import socket
import struct
import threading
from pathlib import Path

import pytest

from nimwarden.families.tls import judge as j
from nimwarden.families.tls import probe as tls
from nimwarden.lab import gateway, nimstub
from nimwarden.net import scope
from nimwarden.outcome import Status
from tests import tls_crosscheck

pytestmark = pytest.mark.skipif(not Path(gateway.NGINX).exists(), reason="nginx is not installed (Debian nginx-light)")

GOOD, BAD = "127.0.0.62", "127.0.0.63"
GUARD = scope.guard_for(["127.0.0.0/8"])
ALL = (j.judge_protocols, j.judge_ciphers, j.judge_forward_secrecy, j.judge_chain, j.judge_hostname, j.judge_expiry, j.judge_key_size)


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    state = tmp_path_factory.mktemp("edge")
    stub = nimstub.start("upstream", state)
    specs = [{"name": "good", "hardened": True, "host": GOOD, "upstream": stub["url"]},
             {"name": "bad", "hardened": False, "host": BAD, "upstream": stub["url"]}]
    e = gateway.up_edge(state, specs, log=lambda *_: None)
    tls.clear_cache()
    yield e
    gateway.down_edge(e)
    nimstub.stop(stub)


def _gw(edge, name):
    return edge["deployments"][name]["gateway"]


def _scan(edge, name):
    g = _gw(edge, name)
    return tls.probe_tls(g["host"], g["https_port"], guard=GUARD, ca_file=edge["pki"]["ca"])


def test_hardened_gateway_passes_every_tls_control(edge):
    a = _scan(edge, "good")
    assert a.completed, a.error
    assert a.observation.offered == ("TLSv1.2", "TLSv1.3")
    for judge in ALL:
        out = judge(a, j.TlsPolicy())
        assert out.status is Status.PASS, (judge.__name__, out.reason)


def test_exposed_gateway_fails_with_the_offending_version_cipher_and_certificate(edge):
    a = _scan(edge, "bad")
    assert a.completed, a.error
    policy = j.TlsPolicy()
    protocols = j.judge_protocols(a, policy)
    assert protocols.status is Status.FAIL and "TLSv1.0" in protocols.reason and "TLSv1.1" in protocols.reason
    ciphers = j.judge_ciphers(a, policy)
    assert ciphers.status is Status.FAIL and "_anon_" in ciphers.reason
    fs = j.judge_forward_secrecy(a, policy)
    assert fs.status is Status.FAIL and "TLS_RSA_WITH_" in fs.reason
    chain = j.judge_chain(a, policy)
    assert chain.status is Status.FAIL and "self-signed" in chain.reason
    expiry = j.judge_expiry(a, policy)
    assert expiry.status is Status.FAIL and "inside the 30-day window" in expiry.reason
    key = j.judge_key_size(a, policy)
    assert key.status is Status.FAIL and "1024" in key.reason
    assert j.judge_hostname(a, policy).status is Status.PASS  # right name, wrong everything else
    wrong_name = j.judge_hostname(a, j.TlsPolicy(server_name="api.example.com"))
    assert wrong_name.status is Status.FAIL and "api.example.com" in wrong_name.reason


def test_mutual_tls_not_enforced_is_a_finding(edge):
    a = _scan(edge, "good")
    out = j.judge_mutual(a, j.TlsPolicy(require_mutual=True))
    assert out.status is Status.FAIL and "accepts a client without a certificate" in out.reason


def test_http_port_redirect_is_recorded_and_plain_http_fails(edge):
    good = tls.probe_plaintext(GOOD, _gw(edge, "good")["http_port"], guard=GUARD)
    out = j.judge_plaintext(good, "gateway_http", expect_tls=True)
    assert out.status is Status.PASS and out.evidence["redirects_to_https"] is True
    bad = tls.probe_plaintext(BAD, _gw(edge, "bad")["http_port"], guard=GUARD)
    out = j.judge_plaintext(bad, "gateway_http", expect_tls=True)
    assert out.status is Status.FAIL and "serves plain HTTP (status" in out.reason
    https = tls.probe_plaintext(GOOD, _gw(edge, "good")["https_port"], guard=GUARD)
    assert j.judge_plaintext(https, "gateway", expect_tls=True).status is Status.PASS


@pytest.fixture
def resetting_server():
    """Accepts TCP and resets every connection at once: a TLS endpoint whose handshake dies."""
    srv = socket.socket()
    srv.bind(("127.0.0.64", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(2)
    srv.close()


def test_handshake_reset_yields_error_for_every_control(resetting_server):
    a = tls.probe_tls("127.0.0.64", resetting_server, guard=GUARD, timeout_s=2, cached=False)
    assert not a.completed and a.error
    for judge in (*ALL, j.judge_mutual):
        assert judge(a, j.TlsPolicy(require_mutual=True)).status is Status.ERROR
    plain = tls.probe_plaintext("127.0.0.64", resetting_server, guard=GUARD, timeout_s=2)
    assert j.judge_plaintext(plain, "gateway", expect_tls=True).status is Status.ERROR


def test_closed_port_yields_error():
    with socket.socket() as s:
        s.bind(("127.0.0.64", 0))
        port = s.getsockname()[1]
    a = tls.probe_tls("127.0.0.64", port, guard=GUARD, timeout_s=2, cached=False)
    assert j.judge_protocols(a, j.TlsPolicy()).status is Status.ERROR


def test_out_of_scope_endpoint_is_refused_before_connecting():
    from nimwarden.errors import OutOfScope

    with pytest.raises(OutOfScope):
        tls.probe_tls("192.0.2.10", 443, guard=GUARD, cached=False)


@pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed")
@pytest.mark.parametrize("name", ["good", "bad"])
def test_nmap_ssl_enum_ciphers_agrees_with_sslyze_on_protocol_versions(edge, name):
    g = _gw(edge, name)
    ours = _scan(edge, name).observation.protocols
    theirs = tls_crosscheck.nmap_protocols(g["host"], g["https_port"], guard=GUARD)
    assert theirs == {p: v for p, v in ours.items() if p != "SSLv2"}
