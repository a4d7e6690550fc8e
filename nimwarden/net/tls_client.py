"""Python ssl handshakes shared by the probes: a lenient client context and one bounded handshake."""

from __future__ import annotations

import socket
import ssl
from typing import Any


def lenient_context(client: Any = None) -> ssl.SSLContext:
    """A client that accepts anything the server offers, down to TLS 1.0 and weak suites: used to read
    what a server offers (and to reach a legacy-only gateway), never to trust it. ``client`` has
    ``cert`` and ``key`` paths for mutual TLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    if client is not None:
        ctx.load_cert_chain(client.cert, client.key)
    return ctx


def verifying_context(ca_file: str | None = None, *, ca_data: str | None = None, client_cert: str | None = None,
                      client_key: str | None = None) -> ssl.SSLContext:
    """A client that trusts ``ca_file``/``ca_data`` (or the system store when neither is given), checks the server's
    name, speaks TLS 1.2 or newer, and presents ``client_cert`` (with ``client_key``) for mutual TLS. Raises
    OSError/ssl.SSLError/ValueError when a file is missing or unreadable: callers turn that into their error."""
    ctx = ssl.create_default_context(cafile=ca_file or None, cadata=ca_data or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_cert:
        ctx.load_cert_chain(client_cert, client_key or None)
    return ctx


def handshake(ctx: ssl.SSLContext, host: str, port: int, server_name: str, timeout_s: float, *, read_s: float = 0.0) -> bytes:
    """One handshake; returns the server's leaf certificate (DER). ``read_s`` > 0 also waits
    that long for a post-handshake alert (TLS 1.3 reports a missing client certificate late)."""
    with socket.create_connection((host, port), timeout=timeout_s) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True) or b""
            if read_s > 0:
                tls.settimeout(read_s)
                try:
                    tls.recv(1)
                except TimeoutError:
                    pass  # silence: the server kept the connection, i.e. accepted us
            return der
