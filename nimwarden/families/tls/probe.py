"""TLS probe: what a TLS endpoint offers and what certificate it presents.

Protocol versions and cipher suites come from sslyze (its nassl carries a
legacy OpenSSL, so SSLv2/SSLv3/TLS 1.0 are really tried, whatever the system
OpenSSL allows). The certificate is fetched and verified with Python's own
``ssl`` against the configured CA, and a second handshake without a client
certificate tells whether mutual TLS is enforced. Any incomplete sslyze scan
command, or a handshake that fails for a reason other than the one being
tested, makes the whole attempt incomplete: the judges then say ``error``.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nimwarden.families.tls.options import tls_options
from nimwarden.families.tls.plaintext import PlaintextObservation, plaintext_checks, probe_plaintext  # noqa: F401 - one import path for the family's probes
from nimwarden.lazy import LazyModule
from nimwarden.net import hangs
from nimwarden.net.tls_client import handshake as _handshake
from nimwarden.net.tls_client import lenient_context as _lenient_context
from nimwarden.outcome import Attempt, attempt

# imported on first use (a certificate to read): a run that judges only manifests never loads cryptography
x509 = LazyModule("cryptography.x509")
dsa, ec = LazyModule("cryptography.hazmat.primitives.asymmetric.dsa"), LazyModule("cryptography.hazmat.primitives.asymmetric.ec")
ed448 = LazyModule("cryptography.hazmat.primitives.asymmetric.ed448")
ed25519 = LazyModule("cryptography.hazmat.primitives.asymmetric.ed25519")
rsa = LazyModule("cryptography.hazmat.primitives.asymmetric.rsa")

PROBE = "tls.sslyze"
PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_SSLYZE_FIELDS = {
    "SSLv2": "ssl_2_0_cipher_suites",
    "SSLv3": "ssl_3_0_cipher_suites",
    "TLSv1.0": "tls_1_0_cipher_suites",
    "TLSv1.1": "tls_1_1_cipher_suites",
    "TLSv1.2": "tls_1_2_cipher_suites",
    "TLSv1.3": "tls_1_3_cipher_suites",
}


class TlsProbeError(Exception):
    """The endpoint could not be scanned (refused, reset, timed out, incomplete scan)."""


@dataclass(frozen=True)
class AcceptedCipher:
    protocol: str
    name: str  # RFC name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    anonymous: bool
    key_size: int
    ephemeral: str | None  # "ECDH 253", "DH 2048" when the key exchange was ephemeral

    def as_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "name": self.name, "anonymous": self.anonymous,
                "key_size": self.key_size, "ephemeral": self.ephemeral}


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    self_signed: bool
    not_before: dt.datetime
    not_after: dt.datetime
    key_type: str
    key_bits: int
    san_dns: tuple[str, ...]
    san_ip: tuple[str, ...]
    chain_valid: bool
    chain_error: str | None  # OpenSSL's verify message when the chain is not valid
    trust: str  # the CA file it was verified against, or "system trust store"

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject, "issuer": self.issuer, "self_signed": self.self_signed,
            "not_before": self.not_before.isoformat(), "not_after": self.not_after.isoformat(),
            "key": f"{self.key_type} {self.key_bits}", "san_dns": list(self.san_dns), "san_ip": list(self.san_ip),
            "chain_valid": self.chain_valid, "chain_error": self.chain_error, "trust": self.trust,
        }


@dataclass(frozen=True)
class TlsObservation:
    host: str
    port: int
    server_name: str
    protocols: Mapping[str, bool]  # protocol -> accepted
    ciphers: tuple[AcceptedCipher, ...]
    certificate: CertificateInfo
    client_auth: str  # sslyze: DISABLED | OPTIONAL | REQUIRED
    no_cert_handshake: str  # "refused: <why>" or "accepted"
    scanned_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def offered(self) -> tuple[str, ...]:
        return tuple(p for p in PROTOCOLS if self.protocols.get(p))

    def evidence(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "server_name": self.server_name,
            "protocols_offered": list(self.offered),
            "cipher_suites": sorted({f"{c.protocol} {c.name}" for c in self.ciphers}),
            "certificate": self.certificate.as_dict(),
            "client_auth": self.client_auth,
            "handshake_without_client_certificate": self.no_cert_handshake,
        }


@dataclass(frozen=True)
class ClientCredentials:
    cert: Path
    key: Path


# --------------------------------------------------------------------------- sslyze


def _sslyze_scan(host: str, port: int, server_name: str, client: ClientCredentials | None, timeout_s: float):
    """Run sslyze's protocol/cipher scan commands; return (protocols, ciphers, client_auth)."""
    import sslyze  # imported lazily: a heavy import only TLS suites need

    loc = sslyze.ServerNetworkLocation(hostname=server_name, port=port, ip_address=host)
    creds = None
    if client is not None:
        creds = sslyze.ClientAuthenticationCredentials(certificate_chain_path=client.cert, key_path=client.key)
    cfg = sslyze.ServerNetworkConfiguration(
        tls_server_name_indication=server_name,
        tls_client_auth_credentials=creds,
        network_timeout=max(1, int(round(timeout_s))),
        network_max_retries=1,
    )
    commands = {getattr(sslyze.ScanCommand, f.upper()) for f in _SSLYZE_FIELDS.values()}
    scanner = sslyze.Scanner(per_server_concurrent_connections_limit=10, concurrent_server_scans_limit=1)
    scanner.queue_scans([sslyze.ServerScanRequest(server_location=loc, network_configuration=cfg, scan_commands=commands)])
    results = list(scanner.get_results())
    if len(results) != 1:
        raise TlsProbeError(f"sslyze returned {len(results)} results for one server")
    res = results[0]
    if res.scan_status != sslyze.ServerScanStatusEnum.COMPLETED or res.scan_result is None:
        trace = res.connectivity_error_trace
        why = "".join(trace.format_exception_only()).strip() if trace else "no connectivity"
        raise TlsProbeError(f"TLS handshake with {host}:{port} failed: {why}")
    protocols: dict[str, bool] = {}
    ciphers: list[AcceptedCipher] = []
    for proto, fname in _SSLYZE_FIELDS.items():
        cmd = getattr(res.scan_result, fname)
        if cmd.status != sslyze.ScanCommandAttemptStatusEnum.COMPLETED or cmd.result is None:
            raise TlsProbeError(f"{proto} cipher scan incomplete: {cmd.error_reason}: {cmd.error_trace and ''.join(cmd.error_trace.format_exception_only()).strip()}")
        accepted = cmd.result.accepted_cipher_suites
        # sslyze files a handshake that timed out under "rejected": for us that suite is
        # unknown, and an unknown suite could be a weak one that is really offered.
        timed_out = [r.cipher_suite.name for r in cmd.result.rejected_cipher_suites if "timed out" in (r.error_message or "").lower()]
        if timed_out:
            raise TlsProbeError(f"{proto}: {len(timed_out)} handshake(s) timed out (e.g. {timed_out[0]}): cannot tell whether "
                                f"they are refused; raise timeouts.read_s or check the endpoint")
        protocols[proto] = bool(accepted)
        for a in accepted:
            eph = f"{a.ephemeral_key.type_name} {a.ephemeral_key.size}" if a.ephemeral_key else None
            ciphers.append(AcceptedCipher(proto, a.cipher_suite.name, a.cipher_suite.is_anonymous, a.cipher_suite.key_size, eph))
    client_auth = res.connectivity_result.client_auth_requirement.value if res.connectivity_result else "UNKNOWN"
    return protocols, tuple(ciphers), client_auth


def _name_str(name: x509.Name) -> str:
    return name.rfc4514_string()


def _key(cert: x509.Certificate) -> tuple[str, int]:
    pub = cert.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        return "RSA", pub.key_size
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return f"EC {pub.curve.name}", pub.curve.key_size
    if isinstance(pub, dsa.DSAPublicKey):
        return "DSA", pub.key_size
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(pub, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(pub).__name__, 0


def _certificate(host: str, port: int, server_name: str, ca_file: Path | None, client: ClientCredentials | None, timeout_s: float,
                 der: bytes | None = None) -> CertificateInfo:
    """``der``: the leaf certificate an earlier lenient handshake got (none: one is made here)."""
    if der is None:
        der = _handshake(_lenient_context(client), host, port, server_name, timeout_s)
    if not der:
        raise TlsProbeError("server sent no certificate")
    cert = x509.load_der_x509_certificate(der)
    verify = ssl.create_default_context(cafile=str(ca_file)) if ca_file else ssl.create_default_context()
    verify.check_hostname = False  # hostname is its own control; judged from the SANs
    # Chain validity only: versions and key strength are judged by their own controls.
    verify.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    verify.set_ciphers("ALL:@SECLEVEL=0")
    if client is not None:
        verify.load_cert_chain(client.cert, client.key)
    chain_valid, chain_error = True, None
    try:
        _handshake(verify, host, port, server_name, timeout_s)
    except ssl.SSLCertVerificationError as exc:
        chain_valid, chain_error = False, exc.verify_message or str(exc)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(i) for i in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    key_type, key_bits = _key(cert)
    return CertificateInfo(
        subject=_name_str(cert.subject), issuer=_name_str(cert.issuer), self_signed=cert.subject == cert.issuer,
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, key_type=key_type, key_bits=key_bits,
        san_dns=dns, san_ip=ips, chain_valid=chain_valid, chain_error=chain_error,
        trust=str(ca_file) if ca_file else "system trust store",
    )


def _without_client_certificate(host: str, port: int, server_name: str, protocols: Mapping[str, bool],
                                client: ClientCredentials | None, timeout_s: float) -> str:
    """Handshake with no client certificate. TLS 1.2 when offered: the refusal then happens
    inside the handshake, unambiguously; TLS 1.3 only reports it after, so wait for the alert.
    With a client certificate configured, the same handshake *with* it must succeed, or the
    refusal proves nothing about certificates."""

    def try_once(creds: ClientCredentials | None) -> str:
        ctx = _lenient_context(creds)
        read_s = 0.0
        if protocols.get("TLSv1.2"):
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        else:
            read_s = min(2.0, timeout_s)
        try:
            _handshake(ctx, host, port, server_name, timeout_s, read_s=read_s)
        except ssl.SSLError as exc:
            return f"refused: {exc.reason or exc}"
        except ConnectionResetError:
            return "refused: connection reset"
        return "accepted"

    without = try_once(None)
    if without.startswith("refused") and client is not None:
        control = try_once(client)
        if control != "accepted":
            raise TlsProbeError(f"handshake refused with and without the client certificate ({control}): cannot tell whether mutual TLS is what refuses")
    return without


# --------------------------------------------------------------------------- public API


def scan(
    host: str,
    port: int,
    *,
    server_name: str | None = None,
    ca_file: Path | str | None = None,
    client: ClientCredentials | None = None,
    timeout_s: float = 5.0,
    give_up_after: int = 0,
) -> TlsObservation:
    """Scan one endpoint; raises TlsProbeError (or OSError) when it cannot be scanned."""
    sni = server_name or host
    der = _answers(host, port, sni, client, timeout_s, give_up_after)
    protocols, ciphers, client_auth = _sslyze_scan(host, port, sni, client, timeout_s)
    if not any(protocols.values()):
        raise TlsProbeError(f"{host}:{port} completed no handshake with any protocol version")
    ca = Path(ca_file) if ca_file else None
    certificate = _certificate(host, port, sni, ca, client, timeout_s, der)
    no_cert = _without_client_certificate(host, port, sni, protocols, client, timeout_s)
    return TlsObservation(host, port, sni, protocols, ciphers, certificate, client_auth, no_cert)


def _answers(host: str, port: int, server_name: str, client: ClientCredentials | None, timeout_s: float,
             give_up_after: int) -> bytes | None:
    """One lenient handshake before the scan, whose leaf certificate (DER) the certificate controls then read: an
    endpoint that accepts connections and never answers it (a hung server) would hold sslyze's many handshakes for a
    minute; it is an error at once, and counts as a hang (:mod:`nimwarden.net.hangs`). Any other failure is left to
    the scan, which names it (None)."""
    if why := hangs.not_sent(host, port, give_up_after):
        raise TlsProbeError(why)
    try:
        der = _handshake(_lenient_context(client), host, port, server_name, timeout_s)
    except TimeoutError:
        why = f"no TLS handshake with {host}:{port} within {timeout_s:g}s: it accepts connections and does not answer (not scanned)"
        hangs.record(host, port, give_up_after, True, why)
        raise TlsProbeError(why) from None
    except (OSError, ValueError):
        return None
    hangs.record(host, port, give_up_after, False)
    return der


_cache: dict[tuple, Attempt[TlsObservation]] = {}
_cache_lock = threading.Lock()


def probe_tls(
    host: str,
    port: int,
    *,
    guard: Callable[[str], None] | None = None,
    server_name: str | None = None,
    ca_file: Path | str | None = None,
    client: ClientCredentials | None = None,
    timeout_s: float = 5.0,
    cached: bool = True,
    give_up_after: int = 0,
) -> Attempt[TlsObservation]:
    """The TLS attempt for one endpoint, cached per process: eight TLS controls share one scan.

    ``guard`` (the target's scope check) runs first and may raise OutOfScope:
    that is a usage error, not an observation, so it propagates.
    """
    if guard is not None:
        guard(host)
    key = (host, port, server_name, str(ca_file), client, timeout_s, give_up_after)
    if cached:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
    result = attempt(PROBE, f"TLS scan of {host}:{port} (SNI {server_name or host})",
                     lambda: scan(host, port, server_name=server_name, ca_file=ca_file, client=client, timeout_s=timeout_s,
                                  give_up_after=give_up_after))
    if cached:
        with _cache_lock:
            _cache[key] = result
    return result


def endpoint_scan(target: Any, deployment: Any, name: str):
    """The scan of one TLS endpoint of a deployment as the profile describes it, with the policy to
    judge it by: ``(attempt, policy)``. Client credentials are offered only where the profile
    requires mutual TLS (``options.tls.mutual``)."""
    ep = deployment.endpoint(name)
    s = tls_options(target, deployment)
    client = None
    if name in s.mutual and s.client_cert and s.client_key:
        client = ClientCredentials(Path(s.client_cert), Path(s.client_key))
    a = probe_tls(ep.host, ep.port, guard=target.guard, server_name=s.server_name, ca_file=s.ca_file,
                  client=client, timeout_s=target.timeouts.read_s, give_up_after=target.timeouts.give_up_after)
    return a, s.policy(name)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()

