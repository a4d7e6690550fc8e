"""Baselines, metrics parsing, input generation and the HTTP/2 framing of the perf package."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nimwarden.errors import ConfigError
from nimwarden.families.performance import baseline, h2grpc, inputs, metrics

FP = dict(server_version="2.51.0", model="add", model_versions=["1"], protocol="grpc", input_shapes={"INPUT0": [4]})
RECORD = {"recorded_at": "2026-11-22T08:00:00Z", "stable": True, "throughput": 100.0,
          "windows": [{"throughput": 100.0, "p99_us": 900.0, "avg_us": 500.0}] * 3}


def test_baseline_round_trip_and_update_keeps_other_levels(tmp_path):
    fp = baseline.fingerprint(**FP)
    path = baseline.path_for("lab", "hardened", "add", root=tmp_path)
    assert path == tmp_path / "lab" / "hardened" / "add.json"
    assert baseline.load(path) is None
    baseline.save(path, fp, "concurrency 1", RECORD)
    baseline.save(path, fp, "concurrency 4", RECORD)
    b = baseline.load(path)
    assert b.fingerprint == fp and set(b.levels) == {"concurrency 1", "concurrency 4"}
    # a new environment replaces the file: levels measured elsewhere are stale
    other = baseline.fingerprint(**{**FP, "server_version": "2.59.1"})
    baseline.save(path, other, "concurrency 4", RECORD)
    assert set(baseline.load(path).levels) == {"concurrency 4"}


def test_each_update_adds_a_run_and_the_windows_pool_the_last_five(tmp_path):
    fp = {"triton_version": "2.51.0", "model": "add"}
    path = tmp_path / "b.json"
    for i in range(7):
        record = dict(RECORD, throughput=100.0 + i, windows=[{"throughput": 100.0 + i, "p99_us": 10.0 + i}] * 3)
        baseline.save(path, fp, "concurrency 1", record)
        level = baseline.load(path).level("concurrency 1")
        assert len(level["runs"]) == min(i + 1, baseline.KEEP_RUNS)
        assert len(level["windows"]) == 3 * len(level["runs"])
    assert [r["throughput"] for r in level["runs"]] == [102.0, 103.0, 104.0, 105.0, 106.0]  # the oldest dropped
    assert level["throughput"] == 106.0  # the figures are the newest run's
    baseline.save(path, fp, "concurrency 1", RECORD, keep=1)
    assert len(baseline.load(path).level("concurrency 1")["runs"]) == 1
    baseline.save(path, dict(fp, model="other"), "concurrency 1", RECORD)
    assert len(baseline.load(path).level("concurrency 1")["runs"]) == 1  # another environment starts over


def test_a_single_run_baseline_of_the_first_format_gains_runs():
    old = dict(RECORD, windows=[{"throughput": 1.0, "p99_us": 2.0}] * 3)  # no "runs": recorded before they existed
    merged = baseline.merge_runs(old, dict(RECORD, windows=[{"throughput": 3.0, "p99_us": 4.0}] * 3))
    assert len(merged["runs"]) == 2 and [w["throughput"] for w in merged["windows"]] == [1.0] * 3 + [3.0] * 3


def test_fingerprint_differences_name_the_field():
    a = baseline.fingerprint(**FP)
    b = baseline.fingerprint(**{**FP, "input_shapes": {"INPUT0": [8]}})
    diff = baseline.differences(a, b)
    assert len(diff) == 1 and diff[0].startswith("input_shapes:")
    assert baseline.differences(a, dict(a)) == []


def test_gpu_fingerprint_comes_from_metrics():
    fp = baseline.fingerprint(**FP, gpus={"GPU-1": {"nv_gpu_memory_total_bytes": 8e10}})
    assert fp["gpus"] == ["GPU-1"] and fp["gpu_memory_total_bytes"] == [80000000000]
    assert baseline.fingerprint(**FP)["gpus"] == "none"


@pytest.mark.parametrize("content,field", [
    ("{not json", ""),
    (json.dumps({"schema": "other"}), "schema"),
    (json.dumps({"schema": baseline.SCHEMA, "fingerprint": {}, "levels": {"c1": {"windows": [{"x": 1}]}}}),
     "levels.c1.windows"),
])
def test_a_broken_baseline_is_a_config_error_naming_the_file(tmp_path, content, field):
    p = tmp_path / "add.json"
    p.write_text(content)
    with pytest.raises(ConfigError) as exc:
        baseline.load(p)
    assert str(p) in str(exc.value) and field in str(exc.value)


def test_path_for_refuses_traversal(tmp_path):
    p = baseline.path_for("../x", "a/b", "m", root=tmp_path)
    assert p.resolve().parent.parent.parent == tmp_path.resolve()  # three levels, all below the root
    with pytest.raises(ValueError):
        baseline.path_for("..", "d", "m", root=tmp_path)


METRICS = """# HELP nv_inference_request_success Number of successful inference requests
nv_inference_request_success{model="add",version="1"} 120
nv_inference_request_success{model="other",version="1"} 999
nv_inference_request_failure{model="add",reason="REJECTED",version="1"} 2
nv_inference_request_failure{model="add",reason="BACKEND",version="1"} 1
nv_inference_queue_duration_us{model="add",version="1"} 24000
nv_inference_compute_infer_duration_us{model="add",version="1"} 60000
nv_gpu_utilization{gpu_uuid="GPU-abc"} 0.5
nv_cpu_utilization 0.25
"""


def test_metrics_snapshot_sums_one_model_and_keeps_gpus():
    snap = metrics.Snapshot.from_text(METRICS, "add")
    assert snap.model["nv_inference_request_success"] == 120
    assert snap.model["nv_inference_request_failure"] == 3
    assert snap.gpus == {"GPU-abc": {"nv_gpu_utilization": 0.5}}


def test_metrics_delta_gives_per_request_server_times():
    before = metrics.Snapshot.from_text(METRICS, "add")
    after_text = METRICS.replace("} 120", "} 220").replace("} 24000", "} 34000").replace("} 60000", "} 110000")
    d = metrics.delta(before, metrics.Snapshot.from_text(after_text, "add"))
    assert d.requests_success == 100 and d.requests_failed == 0
    assert d.avg_queue_us == pytest.approx(100.0) and d.avg_compute_infer_us == pytest.approx(500.0)
    assert d.avg_compute_input_us is None  # not exported: unknown, not zero


def test_specs_from_metadata_resolves_variable_dimensions():
    meta = {"inputs": [{"name": "X", "datatype": "FP32", "shape": ["-1", "3"]},
                       {"name": "T", "datatype": "BYTES", "shape": [-1, -1]}]}
    specs = inputs.specs_from_metadata(meta, max_batch_size=8, batch_size=4)
    assert specs[0].shape == (4, 3) and specs[1].shape == (4, 1)  # batch dimension, then any other
    specs = inputs.specs_from_metadata(meta, shapes={"T": [5]})
    assert specs[0].shape == (1, 3) and specs[1].shape == (5,)  # no batching: every -1 is 1
    with pytest.raises(ValueError, match="unsupported datatype"):
        inputs.specs_from_metadata({"inputs": [{"name": "Q", "datatype": "COMPLEX", "shape": [1]}]})
    with pytest.raises(ValueError, match="no inputs"):
        inputs.specs_from_metadata({"inputs": []})


def test_payload_encodes_the_same_tensor_for_grpc_and_http():
    from tritonclient.grpc import service_pb2

    specs = (inputs.TensorSpec("A", "FP32", (4,)), inputs.TensorSpec("S", "BYTES", (2,)))
    p = inputs.build_payload("m", specs, data={"A": np.array([1, 2, 3, 4], dtype=np.float32)})
    req = service_pb2.ModelInferRequest.FromString(p.grpc_request)
    assert req.model_name == "m" and [i.name for i in req.inputs] == ["A", "S"]
    assert np.frombuffer(req.raw_input_contents[0], dtype="<f4").tolist() == [1, 2, 3, 4]
    assert req.raw_input_contents[1] == b"\x09\x00\x00\x00nimwarden" * 2
    header = json.loads(p.http_body[:p.http_header_length])
    assert header["inputs"][0]["parameters"]["binary_data_size"] == 16
    assert p.http_body[p.http_header_length:] == req.raw_input_contents[0] + req.raw_input_contents[1]


def test_hpack_integers_and_literals_follow_rfc7541():
    # RFC 7541 C.1.1 / C.1.2: 10 with a 5-bit prefix, 1337 with a 5-bit prefix
    assert h2grpc._hpack_int(10, 5) == bytes([10])
    assert h2grpc._hpack_int(1337, 5) == bytes([31, 154, 10])
    block = h2grpc.header_block("/svc/M", "127.0.0.1:1", False, {"Admin-Key": "s"})
    assert block.startswith(b"\x83\x86")  # :method POST, :scheme http
    assert b"\x04\x06/svc/M" in block and b"\x00\x09admin-key\x01s" in block
    assert h2grpc.header_block("/p", "h:1", True, {})[1:2] == b"\x87"
    assert h2grpc.frame_message(b"abc") == b"\x00\x00\x00\x00\x03abc"


def test_completions_are_counted_between_two_scrapes_not_between_two_collects():
    from nimwarden.families.performance.loadgen import completed_between

    def batch(ends, failed=()):
        ends = np.asarray(ends, dtype=np.int64)
        mask = np.zeros(len(ends), dtype=bool)
        mask[list(failed)] = True
        return ends - 5, ends, mask

    batches = [batch([10, 20, 30]), batch([40, 50, 60], failed=[1]), batch([70])]
    assert completed_between(batches, 20, 60) == 3  # 30, 40, 60: ends on the lower edge and failures not counted
    assert completed_between(batches, 0, 100) == 6
    assert completed_between(batches, 70, 100) == 0
