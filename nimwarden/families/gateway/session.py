"""The gateway probe's HTTP session: one bounded keep-alive connection per origin
(:class:`nimwarden.net.http.Connection`), apart from the probe's plan of requests.

Every exchange ends within ``connect_s + read_s`` whatever the gateway does: a gateway that
answers a byte at a time is cut off at that deadline (a per-read timeout, as ``requests`` has,
never trips on it and the probe would run for as long as the gateway keeps sending)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nimwarden.net.http import Connection, Limits

MODERN_TLS = ("TLSv1.2", "TLSv1.3")


@dataclass(frozen=True)
class Answer:
    """What the gateway answered: the status and the headers (names in lower case)."""

    status_code: int
    headers: Mapping[str, str]


class ProbeSession:
    """A probe session that keeps one connection per origin and remembers the TLS version of every
    connection it opened. HTTPS accepts whatever the gateway offers (TLS 1.0 and weak suites included:
    ``Connection.lenient``): a legacy-only gateway must still be judged on what it lets through; the TLS
    family judges its protocol and certificate. Never through a proxy from the environment."""

    def __init__(self) -> None:
        self._connections: dict[tuple, Connection] = {}

    def __enter__(self) -> ProbeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def probe(self, method: str, url: str, *, headers: Mapping[str, str], timeout: tuple[float, float] | Limits,
              body: Mapping[str, Any] | None = None) -> Answer:
        """One exchange, its answer read whole; raises ``net.http.ExchangeError`` naming the fault. ``timeout``:
        (connect_s, read_s), or the limits of the profile's ``timeouts`` (with ``give_up_after``)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "", parts.port, timeout)  # Limits are frozen: hashable
        conn = self._connections.get(key)
        if conn is None:
            conn = self._connections[key] = Connection.lenient(url, timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        answer = conn.exchange(method, path, headers=headers, json_body=body)
        return Answer(answer.status, answer.headers)

    @property
    def tls_versions(self) -> set[str]:
        return set().union(*(c.tls_versions for c in self._connections.values()))

    def tls_note(self) -> str | None:
        """How the probe connected, for the evidence: None over plain HTTP."""
        versions_seen = self.tls_versions
        if not versions_seen:
            return None
        versions = ", ".join(sorted(versions_seen))
        if all(v in MODERN_TLS for v in versions_seen):
            return f"connected with {versions}"
        return f"connected with {versions}, as the gateway offers no better; the tls family judges the protocol"

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
