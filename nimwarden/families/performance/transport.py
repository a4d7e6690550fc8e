"""Senders: the cheapest way to put one pre-encoded inference request on the wire.

Measured on the 2-core project machine (benchmarks/perf_overhead.py): the
lean HTTP/2 client of h2grpc.py, one connection per worker thread, sending
pre-serialized bytes, costs the client the least CPU per request; grpcio's
blocking stub costs several times more and ``tritonclient``'s asyncio client,
which rebuilds the protobuf and parses every response, the most. The client
shares the cores with the server, so every microsecond it spends is taken
from the thing we measure.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from nimwarden.families.performance.h2grpc import H2GrpcChannel, frame_message
from nimwarden.families.performance.inputs import Payload
from nimwarden.net.tls_client import verifying_context

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


class RequestFailed(Exception):
    """The server answered, but not with a successful inference."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach one deployment's inference API."""

    protocol: str  # "grpc" or "http"
    address: str  # host:port
    tls: bool = False
    ca_file: str | None = None  # PEM bundle to verify the server with (TLS)
    server_name: str | None = None  # TLS name to verify when address is an IP
    client_cert: str | None = None  # PEM certificate chain for mutual TLS
    client_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. a gateway's auth header
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.protocol not in ("grpc", "http"):
            raise ValueError(f"unknown protocol {self.protocol!r} (grpc or http)")

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.address.rpartition(":")
        return host.strip("[]"), int(port)

    def describe(self) -> str:
        scheme = {("grpc", False): "grpc", ("grpc", True): "grpcs", ("http", False): "http", ("http", True): "https"}
        return f"{scheme[(self.protocol, self.tls)]}://{self.address}"


Sender = Callable[[], bytes]


def tls_context(endpoint: Endpoint) -> ssl.SSLContext:
    """Verify the server against the profile's CA (or the system store); TLS 1.2+; client cert for mTLS."""
    return verifying_context(endpoint.ca_file, client_cert=endpoint.client_cert, client_key=endpoint.client_key)


class Transport:
    """Senders for one endpoint and payload, after one fully checked request.

    ``engine`` "h2" (default for gRPC) is the lean HTTP/2 client of h2grpc.py;
    "grpcio" is the stock gRPC stack, kept for comparison and for servers the
    lean client cannot talk to. The first request is decoded completely and
    must carry outputs; for "h2" it also fixes the success signature.
    """

    def __init__(self, endpoint: Endpoint, payload: Payload, engine: str | None = None) -> None:
        self.endpoint, self.payload = endpoint, payload
        self.engine = engine or ("h2" if endpoint.protocol == "grpc" else "http.client")
        if self.engine not in ("h2", "grpcio", "http.client"):
            raise ValueError(f"unknown engine {self.engine!r}")
        self._success_trailers: bytes | None = None

    def preflight(self) -> dict[str, list[int]]:
        """One request decoded in full: the output shapes, or an exception saying why not."""
        if self.engine == "h2":
            ch = self._h2_channel()
            try:
                body, trailers = ch.call(frame_message(self.payload.grpc_request))
            except Exception:
                # the lean client cannot read error texts: ask grpcio for the server's words
                send, close = grpc_sender(self.endpoint, self.payload)
                try:
                    send()
                finally:
                    close()
                raise
            finally:
                ch.close()
            outputs = check_response(self.endpoint, body)
            self._success_trailers = trailers
            return outputs
        send, close = self.sender()
        try:
            return check_response(self.endpoint, send())
        finally:
            close()

    def sender(self) -> tuple[Sender, Callable[[], None]]:
        if self.engine == "grpcio":
            return grpc_sender(self.endpoint, self.payload)
        if self.engine == "http.client":
            return http_sender(self.endpoint, self.payload)
        if self._success_trailers is None:
            raise RuntimeError("preflight() first: the h2 engine needs the success signature")
        ch, msg, ok = self._h2_channel(), frame_message(self.payload.grpc_request), self._success_trailers
        call = ch.call

        def send() -> bytes:
            body, trailers = call(msg)
            if trailers != ok:
                raise RequestFailed("gRPC status other than the first request's OK")
            return body

        return send, ch.close

    def _h2_channel(self) -> H2GrpcChannel:
        ep = self.endpoint
        context = None
        if ep.tls:
            context = tls_context(ep)
            context.set_alpn_protocols(["h2"])
        host, port = ep.host_port
        return H2GrpcChannel(host, port, MODEL_INFER, {k.lower(): v for k, v in ep.headers.items()},
                             ep.timeout_s, context, ep.server_name)


def grpc_sender(endpoint: Endpoint, payload: Payload) -> tuple[Sender, Callable[[], None]]:
    """A blocking grpcio ModelInfer call on a channel of its own; returns (send, close)."""
    import grpc  # noqa: PLC0415

    options = [
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
        # A connection per sender, as perf_analyzer has one per worker; a shared
        # subchannel serializes every worker on one HTTP/2 connection.
        ("grpc.use_local_subchannel_pool", 1),
    ]
    if endpoint.server_name:
        options.append(("grpc.ssl_target_name_override", endpoint.server_name))
    if endpoint.tls:
        def read(path: str | None) -> bytes | None:
            if not path:
                return None
            with open(path, "rb") as f:
                return f.read()

        creds = grpc.ssl_channel_credentials(read(endpoint.ca_file), read(endpoint.client_key),
                                             read(endpoint.client_cert))
        channel = grpc.secure_channel(endpoint.address, creds, options)
    else:
        channel = grpc.insecure_channel(endpoint.address, options)
    call = channel.unary_unary(MODEL_INFER)  # bytes in, bytes out: no (de)serialization per request
    data = payload.grpc_request
    metadata = tuple((k.lower(), v) for k, v in endpoint.headers.items()) or None
    timeout = endpoint.timeout_s

    def send() -> bytes:
        return call(data, timeout=timeout, metadata=metadata)

    return send, channel.close


def http_sender(endpoint: Endpoint, payload: Payload) -> tuple[Sender, Callable[[], None]]:
    """A keep-alive HTTP/1.1 connection posting the binary-tensor request."""
    host, port = endpoint.host_port
    path = f"/v2/models/{payload.model}" + (f"/versions/{payload.version}" if payload.version else "") + "/infer"
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(payload.http_header_length),
        **endpoint.headers,
    }
    body = payload.http_body
    context = tls_context(endpoint) if endpoint.tls else None

    def connect() -> http.client.HTTPConnection:
        if context is not None:
            return http.client.HTTPSConnection(host, port, timeout=endpoint.timeout_s, context=context)
        return http.client.HTTPConnection(host, port, timeout=endpoint.timeout_s)

    conn = [connect()]

    def send() -> bytes:
        try:
            conn[0].request("POST", path, body, headers)
            resp = conn[0].getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            conn[0].close()
            conn[0] = connect()  # the next request starts on a fresh connection
            raise
        if resp.status != 200:
            raise RequestFailed(f"HTTP {resp.status}: {data[:200]!r}")
        return data

    return send, lambda: conn[0].close()


def check_response(endpoint: Endpoint, raw: bytes) -> dict[str, list[int]]:
    """Decode one response fully: the output names and shapes, or ValueError when it carries none."""
    if endpoint.protocol == "grpc":
        from tritonclient.grpc import service_pb2  # noqa: PLC0415

        resp = service_pb2.ModelInferResponse.FromString(raw)
        outputs = {o.name: list(o.shape) for o in resp.outputs}
    else:
        import json  # noqa: PLC0415

        # the request asks for no binary outputs, so the whole reply is JSON
        outputs = {o["name"]: list(o["shape"]) for o in json.loads(raw).get("outputs", [])}
    if not outputs:
        raise ValueError("the inference response carries no outputs")
    return outputs
