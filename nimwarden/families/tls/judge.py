"""TLS judges: a TLS observation against the TLS policy (pure functions).

The policy is data (``TlsPolicy``): legacy protocol versions refused, 1.2+
offered, no NULL/EXPORT/RC4/DES/3DES/anonymous suites, forward secrecy on every
pre-1.3 suite, a chain valid against the configured CA, a matching name, an
expiry date outside the warning window, a strong enough key, and mutual TLS
where the profile requires it.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import ipaddress

from nimwarden.families.tls.options import TlsOptions, TlsPolicy, plaintext_endpoints, tls_options  # noqa: F401 - re-exported
from nimwarden.families.tls.plaintext import PlaintextObservation
from nimwarden.families.tls.probe import TlsObservation
from nimwarden.outcome import Attempt, Outcome, errored, fail_closed, failed, passed

LEGACY = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1")
MODERN = ("TLSv1.2", "TLSv1.3")
WEAK_MARKERS = ("NULL", "EXPORT", "RC4", "_DES_", "3DES", "DES_CBC", "_anon_", "MD5")


@fail_closed
@fail_closed
def judge_protocols(a: Attempt[TlsObservation], policy: TlsPolicy) -> Outcome:
    """TLS-PROTOCOL: SSLv3/TLS 1.0/1.1 refused, TLS 1.2 or newer offered."""
    o, ev = a.observation, a.evidence()
    legacy = [p for p in LEGACY if o.protocols.get(p)]
    if legacy:
        return failed(f"{o.endpoint} accepts {', '.join(legacy)}", **ev, legacy_accepted=legacy)
    modern = [p for p in MODERN if o.protocols.get(p)]
    if not modern:
        return failed(f"{o.endpoint} offers neither TLS 1.2 nor TLS 1.3", **ev)
    return passed(f"{o.endpoint} offers only {', '.join(modern)}", **ev)


def weak_reason(name: str, anonymous: bool) -> str | None:
    if anonymous or "_anon_" in name:
        return "anonymous"
    for marker in WEAK_MARKERS:
        if marker in name:
            return marker.strip("_")
    return None


@fail_closed
def judge_ciphers(a: Attempt[TlsObservation], policy: TlsPolicy) -> Outcome:
    """TLS-CIPHERS: no NULL, EXPORT, RC4, (3)DES, MD5 or anonymous suites."""
    o, ev = a.observation, a.evidence()
    weak = sorted({f"{c.protocol} {c.name} ({r})" for c in o.ciphers if (r := weak_reason(c.name, c.anonymous))})
    if weak:
        return failed(f"{o.endpoint} accepts {len(weak)} weak suite(s): {', '.join(weak[:6])}{' …' if len(weak) > 6 else ''}",
                      **ev, weak_suites=weak)
    return passed(f"{o.endpoint}: none of {len(o.ciphers)} accepted suites is NULL/EXPORT/RC4/DES/anonymous", **ev)


def has_forward_secrecy(protocol: str, name: str) -> bool:
    # Anonymous (EC)DH is ephemeral too; it is the cipher control's finding, not this one's.
    return protocol == "TLSv1.3" or any(k in name for k in ("_ECDHE_", "_DHE_", "_ECDH_anon_", "_DH_anon_"))


@fail_closed
def judge_forward_secrecy(a: Attempt[TlsObservation], policy: TlsPolicy) -> Outcome:
    """TLS-FORWARDSEC: every accepted suite uses an ephemeral key exchange."""
    o, ev = a.observation, a.evidence()
    static = sorted({f"{c.protocol} {c.name}" for c in o.ciphers if not has_forward_secrecy(c.protocol, c.name)})
    if static:
        return failed(f"{o.endpoint} accepts {len(static)} suite(s) without forward secrecy: {', '.join(static[:6])}{' …' if len(static) > 6 else ''}",
                      **ev, static_key_exchange=static)
    return passed(f"{o.endpoint}: every accepted suite has forward secrecy", **ev)


@fail_closed
def judge_chain(a: Attempt[TlsObservation], policy: TlsPolicy) -> Outcome:
    """TLS-CHAIN: the certificate chain verifies against the configured CA."""
    o, ev = a.observation, a.evidence()
    c = o.certificate
    if not c.chain_valid:
        return failed(f"{o.endpoint}: certificate {c.subject} does not verify against {c.trust}: {c.chain_error}"
                      + (" (self-signed)" if c.self_signed else ""), **ev)
    return passed(f"{o.endpoint}: chain verifies against {c.trust}", **ev)


def name_matches(name: str, dns: tuple[str, ...], ips: tuple[str, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(name.strip("[]"))
        return any(ipaddress.ip_address(i) == addr for i in ips)
    except ValueError:
        pass
    name = name.lower().rstrip(".")
    for pattern in (d.lower().rstrip(".") for d in dns):
        if pattern == name:
            return True
        # RFC 6125: a wildcard only stands for the whole left-most label
        if pattern.startswith("*.") and name.count(".") == pattern.count(".") and fnmatch.fnmatchcase(name, pattern):
            return True
    return False


@fail_closed
def judge_hostname(a: Attempt[TlsObservation], policy: TlsPolicy) -> Outcome:
    """TLS-HOSTNAME: the certificate names the host clients connect to (SAN, not CN)."""
    o, ev = a.observation, a.evidence()
    c = o.certificate
    name = policy.server_name or o.server_name
    if not (c.san_dns or c.san_ip):
        return failed(f"{o.endpoint}: certificate has no subjectAltName (CN-only names are ignored by clients)", **ev)
    if name_matches(name, c.san_dns, c.san_ip):
        return passed(f"{o.endpoint}: certificate covers {name}", **ev)
    return failed(f"{o.endpoint}: certificate does not cover {name} (SAN: {', '.join(c.san_dns + c.san_ip)})", **ev)


@fail_closed
def judge_expiry(a: Attempt[TlsObservation], policy: TlsPolicy, now: dt.datetime | None = None) -> Outcome:
    """TLS-EXPIRY: not expired (fail), not inside the warning window (a lower-severity fail)."""
    o, ev = a.observation, a.evidence()
    now = now or dt.datetime.now(dt.timezone.utc)
    c = o.certificate
    left = c.not_after - now
    ev = {**ev, "days_left": round(left.total_seconds() / 86400, 1), "warning_window_days": policy.expiry_warning_days}
    if now < c.not_before:
        return failed(f"{o.endpoint}: certificate not valid before {c.not_before.isoformat()}", **ev)
    if left.total_seconds() <= 0:
        return failed(f"{o.endpoint}: certificate expired on {c.not_after.isoformat()}", severity="critical", **ev)
    if left < dt.timedelta(days=policy.expiry_warning_days):
        return failed(f"{o.endpoint}: certificate expires in {left.days} day(s) ({c.not_after.date()}), inside the "
                      f"{policy.expiry_warning_days}-day window", severity="medium", **ev)
    return passed(f"{o.endpoint}: certificate valid until {c.not_after.date()} ({left.days} days)", **ev)


@fail_closed
def judge_key_size(a: Attempt[TlsObservation], policy: TlsPolicy) -> Outcome:
    """TLS-KEYSIZE: RSA/DSA >= 2048 bits, EC >= 256 bits."""
    o, ev = a.observation, a.evidence()
    c = o.certificate
    floor = policy.min_ec_bits if c.key_type.startswith(("EC", "Ed")) else policy.min_rsa_bits
    if c.key_bits < floor:
        return failed(f"{o.endpoint}: {c.key_type} key of {c.key_bits} bits (< {floor})", **ev)
    return passed(f"{o.endpoint}: {c.key_type} {c.key_bits}-bit key", **ev)


@fail_closed
def judge_mutual(a: Attempt[TlsObservation], policy: TlsPolicy) -> Outcome:
    """TLS-MTLS: a client without a certificate is refused where the profile requires mutual TLS."""
    o, ev = a.observation, a.evidence()
    if not policy.require_mutual:
        return errored("judge_mutual called for an endpoint the profile does not require mutual TLS on", **ev)
    if o.no_cert_handshake.startswith("refused"):
        return passed(f"{o.endpoint} refuses a client without a certificate ({o.no_cert_handshake}; sslyze: {o.client_auth})", **ev)
    return failed(f"{o.endpoint} accepts a client without a certificate (client auth {o.client_auth})", **ev)


@fail_closed
def judge_plaintext(a: Attempt[PlaintextObservation], endpoint: str, expect_tls: bool) -> Outcome:
    """TLS-PLAINTEXT: an endpoint that should be TLS is TLS; a plain HTTP port only redirects to HTTPS."""
    o = a.observation
    assert o is not None
    ev = {**a.evidence(), "endpoint_name": endpoint}
    if o.tls_handshake == "completed":
        refusal = "; a plain request is reset (refused)" if o.plain_reset else ""
        return passed(f"{endpoint} {o.host}:{o.port} speaks TLS{refusal}", **ev)
    if o.redirects_to_https:
        return passed(f"{endpoint} {o.host}:{o.port} is plain HTTP that only redirects to {o.location}", **ev)
    if o.http_status is not None:
        return failed(f"{endpoint} {o.host}:{o.port} serves plain HTTP (status {o.http_status}) where TLS is expected", **ev)
    if o.plain_reset:  # resets the handshake and the plain request alike: nothing shows what it speaks
        return errored(f"{endpoint} {o.host}:{o.port} resets a plain request and the TLS handshake failed "
                       f"({o.tls_handshake}): cannot tell whether it speaks TLS", **ev)
    if expect_tls:
        return failed(f"{endpoint} {o.host}:{o.port} does not speak TLS ({o.tls_handshake})", **ev)
    return errored(f"{endpoint} {o.host}:{o.port} speaks neither TLS nor HTTP", **ev)


def judge_plaintext_all(checks: list[tuple[str, Attempt[PlaintextObservation], bool]]) -> Outcome:
    """TLS-PLAINTEXT over every endpoint of a deployment that must be TLS (and its plain HTTP
    port): any plain-text endpoint fails, else any probe error errors, else pass."""
    if not checks:
        return errored("no endpoint to check")
    outcomes = [(name, judge_plaintext(a, name, expect)) for name, a, expect in checks]
    evidence = {name: {"status": o.status.value, "reason": o.reason, **dict(o.evidence)} for name, o in outcomes}
    for status in ("fail", "error"):
        hit = [o.reason for _, o in outcomes if o.status.value == status]
        if hit:
            return (failed if status == "fail" else errored)("; ".join(hit), endpoints=evidence)
    return passed("; ".join(o.reason for _, o in outcomes), endpoints=evidence)
