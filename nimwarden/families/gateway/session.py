"""The gateway probe's HTTP session (``requests``), apart from the probe's plan of requests, so that
deciding what applies — which a manifests-only audit does for every deployment — never imports
``requests`` (about 40 ms of every start-up)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from nimwarden.net.tls_client import lenient_context

MODERN_TLS = ("TLSv1.2", "TLSv1.3")


class _AnyTls(HTTPAdapter):
    """HTTPS with whatever the gateway offers (TLS 1.0 and weak suites included): a legacy-only
    gateway must still be judged on what it lets through; the TLS family fails its protocol."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = lenient_context()
        super().init_poolmanager(*args, **kwargs)


class ProbeSession(requests.Session):
    """A probe session that remembers the TLS version of every connection it used."""

    def __init__(self) -> None:
        super().__init__()
        self.verify = False  # the TLS family judges the certificate; here only reachability matters
        self.trust_env = False  # never through a proxy from the environment: stay inside the scope
        self.mount("https://", _AnyTls())
        self.tls_versions: set[str] = set()

    def probe(self, method: str, url: str, *, headers: Mapping[str, str], timeout: tuple[float, float],
              body: Mapping[str, Any] | None = None) -> requests.Response:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # InsecureRequestWarning: deliberate, see above
            resp = self.request(method, url, json=body, headers=dict(headers), timeout=timeout, allow_redirects=False, stream=True)
        try:
            sock = getattr(getattr(resp.raw, "connection", None), "sock", None)
            version = sock.version() if hasattr(sock, "version") else None
            if version:
                self.tls_versions.add(version)
            resp.content  # noqa: B018 - read it all, as without stream=True: the connection goes back to the pool
        finally:
            resp.close()
        return resp

    def tls_note(self) -> str | None:
        """How the probe connected, for the evidence: None over plain HTTP."""
        if not self.tls_versions:
            return None
        versions = ", ".join(sorted(self.tls_versions))
        if all(v in MODERN_TLS for v in self.tls_versions):
            return f"connected with {versions}"
        return f"connected with {versions}, as the gateway offers no better; the tls family judges the protocol"
