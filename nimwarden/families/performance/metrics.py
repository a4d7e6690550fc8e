"""Server-side view of a measurement from Triton's Prometheus metrics.

Counters are read at the start and the end of the reported windows; their
difference over the number of successful requests gives the server's average
queue and compute time per request, and the failure counter shows whether
the server saw an inference fail. GPU gauges (utilisation, memory) are read
at the end; a CPU-only server has none, which is reported, not invented.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from nimwarden.net.http import Limits, request

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

MODEL_COUNTERS = (
    "nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
    "nv_inference_exec_count", "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
    "nv_inference_compute_input_duration_us", "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
)
GPU_GAUGES = ("nv_gpu_utilization", "nv_gpu_memory_used_bytes", "nv_gpu_memory_total_bytes", "nv_gpu_power_usage")


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in Prometheus text format; comments skipped."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        labels = dict(_LABEL.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, value))
    return samples


@dataclass(frozen=True)
class Snapshot:
    """Counters of one model (summed over versions and failure reasons) and GPU gauges."""

    model: Mapping[str, float]
    gpus: Mapping[str, Mapping[str, float]]  # gpu_uuid -> gauge -> value

    @classmethod
    def from_text(cls, text: str, model: str) -> Snapshot:
        counters: dict[str, float] = {}
        gpus: dict[str, dict[str, float]] = {}
        for name, labels, value in parse_prometheus(text):
            if name in MODEL_COUNTERS and labels.get("model") == model:
                counters[name] = counters.get(name, 0.0) + value
            elif name in GPU_GAUGES and "gpu_uuid" in labels:
                gpus.setdefault(labels["gpu_uuid"], {})[name] = value
        return cls(counters, gpus)


class ScrapeError(Exception):
    """The metrics endpoint did not give its page: the reason names the fault."""


def _page(url: str, timeout_s: float, headers: Mapping[str, str] | None) -> str:
    """The metrics page, read by the bounded client (``timeout_s`` per read, and no more than ``connect_s +
    timeout_s`` for the whole page however slowly the server sends it); a failure or an HTTP error raises."""
    got = request("GET", url, probe="performance.metrics", limits=Limits(connect_s=min(2.0, timeout_s), read_s=timeout_s),
                  headers=dict(headers or {}))
    if not got.completed:
        raise ScrapeError(f"GET {url}: {got.error}")
    if got.observation.status >= 400:
        raise ScrapeError(f"GET {url}: HTTP {got.observation.status} {got.observation.reason}")
    return got.observation.text()


def scrape(url: str, model: str, timeout_s: float = 5.0, headers: Mapping[str, str] | None = None) -> Snapshot:
    snap = Snapshot.from_text(_page(url, timeout_s, headers), model)
    if "nv_inference_request_success" not in snap.model:
        raise ValueError(f"{url} has no nv_inference_request_success for model {model!r}")
    return snap


@dataclass(frozen=True)
class ServerStats:
    """What the server saw between two snapshots."""

    requests_success: int
    requests_failed: int
    avg_request_us: float | None
    avg_queue_us: float | None
    avg_compute_input_us: float | None
    avg_compute_infer_us: float | None
    avg_compute_output_us: float | None
    gpus: Mapping[str, Mapping[str, float]]

    def as_dict(self) -> dict:
        out = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in self.__dict__.items() if k != "gpus"}
        out["gpus"] = {u: dict(g) for u, g in self.gpus.items()} or "none reported (no GPU metrics)"
        return out


def delta(before: Snapshot, after: Snapshot) -> ServerStats:
    def d(name: str) -> float:
        return after.model.get(name, 0.0) - before.model.get(name, 0.0)

    ok = d("nv_inference_request_success")

    def per_request(name: str) -> float | None:
        return d(name) / ok if ok > 0 and name in after.model else None

    return ServerStats(
        int(ok), int(d("nv_inference_request_failure")),
        per_request("nv_inference_request_duration_us"), per_request("nv_inference_queue_duration_us"),
        per_request("nv_inference_compute_input_duration_us"), per_request("nv_inference_compute_infer_duration_us"),
        per_request("nv_inference_compute_output_duration_us"), after.gpus,
    )


def failure_total(url: str, timeout_s: float = 5.0, headers: Mapping[str, str] | None = None) -> float:
    """Sum of nv_inference_request_failure over every model: the audit-under-load counter."""
    text = _page(url, timeout_s, headers)
    samples = [v for n, _, v in parse_prometheus(text) if n == "nv_inference_request_failure"]
    if not samples and "nv_inference_request_success" not in text:
        raise ValueError(f"{url} exposes no Triton inference counters")
    return sum(samples)
