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
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nimwarden.errors import OutOfScope
from nimwarden.net import hangs
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
    give_up_after: int = 0  # consecutive requests without an answer in time before an endpoint is not asked (hangs)

    @property
    def deadline_s(self) -> float:
        return self.connect_s + self.read_s


def limits_for(timeouts: Any, **more: Any) -> Limits:
    """The limits of a probe from the profile's ``timeouts`` (connect_s, read_s, give_up_after)."""
    return Limits(connect_s=timeouts.connect_s, read_s=timeouts.read_s,
                  give_up_after=getattr(timeouts, "give_up_after", 0), **more)


def _hung(exc: BaseException, deadline_hit: bool) -> bool:
    """Whether a failed exchange is a hang (no answer in time), which :mod:`nimwarden.net.hangs` counts."""
    return deadline_hit or isinstance(exc, TimeoutError)


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
        expected = f", {exc.expected} more expected" if exc.expected is not None else ""
        return f"connection closed in the middle of the response (IncompleteRead: {len(exc.partial)} bytes read{expected})"
    if isinstance(exc, (http.client.BadStatusLine, http.client.LineTooLong, http.client.HTTPException)):
        return f"answer is not valid HTTP ({type(exc).__name__}: {str(exc)[:80]!r})"
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"network unreachable ({exc.strerror})"
    return f"{type(exc).__name__}: {exc}"


def _read_body(resp: http.client.HTTPResponse, max_body: int) -> tuple[bytes, bool]:
    """The body, up to ``max_body`` bytes (and whether it was cut there)."""
    chunks, size = [], 0
    while True:
        chunk = resp.read(65536)
        if not chunk:
            return b"".join(chunks), False
        size += len(chunk)
        if size > max_body:
            chunks.append(chunk[: max(0, max_body - (size - len(chunk)))])
            return b"".join(chunks), True
        chunks.append(chunk)


def _deadline(limits: Limits, conn: Callable[[], http.client.HTTPConnection | None]) -> tuple[threading.Timer, threading.Event]:
    """A timer that, ``limits.deadline_s`` after it starts, marks the deadline hit and shuts the connection's
    socket down, so that a read blocked on a server that answers too slowly (or a byte at a time) returns."""
    hit = threading.Event()

    def on_deadline() -> None:
        hit.set()
        sock = getattr(conn(), "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(limits.deadline_s, on_deadline)
    timer.daemon = True
    return timer, hit


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
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    skipped = hangs.not_sent(host, port, limits.give_up_after)
    if skipped:
        return Attempt(probe, asked, None, skipped, 0.0)
    conn: http.client.HTTPConnection | None = None
    timer, deadline_hit = _deadline(limits, lambda: conn)
    try:
        if guard is not None:
            guard(host)
        conn = _connection(parts.scheme, host, port, limits, ssl_context)
        timer.start()
        conn.connect()
        conn.sock.settimeout(limits.read_s)
        conn.request(method, path, body=body, headers={"User-Agent": USER_AGENT, "Accept": "*/*", **(headers or {})})
        resp = conn.getresponse()
        data, truncated = _read_body(resp, limits.max_body)
        if deadline_hit.is_set():
            raise TimeoutError("deadline")
        obs = HttpResponse(resp.status, resp.reason, {k.lower(): v for k, v in resp.getheaders()}, data, truncated)
        hangs.record(host, port, limits.give_up_after, False)
        return Attempt(probe, asked, obs, None, time.monotonic() - t0)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an incomplete attempt (error), never a pass
        reason = describe_error(exc, deadline_hit.is_set(), limits)
        if not isinstance(exc, OutOfScope):
            hangs.record(host, port, limits.give_up_after, _hung(exc, deadline_hit.is_set()), reason)
        return Attempt(probe, asked, None, reason, time.monotonic() - t0)
    finally:
        timer.cancel()
        if conn is not None:
            conn.close()


def _connection(scheme: str, host: str, port: int | None, limits: Limits,
                ssl_context: ssl.SSLContext | None, server_hostname: str | None = None) -> http.client.HTTPConnection:
    if scheme == "https":
        context = ssl_context or ssl.create_default_context()
        if not server_hostname:
            return http.client.HTTPSConnection(host, port or 443, timeout=limits.connect_s, context=context)
        named = _NamedHTTPSConnection(host, port or 443, timeout=limits.connect_s, context=context)
        named.server_hostname = server_hostname
        return named
    return http.client.HTTPConnection(host, port or 80, timeout=limits.connect_s)


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``host`` whose certificate (and SNI) is checked against another name, ``server_hostname`` (a
    kubeconfig's ``tls-server-name``: an API server dialled by its address)."""

    server_hostname: str

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_hostname)


class ExchangeError(Exception):
    """An exchange of a :class:`Connection` that did not complete; its text is the reason, naming the fault."""


def exchange_reason(exc: BaseException) -> str:
    """An attempt's reason for a probe that failed (``outcome.attempt``'s ``describe``): a failed exchange's own
    reason, naming the fault as the bounded client does; anything else by its type and text."""
    return str(exc) if isinstance(exc, ExchangeError) else f"{type(exc).__name__}: {exc}"


class Connection:
    """Sequential HTTP exchanges with one origin over one keep-alive connection, each bounded as
    :func:`request` is: ``connect_s + read_s`` in all, whatever the server does (one that answers a byte at a
    time is cut off at the deadline, where a per-read timeout never trips). A connection the server closed
    between two exchanges (it is readable while idle: end of file) is opened again before the next one.
    ``tls_versions``: the protocol of every TLS connection it opened."""

    def __init__(self, base_url: str, *, limits: Limits, ssl_context: ssl.SSLContext | None = None,
                 server_hostname: str | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.limits, self.ssl_context = limits, ssl_context
        self.server_hostname = server_hostname  # the name the certificate is checked against, where not the host
        self.tls_versions: set[str] = set()
        self._conn: http.client.HTTPConnection | None = None

    @classmethod
    def lenient(cls, base_url: str, timeout: tuple[float, float] | Limits) -> Connection:
        """A connection to a server the probe judges, not trusts: HTTPS accepts whatever it offers (TLS 1.0 and weak
        suites, any certificate: the TLS family judges those). ``timeout``: (connect_s, read_s), or limits."""
        from nimwarden.net.tls_client import lenient_context

        limits = timeout if isinstance(timeout, Limits) else Limits(connect_s=timeout[0], read_s=timeout[1])
        return cls(base_url, limits=limits, ssl_context=lenient_context() if base_url.startswith("https:") else None)

    def exchange(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
                 body: bytes | None = None, json_body: Any = None) -> HttpResponse:
        """One request and its whole answer; raises :class:`ExchangeError` with the reason when it fails.
        ``json_body``: sent as JSON (``Content-Type: application/json`` unless the headers name one)."""
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            headers = {"Content-Type": "application/json", **(headers or {})}
        port = self.port or (443 if self.scheme == "https" else 80)
        skipped = hangs.not_sent(self.host, port, self.limits.give_up_after)
        if skipped:
            raise ExchangeError(skipped)
        if self._conn is not None and _dropped(self._conn):
            self.close()
        fresh = self._conn is None
        if fresh:
            self._conn = _connection(self.scheme, self.host, self.port, self.limits, self.ssl_context, self.server_hostname)
        conn = self._conn
        timer, deadline_hit = _deadline(self.limits, lambda: conn)
        timer.start()
        try:
            if fresh:
                conn.connect()
                conn.sock.settimeout(self.limits.read_s)
                version = getattr(conn.sock, "version", None)
                if callable(version) and version():
                    self.tls_versions.add(version())
            conn.request(method, path, body=body, headers={"User-Agent": USER_AGENT, "Accept": "*/*", **(headers or {})})
            resp = conn.getresponse()
            data, truncated = _read_body(resp, self.limits.max_body)
            if deadline_hit.is_set():
                raise TimeoutError("deadline")
            if not truncated and resp.length:  # the server closed before the Content-Length it announced
                raise http.client.IncompleteRead(data, resp.length)
            if truncated or resp.will_close:
                self.close()
            hangs.record(self.host, port, self.limits.give_up_after, False)
            return HttpResponse(resp.status, resp.reason, {k.lower(): v for k, v in resp.getheaders()}, data, truncated)
        except Exception as exc:  # noqa: BLE001 - the reason names the fault; the caller's attempt is an error
            self.close()
            reason = describe_error(exc, deadline_hit.is_set(), self.limits)
            hangs.record(self.host, port, self.limits.give_up_after, _hung(exc, deadline_hit.is_set()), reason)
            raise ExchangeError(reason) from exc
        finally:
            timer.cancel()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle kept-alive connection was closed by the server (readable while nothing was asked)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


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
