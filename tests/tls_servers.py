"""TLS servers written for the harness's own tests — test servers, not products, and not the lab.

``TestTlsServer`` serves HTTP over Python's ``ssl`` with the protocol range, cipher string and
certificate a test gives it, and answers every request with one fixed status (a gateway that
admits anyone, or one that refuses everyone). What it does with a request that is not TLS is
what OpenSSL and the kernel do: the handshake fails on the plain bytes, the socket is closed
with them unread, and the client sees a reset (``ConnectionResetError``) — as it does from many
TLS-only proxies.

- ``tls_only_server``: a well-configured TLS-only server (TLS 1.2 and 1.3, a 2048-bit
  certificate valid for a year);
- ``legacy_gateway``: a gateway that speaks only TLS 1.0 and 1.1 with an expired, self-signed
  RSA-1024 certificate, and admits anyone (``@SECLEVEL=0``: Debian 12's OpenSSL refuses TLS 1.0
  and 1024-bit keys otherwise).
"""

from __future__ import annotations

import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nimwarden.lab import pki


class TestTlsServer:
    """HTTP over TLS on ``host``: every request gets ``status`` and a small JSON body."""

    __test__ = False  # not a test class

    def __init__(self, host: str, cert: pki.CertFiles, *, minimum: ssl.TLSVersion, maximum: ssl.TLSVersion,
                 ciphers: str | None = None, status: int = 200):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1 is deprecated: that is the point
            ctx.minimum_version, ctx.maximum_version = minimum, maximum
        if ciphers:
            ctx.set_ciphers(ciphers)
        ctx.load_cert_chain(cert.cert, cert.key)
        self.ctx, self.status, self.host = ctx, status, host
        self.handshakes: list[str] = []  # negotiated protocol of every completed handshake
        self.requests: list[str] = []  # request lines served
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind((host, 0))
        self._srv.listen(64)
        self._srv.settimeout(0.2)
        self.port = self._srv.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except OSError:  # not TLS, or a protocol we do not speak: closed with the bytes unread (a reset)
            conn.close()
            return
        self.handshakes.append(tls.version() or "?")
        try:
            with tls, tls.makefile("rb") as reader:
                while True:  # keep-alive: requests' sessions send several requests on one connection
                    line = reader.readline(8192)
                    if not line:
                        return
                    length = 0
                    while True:
                        header = reader.readline(8192)
                        if header in (b"\r\n", b"\n", b""):
                            break
                        name, _, value = header.decode("latin-1").partition(":")
                        if name.strip().lower() == "content-length":
                            length = int(value.strip() or 0)
                    if length:
                        reader.read(length)
                    self.requests.append(line.decode("latin-1").strip())
                    body = b'{"served_by":"nimwarden test server"}'
                    tls.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                % (self.status, len(body), body))
        except OSError:
            return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._srv.close()


@contextmanager
def tls_only_server(directory: Path, host: str = "127.0.0.1", status: int = 401) -> Iterator[TestTlsServer]:
    """A well-configured TLS-only test server: TLS 1.2+, RSA-2048, valid for a year; refuses every request."""
    cert = pki.self_signed(directory, "tls-only", [host], days_left=365, key_size=2048)
    srv = TestTlsServer(host, cert, minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.MAXIMUM_SUPPORTED, status=status)
    try:
        yield srv
    finally:
        srv.close()


@contextmanager
def legacy_gateway(directory: Path, host: str = "127.0.0.1", status: int = 200, only_tls10: bool = False) -> Iterator[TestTlsServer]:
    """A legacy-only test gateway: TLS 1.0/1.1 (or 1.0 alone), expired self-signed RSA-1024; admits anyone (``status``)."""
    cert = pki.self_signed(directory, "legacy", [host], days_left=-30, key_size=1024)
    highest = ssl.TLSVersion.TLSv1 if only_tls10 else ssl.TLSVersion.TLSv1_1
    srv = TestTlsServer(host, cert, minimum=ssl.TLSVersion.TLSv1, maximum=highest,
                        ciphers="ALL:@SECLEVEL=0", status=status)
    try:
        yield srv
    finally:
        srv.close()
