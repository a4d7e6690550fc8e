"""Synthetic inference inputs built from a model's metadata (shapes and datatypes)."""

from __future__ import annotations

from nimwarden.outcome import Attempt

FILL = {"FP16": 1.0, "FP32": 1.0, "FP64": 1.0, "INT8": 1, "INT16": 1, "INT32": 1, "INT64": 1, "UINT8": 1, "BOOL": True}


def synthetic_inputs(metadata: Attempt, dynamic_dim: int = 1) -> Attempt[list[dict]]:
    """Small inputs (ones) matching the model's declared inputs; -1 dimensions become ``dynamic_dim``."""
    asked = f"inputs from {metadata.request}"
    if not metadata.completed:
        return Attempt("inputs", asked, None, f"model metadata unavailable: {metadata.error}")
    resp = metadata.observation
    if resp.status != 200:
        return Attempt("inputs", asked, None, f"model metadata answered HTTP {resp.status}")
    try:
        declared = resp.json()["inputs"]
        inputs = []
        for spec in declared:
            shape = [dynamic_dim if int(d) < 0 else int(d) for d in spec["shape"]]
            count = 1
            for d in shape:
                count *= d
            if spec["datatype"] not in FILL:
                return Attempt("inputs", asked, None, f"cannot synthesize input {spec['name']} of type {spec['datatype']}")
            inputs.append({"name": spec["name"], "datatype": spec["datatype"], "shape": shape, "data": [FILL[spec["datatype"]]] * count})
    except (ValueError, KeyError, TypeError) as exc:
        return Attempt("inputs", asked, None, f"model metadata is not what Triton answers: {exc}")
    return Attempt("inputs", asked, inputs, None)
