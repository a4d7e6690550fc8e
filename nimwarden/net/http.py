"""A bounded HTTP(S) client for probes.

``requests`` bounds each socket read, not the whole exchange: a server that
answers one byte a second never trips its read timeout.  This client uses
http.client directly and shuts the socket down when a total deadline passes,
so every call ends within ``connect_s + read_s`` (plus scheduling slack)
whatever the server does.  It also refuses hosts outside the target's scope
before any packet is sent, and caps how much of a body it keeps.
"""

from __future__ import annotations

import errno
import http.client
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nimwarden.errors import OutOfScope
from nimwarden.outcome import Attempt

MAX_BODY = 4 * 1024 * 1024
USER_AGENT = "nimwarden/0.1 (security compliance probe)"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    truncated: bool = False

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def evidence(self) -> dict[str, Any]:
        excerpt = self.text()[:600]
        return {"response_status": self.status, "response_body": excerpt + ("…" if len(self.body) > 600 else "")}


@dataclass(frozen=True)
class Limits:
    connect_s: float = 2.0
    read_s: float = 5.0
    max_body: int = MAX_BODY
    extra: dict = field(default_factory=dict)

    @property
    def deadline_s(self) -> float:
        return self.connect_s + self.read_s


def describe_error(exc: BaseException, deadline_hit: bool, limits: Limits) -> str:
    """A reason a security engineer can act on, naming the fault."""
    if deadline_hit:
        return f"no complete answer within the {limits.deadline_s:g}s deadline (server too slow or hanging: no answer in time)"
    if isinstance(exc, OutOfScope):
        return f"refused: {exc}"
    if isinstance(exc, socket.gaierror):
        return f"host name does not resolve ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listening)"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"no answer within {limits.read_s:g}s (timed out)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "server closed the connection without answering"
    if isinstance(exc, http.client.IncompleteRead):
        return "connection closed in the middle of the response"
    if isinstance(exc, (http.client.BadStatusLine, http.client.LineTooLong, http.client.HTTPException)):
        return f"answer is not valid HTTP ({type(exc).__name__}: {str(exc)[:80]!r})"
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"network unreachable ({exc.strerror})"
    return f"{type(exc).__name__}: {exc}"


def request(
    method: str,
    url: str,
    *,
    probe: str,
    limits: Limits,
    guard=None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    ssl_context: ssl.SSLContext | None = None,
    redact_headers: tuple[str, ...] = (),
) -> Attempt[HttpResponse]:
    """One HTTP exchange, bounded in time and size. ``guard(host)`` raises OutOfScope to refuse."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    shown_headers = {k: ("<redacted>" if k.lower() in redact_headers else v) for k, v in (headers or {}).items()}
    asked = f"{method} {url}" + (f" headers={sorted(shown_headers)}" if shown_headers else "")
    t0 = time.monotonic()
    deadline_hit = threading.Event()
    conn: http.client.HTTPConnection | None = None

    def on_deadline() -> None:
        deadline_hit.set()
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(limits.deadline_s, on_deadline)
    timer.daemon = True
    try:
        if guard is not None:
            guard(parts.hostname or "")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme == "https":
            ctx = ssl_context or ssl.create_default_context()
            conn = http.client.HTTPSConnection(parts.hostname, port, timeout=limits.connect_s, context=ctx)
        else:
            conn = http.client.HTTPConnection(parts.hostname, port, timeout=limits.connect_s)
        timer.start()
        conn.connect()
        conn.sock.settimeout(limits.read_s)
        all_headers = {"User-Agent": USER_AGENT, "Accept": "*/*", **(headers or {})}
        conn.request(method, path, body=body, headers=all_headers)
        resp = conn.getresponse()
        chunks, size, truncated = [], 0, False
        while True:
            chunk = resp.read(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > limits.max_body:
                truncated = True
                chunks.append(chunk[: max(0, limits.max_body - (size - len(chunk)))])
                break
            chunks.append(chunk)
        if deadline_hit.is_set():
            raise TimeoutError("deadline")
        obs = HttpResponse(resp.status, resp.reason, {k.lower(): v for k, v in resp.getheaders()}, b"".join(chunks), truncated)
        return Attempt(probe, asked, obs, None, time.monotonic() - t0)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an incomplete attempt (error), never a pass
        return Attempt(probe, asked, None, describe_error(exc, deadline_hit.is_set(), limits), time.monotonic() - t0)
    finally:
        timer.cancel()
        if conn is not None:
            conn.close()


def credential_header(header: str | None, value: str | None) -> tuple[str, str] | None:
    """The header to send for a configured credential; a bare token for Authorization becomes a Bearer token."""
    if not value:
        return None
    header = header or "Authorization"
    if header.lower() == "authorization" and " " not in value:
        value = f"Bearer {value}"
    return header, value


def auth_headers(credential: Any) -> dict[str, str] | None:
    """The headers for a profile credential (``credentials.<name>``), its value registered for redaction
    at once; None when the profile gives none or its source is empty."""
    if credential is None:
        return None
    from nimwarden.redact import register

    value = credential.resolve()
    register(value)
    hv = credential_header(credential.header, value)
    if hv is None:
        return None
    register(hv[1])
    return {hv[0]: hv[1]}


def tcp_connect(host: str, port: int, *, probe: str, limits: Limits, guard=None) -> Attempt[str]:
    """Is anything listening? 'open' or 'closed' (refused) are observations; a timeout is not."""
    asked = f"TCP connect {host}:{port}"
    t0 = time.monotonic()
    try:
        if guard is not None:
            guard(host)
        with socket.create_connection((host, port), timeout=limits.connect_s):
            return Attempt(probe, asked, "open", None, time.monotonic() - t0)
    except ConnectionRefusedError:
        return Attempt(probe, asked, "closed", None, time.monotonic() - t0)
    except Exception as exc:  # noqa: BLE001 - error, never a pass
        return Attempt(probe, asked, None, describe_error(exc, False, limits), time.monotonic() - t0)
