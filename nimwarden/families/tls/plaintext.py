"""TLS-PLAINTEXT's probe: does a port that should speak TLS speak it, plain HTTP, or plain HTTP that
only redirects to HTTPS? One lenient TLS handshake and one plain ``GET /``, both bounded."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nimwarden.families.tls.options import plaintext_endpoints
from nimwarden.net.tls_client import handshake, lenient_context
from nimwarden.outcome import Attempt, attempt


@dataclass(frozen=True)
class PlaintextObservation:
    """What a port that should be TLS answers to a plain request."""

    host: str
    port: int
    tls_handshake: str  # "completed" or "failed: <why>"
    http_status: int | None  # answer to a plain GET, None when it did not speak HTTP
    location: str | None
    plain_reset: bool = False  # the plain GET was reset: a TLS-only port refusing plain text


    @property
    def redirects_to_https(self) -> bool:
        return self.http_status in (301, 302, 303, 307, 308) and bool(self.location) and self.location.lower().startswith("https://")

    def evidence(self) -> dict[str, Any]:
        return {"endpoint": f"{self.host}:{self.port}", "tls_handshake": self.tls_handshake,
                "plain_http_status": self.http_status, "location": self.location,
                "redirects_to_https": self.redirects_to_https, "plain_request_reset": self.plain_reset}


RESET = object()  # _plain_get's answer when the server reset the plain request


def _plain_get(host: str, port: int, timeout_s: float) -> tuple[int | None, str | None] | object:
    """The status and Location of a plain ``GET /``; RESET when the server resets it (a TLS-only
    port that refuses plain text closes with the request unread, and the kernel sends a reset)."""
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        data = b""
        try:
            s.sendall(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            while len(data) < 16384 and b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            if not data:
                return RESET
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        return None, None
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, None
    location = next((ln.split(":", 1)[1].strip() for ln in lines[1:] if ln.lower().startswith("location:")), None)
    return status, location


def probe_plaintext(host: str, port: int, *, guard: Callable[[str], None] | None = None, timeout_s: float = 5.0) -> Attempt[PlaintextObservation]:
    """Does ``host:port`` speak TLS, plain HTTP, or plain HTTP that redirects to HTTPS?"""
    if guard is not None:
        guard(host)

    def run() -> PlaintextObservation:
        try:
            handshake(lenient_context(None), host, port, host, timeout_s)
            tls_state = "completed"
        except (ssl.SSLError, ConnectionResetError) as exc:
            tls_state = f"failed: {getattr(exc, 'reason', None) or exc}"
        answer = _plain_get(host, port, timeout_s)
        if answer is RESET:
            return PlaintextObservation(host, port, tls_state, None, None, plain_reset=True)
        status, location = answer
        return PlaintextObservation(host, port, tls_state, status, location)

    return attempt("tls.plaintext", f"TLS handshake and plain GET / on {host}:{port}", run)


def plaintext_checks(target: Any, deployment: Any) -> list:
    """TLS-PLAINTEXT's probes: ``(endpoint name, attempt, TLS required)`` for every endpoint that must
    be TLS and the plain HTTP port beside it."""
    checks = []
    for name, required in plaintext_endpoints(target, deployment):
        ep = deployment.endpoint(name)
        checks.append((name, probe_plaintext(ep.host, ep.port, guard=target.guard, timeout_s=target.timeouts.read_s), required))
    return checks
