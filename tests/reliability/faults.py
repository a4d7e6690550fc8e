"""Faulty servers for the fault matrix: real sockets on loopback that misbehave in one named way each.

Every server listens on its own 127.0.0.x port and answers every connection the
same way, whatever the protocol spoken to it (HTTP, gRPC, TLS, nmap's probes).
The faults are those of issue 8: refused, hang, one byte a second, reset in
the middle of the response, garbage instead of the protocol, a valid status
with a malformed body, 5xx, and on TLS: handshake aborted, a certificate for
another name, an expired certificate.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import threading
import time
from pathlib import Path

from nimwarden.lab import pki

GARBAGE = bytes(range(256)) * 4  # not HTTP, not HTTP/2, not a TLS record
MALFORMED = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"ready\": tru\x00e,"
SLOW = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
RESET_PREFIX = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"models\": ["
SERVER_ERROR = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 19\r\nConnection: close\r\n\r\nupstream overloaded"


def _read_some(conn: socket.socket, limit_s: float = 1.0) -> bytes:
    conn.settimeout(limit_s)
    try:
        return conn.recv(65536)
    except OSError:
        return b""


def _answer(conn: socket.socket, data: bytes, drain_s: float = 1.0) -> None:
    """Send ``data`` and close the way a server that has answered does: half-close, then read what the client still
    sends (the body of a POST that arrived after the headers) until it closes or ``drain_s`` passes. Closing with that
    body unread makes the kernel answer it with a reset, and the probe then sees "connection reset" instead of the
    fault this server stands for (CI saw it once, on a malformed-body POST)."""
    conn.sendall(data)
    try:
        conn.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + drain_s
        while (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            if conn.recv(65536) == b"":
                break
    except OSError:
        pass
    conn.close()


def _reset(conn: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a crashing server does."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    conn.close()


class FaultServer:
    """One fault on one loopback port; ``kind`` names it (see FAULTS)."""

    def __init__(self, kind: str, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None):
        self.kind = kind
        self.tls = tls
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.connections = 0
        self.accepted_at: list[float] = []  # monotonic times, for rate checks
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            self.accepted_at.append(time.monotonic())
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            getattr(self, "_" + self.kind.replace("-", "_"))(conn)
        except OSError:
            pass

    # ------------------------------------------------------------------ behaviours

    def _hang(self, conn):  # accept, read, never answer (kept open until close())
        conn.settimeout(0.5)
        while not self._stop.is_set():
            try:
                if conn.recv(65536) == b"":
                    return
            except TimeoutError:
                continue

    def _slow(self, conn):  # a valid, tiny answer at one byte a second
        _read_some(conn)
        for b in SLOW:
            if self._stop.wait(1.0):
                return
            conn.sendall(bytes([b]))
        conn.close()

    def _reset_mid_response(self, conn):
        _read_some(conn)
        conn.sendall(RESET_PREFIX)
        time.sleep(0.05)
        _reset(conn)

    def _garbage(self, conn):
        _read_some(conn)
        _answer(conn, GARBAGE)

    def _malformed_body(self, conn):
        _read_some(conn)
        _answer(conn, MALFORMED)

    def _server_error(self, conn):
        _read_some(conn)
        _answer(conn, SERVER_ERROR)

    def _tls_abort(self, conn):  # read the ClientHello, then RST: the handshake never completes
        _read_some(conn)
        _reset(conn)

    def _tls_cert(self, conn):  # a full handshake with a bad certificate, then a valid 503
        conn.settimeout(3)
        with self.tls.wrap_socket(conn, server_side=True) as tconn:
            _read_some(tconn)
            tconn.sendall(SERVER_ERROR)

    _tls_wrong_name = _tls_cert
    _tls_expired = _tls_cert

    def close(self) -> None:
        self._stop.set()
        for c in self._open:
            try:
                c.close()
            except OSError:
                pass
        self.sock.close()


def refused_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tls_context(directory: Path, kind: str, host: str) -> ssl.SSLContext:
    """Server context with a certificate for another name (CA-signed) or an expired self-signed one."""
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "tls-wrong-name":
        ca = pki.create_ca(directory)
        files = pki.issue(ca, directory, "wrong-name", ["not-this-host.example"])
    else:
        files = pki.self_signed(directory, "expired", [host], days_left=-30, key_size=2048)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(files.cert), str(files.key))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    os.chmod(files.key, 0o600)
    return ctx


# fault -> (URL scheme for HTTP-ish endpoints, gRPC scheme) the faulty deployment declares
FAULTS = {
    "refused": ("http", "grpc"),
    "hang": ("http", "grpc"),
    "slow": ("http", "grpc"),
    "reset-mid-response": ("http", "grpc"),
    "garbage": ("http", "grpc"),
    "malformed-body": ("http", "grpc"),
    "server-error": ("http", "grpc"),
    "tls-abort": ("https", "grpcs"),
    "tls-wrong-name": ("https", "grpcs"),
    "tls-expired": ("https", "grpcs"),
    "dns": ("http", "grpc"),
}
UNRESOLVABLE = "nimwarden-fault.invalid"  # RFC 6761: .invalid never resolves


def assert_cell_errors(summary: dict | None, family: str, count: int, names: str, label: str, took: float, output: str = "") -> list[dict]:
    """One fault-matrix cell: the audit wrote a summary, and each of the ``count`` results of ``family``
    is an ``error`` whose reason matches ``names`` (the fault, named). Prints the cell's line."""
    import re

    assert summary is not None, output[-3000:]
    rows = [r for r in summary["results"] if r["family"] == family]
    print(f"\n{label}: {len(rows)} {family} results in {took:.1f}s: {sorted({r['status'] for r in rows})}")
    assert len(rows) == count and all(r["status"] == "error" for r in rows), [(r["control"], r["status"], r["reason"][:160]) for r in rows]
    assert all(re.search(names, r["reason"], re.I) for r in rows), [r["reason"][:200] for r in rows]
    return rows
