"""Senders: the cheapest way to put one pre-encoded inference request on the wire.

Measured on the 2-core project machine (benchmarks/perf_overhead.py): a
blocking raw gRPC stub per thread, each on its own channel and connection,
sending pre-serialized bytes, costs the client the least CPU per request;
``tritonclient``'s asyncio client, which rebuilds the protobuf and parses
every response, costs the most. The client shares the cores with the
server, so every microsecond it spends is taken from the thing we measure.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from nimwarden.perf.inputs import Payload

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


def grpc_sender(endpoint: Endpoint, payload: Payload) -> tuple[Sender, Callable[[], None]]:
    """A blocking ModelInfer call on a channel of its own; returns (send, close)."""
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
        roots = open(endpoint.ca_file, "rb").read() if endpoint.ca_file else None  # noqa: SIM115
        channel = grpc.secure_channel(endpoint.address, grpc.ssl_channel_credentials(roots), options)
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
    context = None
    if endpoint.tls:
        context = ssl.create_default_context(cafile=endpoint.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2

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


def make_sender(endpoint: Endpoint, payload: Payload) -> tuple[Sender, Callable[[], None]]:
    return grpc_sender(endpoint, payload) if endpoint.protocol == "grpc" else http_sender(endpoint, payload)


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
