"""A minimal gRPC-over-HTTP/2 client for one pre-encoded unary call, sent again and again.

Why not grpcio: on the 2-core project machine its Python call path costs
~300 us of client CPU per request against perf_analyzer's ~110 us, and the
client shares the cores with the server it measures, so grpcio alone reaches
only ~0.85-0.9 of perf_analyzer's throughput (benchmarks/perf_overhead.py).
This client frames each request from bytes prepared once: a fixed HPACK
header block (literals only, so it is valid on every stream), one DATA frame
and a read loop that handles only the frames a gRPC server sends.

Success is decided without an HPACK decoder: we ask the server for a
dynamic header table of size 0, so its trailer block for a successful call
is the same bytes every time. The first response is decoded completely (a
ModelInferResponse with outputs) and its trailer block becomes the success
signature; any later call with another trailer block, no message, or a
RST_STREAM counts as failed (fail closed). Error texts come from grpcio in
the caller when it needs them.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Mapping

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
RECV_WINDOW = 1 << 30
MAX_FRAME = 16384  # SETTINGS_MAX_FRAME_SIZE default; we never ask for more
MAX_STREAM_ID = 1 << 30  # reconnect long before the 2^31 limit


class GrpcCallFailed(Exception):
    pass


class GrpcStatusError(GrpcCallFailed):
    """The call completed with a gRPC status other than OK (a trailers-only answer)."""


def _hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _literal(name_index: int | None, name: str, value: str) -> bytes:
    """Literal header field without indexing (RFC 7541 6.2.2), no Huffman."""
    v = value.encode()
    if name_index is not None:
        head = _hpack_int(name_index, 4)
    else:
        n = name.encode()
        head = b"\x00" + _hpack_int(len(n), 7) + n
    return head + _hpack_int(len(v), 7) + v


def header_block(path: str, authority: str, tls: bool, metadata: Mapping[str, str]) -> bytes:
    block = b"\x83" + (b"\x87" if tls else b"\x86")  # :method POST, :scheme https|http (static table)
    block += _literal(4, ":path", path) + _literal(1, ":authority", authority)
    block += _literal(31, "content-type", "application/grpc") + _literal(None, "te", "trailers")
    for k, v in metadata.items():
        block += _literal(None, k.lower(), v)
    return block


def _frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


class H2GrpcChannel:
    """One HTTP/2 connection carrying one call at a time (a closed-loop worker's connection)."""

    def __init__(self, host: str, port: int, path: str, metadata: Mapping[str, str] | None = None,
                 timeout_s: float = 10.0, tls_context: ssl.SSLContext | None = None,
                 server_name: str | None = None) -> None:
        self._addr, self._timeout, self._tls = (host, port), timeout_s, tls_context
        self._server_name = server_name or host
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._block = header_block(path, authority, tls_context is not None, metadata or {})
        self.success_trailers: bytes | None = None
        self._sock: socket.socket | None = None
        self._goaway = False

    # -- connection -------------------------------------------------------
    def connect(self) -> None:
        sock = socket.create_connection(self._addr, timeout=self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=self._server_name)
            if sock.selected_alpn_protocol() != "h2":
                sock.close()
                raise GrpcCallFailed("the server did not negotiate HTTP/2 (ALPN h2)")
        self._sock, self._buf, self._pos = sock, bytearray(), 0
        self._next_stream, self._send_window, self._stream_window = 1, 65535, 65535
        self._received = 0
        self._goaway = False
        # header table 0: the server's trailers become constant bytes (see module doc); no push
        settings = struct.pack(">HI", 0x1, 0) + struct.pack(">HI", 0x2, 0) + struct.pack(">HI", 0x4, RECV_WINDOW)
        sock.sendall(PREFACE + _frame(SETTINGS, 0, 0, settings)
                     + _frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", RECV_WINDOW - 65535)))

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    # -- frames ------------------------------------------------------------
    def _read_frame(self) -> tuple[int, int, int, bytes]:
        buf = self._buf
        while len(buf) - self._pos < 9 or len(buf) - self._pos < 9 + int.from_bytes(buf[self._pos:self._pos + 3], "big"):
            if self._pos:
                del buf[:self._pos]
                self._pos = 0
            chunk = self._sock.recv(262144)
            if not chunk:
                raise GrpcCallFailed("connection closed by the server")
            buf += chunk
        p = self._pos
        length = int.from_bytes(buf[p:p + 3], "big")
        ftype, flags = buf[p + 3], buf[p + 4]
        stream = int.from_bytes(buf[p + 5:p + 9], "big") & 0x7FFFFFFF
        payload = bytes(buf[p + 9:p + 9 + length])
        self._pos = p + 9 + length
        return ftype, flags, stream, payload

    def _control(self, ftype: int, flags: int, stream: int, payload: bytes) -> None:
        if ftype == SETTINGS and not flags & ACK:
            for i in range(0, len(payload) - 5, 6):
                key, value = struct.unpack(">HI", payload[i:i + 6])
                if key == 0x4:  # the server's initial stream window
                    self._stream_window = value
            self._sock.sendall(_frame(SETTINGS, ACK, 0, b""))
        elif ftype == PING and not flags & ACK:
            self._sock.sendall(_frame(PING, ACK, 0, payload))
        elif ftype == WINDOW_UPDATE and stream == 0:
            self._send_window += struct.unpack(">I", payload)[0] & 0x7FFFFFFF
        elif ftype == GOAWAY:
            # finish the call in flight if the server still serves it (else the connection closes);
            # the next call opens a new connection
            self._goaway = True

    # -- one call ----------------------------------------------------------
    def call(self, message: bytes) -> tuple[bytes, bytes]:
        """Send one length-prefixed gRPC message; returns (response message, trailer block)."""
        if self._sock is None or self._next_stream > MAX_STREAM_ID or self._goaway:
            self.close()
            self.connect()
        sid = self._next_stream
        self._next_stream += 2
        try:
            headers = _frame(HEADERS, END_HEADERS, sid, self._block)
            if len(message) <= min(MAX_FRAME, self._send_window, self._stream_window):
                self._send_window -= len(message)  # the common case: one write per request
                self._sock.sendall(headers + _frame(DATA, END_STREAM, sid, message))
            else:
                self._sock.sendall(headers)
                self._send_chunked(sid, message)
            return self._read_response(sid)
        except GrpcStatusError:
            raise  # a clean gRPC error: the connection is fine
        except (OSError, GrpcCallFailed):
            self.close()  # unknown connection state: the next call reconnects
            raise

    def _send_chunked(self, sid: int, message: bytes) -> None:
        """DATA frames no larger than the frame limit, within the server's flow-control windows."""
        view, off, stream_window = memoryview(message), 0, self._stream_window
        while off < len(message):
            chunk = min(len(message) - off, MAX_FRAME, self._send_window, stream_window)
            if chunk <= 0:  # wait for the server to open a window
                ftype, flags, stream, payload = self._read_frame()
                if stream == sid and ftype == WINDOW_UPDATE:
                    stream_window += struct.unpack(">I", payload)[0] & 0x7FFFFFFF
                elif stream == sid:
                    raise GrpcCallFailed(f"the server answered (frame type {ftype}) before the request was sent")
                else:
                    self._control(ftype, flags, stream, payload)
                continue
            last = off + chunk >= len(message)
            self._sock.sendall(_frame(DATA, END_STREAM if last else 0, sid, bytes(view[off:off + chunk])))
            self._send_window -= chunk
            stream_window -= chunk
            off += chunk

    def _read_response(self, sid: int) -> tuple[bytes, bytes]:
        data = bytearray()
        blocks: list[bytes] = []
        block = b""
        ended = False
        while True:
            ftype, flags, stream, payload = self._read_frame()
            if stream != sid or ftype not in (DATA, HEADERS, CONTINUATION, RST_STREAM):
                self._control(ftype, flags, stream, payload)
                continue
            if ftype == RST_STREAM:
                raise GrpcCallFailed(f"stream reset by the server (error code {int.from_bytes(payload, 'big')})")
            if ftype == DATA:
                if flags & PADDED:
                    payload = payload[1:len(payload) - payload[0]]
                data += payload
                self._received += 9 + len(payload)
                if self._received > RECV_WINDOW // 2:  # give the server its connection window back
                    self._sock.sendall(_frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self._received)))
                    self._received = 0
            else:
                if ftype == HEADERS:
                    if flags & PADDED:
                        payload = payload[1:len(payload) - payload[0]]
                    if flags & PRIORITY:
                        payload = payload[5:]
                block += payload
                if flags & END_HEADERS:
                    blocks.append(block)
                    block = b""
            if ftype in (DATA, HEADERS) and flags & END_STREAM:
                ended = True
            if ended and not block:
                break
        if len(blocks) < 2 or len(data) < 5:
            raise GrpcStatusError("the server answered without a message (a gRPC error status)")
        if data[0] != 0:
            raise GrpcCallFailed("compressed gRPC responses are not supported")
        length = int.from_bytes(data[1:5], "big")
        return bytes(data[5:5 + length]), blocks[-1]


def frame_message(serialized: bytes) -> bytes:
    """gRPC length-prefixed message: uncompressed flag + 4-byte length + protobuf bytes."""
    return b"\x00" + struct.pack(">I", len(serialized)) + serialized
