"""Inference inputs built from a model's metadata, and their wire encodings.

The load generator serializes one request up front and sends the same bytes
every time (perf_analyzer does the same with its default random data), so the
client spends no CPU per request on building tensors or protobufs.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Triton datatype -> numpy dtype (BYTES handled separately)
NUMPY_DTYPES = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]

    def as_dict(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def specs_from_metadata(
    metadata: Mapping, shapes: Mapping[str, Sequence[int]] | None = None, batch_size: int = 1,
    max_batch_size: int = 0,
) -> tuple[TensorSpec, ...]:
    """Input specs from a model's metadata (KServe v2 JSON, as HTTP or gRPC ``as_json`` return it).

    ``shapes`` (from the profile) replaces a tensor's shape; otherwise a
    variable dimension (-1) becomes ``batch_size`` when it is the batch
    dimension of a batching model and 1 elsewhere.
    """
    shapes = shapes or {}
    inputs = metadata.get("inputs")
    if not inputs:
        raise ValueError("model metadata lists no inputs")
    out = []
    for i in inputs:
        name, dtype = i["name"], i["datatype"]
        if dtype not in NUMPY_DTYPES and dtype != "BYTES":
            raise ValueError(f"input {name}: unsupported datatype {dtype}")
        if name in shapes:
            shape = tuple(int(d) for d in shapes[name])
        else:
            dims = [int(d) for d in i.get("shape", [])]
            shape = tuple(
                (batch_size if (k == 0 and max_batch_size > 0) else 1) if d < 0 else d for k, d in enumerate(dims)
            )
        if any(d < 0 for d in shape):
            raise ValueError(f"input {name}: shape {list(shape)} still has a variable dimension")
        out.append(TensorSpec(name, dtype, shape))
    return tuple(out)


def random_tensor(spec: TensorSpec, rng: np.random.Generator) -> np.ndarray:
    if spec.datatype == "BYTES":
        return np.full(spec.shape, b"nimwarden", dtype=np.object_)
    dtype = NUMPY_DTYPES[spec.datatype]
    if spec.datatype == "BOOL":
        return rng.integers(0, 2, spec.shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 100, spec.shape).astype(dtype)
    return rng.random(spec.shape).astype(dtype)


def raw_bytes(array: np.ndarray, datatype: str) -> bytes:
    """Triton's raw tensor encoding: little-endian values; BYTES as 4-byte length + data each."""
    if datatype == "BYTES":
        parts = []
        for item in array.reshape(-1):
            b = item if isinstance(item, bytes) else str(item).encode()
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    return np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()


@dataclass(frozen=True)
class Payload:
    """One request, encoded once for each protocol."""

    model: str
    version: str
    specs: tuple[TensorSpec, ...]
    grpc_request: bytes  # serialized inference.ModelInferRequest
    http_body: bytes  # JSON header + binary tensor data
    http_header_length: int  # value of Inference-Header-Content-Length

    @property
    def input_shapes(self) -> dict[str, list[int]]:
        return {s.name: list(s.shape) for s in self.specs}


def build_payload(
    model: str, specs: Sequence[TensorSpec], version: str = "", seed: int = 0,
    data: Mapping[str, np.ndarray] | None = None, outputs: Sequence[str] = (),
) -> Payload:
    """Encode one request; ``data`` (from the profile) replaces random tensors by name."""
    from tritonclient.grpc import service_pb2  # noqa: PLC0415 - heavy import, only when generating load

    rng = np.random.default_rng(seed)
    data = data or {}
    req = service_pb2.ModelInferRequest(model_name=model, model_version=version)
    header: dict = {"inputs": [], "outputs": [{"name": o, "parameters": {"binary_data": True}} for o in outputs]}
    blobs = []
    for s in specs:
        arr = np.asarray(data[s.name]) if s.name in data else random_tensor(s, rng)
        raw = raw_bytes(arr, s.datatype)
        t = req.inputs.add()
        t.name, t.datatype = s.name, s.datatype
        t.shape.extend(s.shape)
        req.raw_input_contents.append(raw)
        header["inputs"].append({"name": s.name, "datatype": s.datatype, "shape": list(s.shape),
                                 "parameters": {"binary_data_size": len(raw)}})
        blobs.append(raw)
    for o in outputs:
        req.outputs.add().name = o
    if not outputs:
        header.pop("outputs")
    head = json.dumps(header, separators=(",", ":")).encode()
    return Payload(model, version, tuple(specs), req.SerializeToString(), head + b"".join(blobs), len(head))
