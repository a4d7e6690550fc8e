"""Requests to the Kubernetes API server, each bounded as a whole.

The ``kubernetes`` client (urllib3) bounds each socket read, not the exchange: an API server, or a proxy in
front of one, that sends a list a few bytes at a time holds the read for as long as it keeps sending, and a
nightly audit with it. Here the ``kubernetes`` client still does what it is good at, the kubeconfig (contexts,
client certificates, exec plugins that mint tokens, in-cluster service-account files): each request's URL and
headers come from its ``ApiClient.param_serialize``, credentials included, refreshed as it refreshes them. The
exchange itself goes through :class:`nimwarden.net.http.Connection`: one keep-alive connection per thread,
``connect_s + read_s`` for the whole answer, whatever the server does.

Where that client cannot stand in (an HTTP proxy in the kubeconfig), the ``kubernetes`` client sends the request
as before (:attr:`ApiTransport.bounded` is False then, and says why). A kubeconfig's ``tls-server-name`` (an API
server dialled by its address, its certificate checked against that name) is kept.
"""

from __future__ import annotations

import json
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

from nimwarden.net.http import Connection, ExchangeError, Limits
from nimwarden.net.tls_client import verifying_context

MAX_BODY = 256 * 1024 * 1024  # a page of a list (``limit`` items); more is refused, never read without end


class ApiCallError(Exception):
    """A request the API server did not answer in full, in time; the text names the fault."""


def ssl_context_of(configuration: Any) -> ssl.SSLContext:
    """The TLS settings of a ``kubernetes.client.Configuration`` as urllib3 applies them: the cluster's CA (a file
    or inline data), the client certificate, and no verification where the kubeconfig says
    ``insecure-skip-tls-verify``."""
    ctx = verifying_context(configuration.ssl_ca_cert, ca_data=getattr(configuration, "ca_cert_data", None),
                            client_cert=configuration.cert_file, client_key=configuration.key_file)
    if not configuration.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif configuration.assert_hostname is False:
        ctx.check_hostname = False
    return ctx


class ApiTransport:
    """``call(method, path, query, headers, body) -> (status, body bytes)`` against the API server of
    ``configuration``; raises :class:`ApiCallError` when there is no whole answer in time."""

    def __init__(self, configuration: Any, timeout: tuple[float, float]):
        from kubernetes.client import ApiClient

        self.api = ApiClient(configuration)
        self.timeout = timeout
        self.limits = Limits(connect_s=timeout[0], read_s=timeout[1], max_body=MAX_BODY)
        self.host = str(configuration.host).rstrip("/")
        self.server_name = getattr(configuration, "tls_server_name", None) or None
        self.why_not_bounded = ("an HTTP proxy is configured" if configuration.proxy else
                                None if urlsplit(self.host).scheme in ("http", "https") else f"the server URL {self.host!r}")
        self._configuration = configuration
        self._context: ssl.SSLContext | None = None  # made at the first request: a bad CA or key is that request's error
        self._local = threading.local()
        self._opened: list[Connection] = []
        self._lock = threading.Lock()

    @property
    def bounded(self) -> bool:
        return self.why_not_bounded is None

    def _connection(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._context is None and self.host.startswith("https:"):
                try:
                    self._context = ssl_context_of(self._configuration)
                except (OSError, ssl.SSLError, ValueError) as exc:  # a CA or client key file missing or unreadable
                    raise ApiCallError(f"the kubeconfig's TLS settings cannot be used: {type(exc).__name__}: {exc}") from None
            conn = self._local.conn = Connection(self.host, limits=self.limits, ssl_context=self._context,
                                                 server_hostname=self.server_name)
            with self._lock:
                self._opened.append(conn)
        return conn

    def call(self, method: str, path: str, query: list[tuple[str, Any]] | None = None,
             headers: dict[str, str] | None = None, body: Any = None) -> tuple[int, bytes]:
        m, url, hdrs, data, _ = self.api.param_serialize(method, path, query_params=query or [], header_params=headers or {},
                                                         body=body, auth_settings=["BearerToken"])
        if not self.bounded:
            try:
                resp = self.api.call_api(m, url, header_params=hdrs, body=data, _request_timeout=self.timeout)
                return resp.status, resp.read()
            except Exception as exc:  # noqa: BLE001 - urllib3/ssl errors all mean "the API server did not answer"
                raise ApiCallError(f"{type(exc).__name__}: {exc}") from None
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        payload = data if isinstance(data, (bytes, type(None))) else \
            data.encode("utf-8") if isinstance(data, str) else json.dumps(data).encode("utf-8")
        sent = {k: v for k, v in hdrs.items() if k.lower() != "user-agent"}
        try:
            answer = self._connection().exchange(m, target, headers=sent, body=payload)
        except ExchangeError as exc:
            raise ApiCallError(str(exc)) from None
        if answer.truncated:
            raise ApiCallError(f"the answer is larger than {MAX_BODY // 2**20} MiB (a page of a list should not be)")
        return answer.status, answer.body

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self.api.close()
