"""Streaming LLM load (deployments of kind ``nim``): TTFT, inter-token latency, output tokens/s.

Speaks the OpenAI-compatible ``POST /v1/chat/completions`` with
``"stream": true`` that NIM documents: a ``text/event-stream`` of
``data: {chat.completion.chunk}`` events ending with ``data: [DONE]``. Each
event whose ``choices[0].delta.content`` is non-empty counts as one output
token (NIM streams one token per event); the time to the first of them is
TTFT, the gaps between them inter-token latency. Windows (10 s by default,
as perf_analyzer uses for LLMs) and the stability rule are the Triton ones.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from nimwarden.families.performance.loadgen import LoadSpec
from nimwarden.families.performance.stats import LatencySummary, summarize_latency
from nimwarden.families.performance.windows import Stability, Window, merge, stability, window_from_slices
from nimwarden.net.tls_client import verifying_context


class StreamFailed(Exception):
    pass


@dataclass(frozen=True)
class StreamEndpoint:
    base_url: str  # http(s)://host:port
    model: str
    headers: Mapping[str, str] = field(default_factory=dict)
    ca_file: str | None = None
    timeout_s: float = 30.0
    prompt: str = "Write one sentence about inference servers."
    max_tokens: int = 64

    def connection(self) -> http.client.HTTPConnection:
        scheme, _, rest = self.base_url.partition("://")
        hostport = rest.split("/", 1)[0]
        host, _, port = hostport.rpartition(":")
        if scheme == "https":
            ctx = verifying_context(self.ca_file)
            return http.client.HTTPSConnection(host.strip("[]"), int(port or 443), timeout=self.timeout_s, context=ctx)
        return http.client.HTTPConnection(host.strip("[]"), int(port or 80), timeout=self.timeout_s)

    def body(self) -> bytes:
        return json.dumps({"model": self.model, "messages": [{"role": "user", "content": self.prompt}],
                           "max_tokens": self.max_tokens, "stream": True}).encode()


@dataclass(frozen=True)
class StreamResult:
    start_ns: int
    first_token_ns: int
    end_ns: int
    token_times_ns: tuple[int, ...]

    @property
    def tokens(self) -> int:
        return len(self.token_times_ns)


def discover_model(ep: StreamEndpoint, connect_s: float = 2.0, read_s: float = 5.0, guard=None) -> str:
    """The first model id ``GET /v1/models`` lists (a NIM serves one); StreamFailed when it cannot be read.

    Through the probes' bounded client: the whole exchange ends within ``connect_s + read_s``
    even against a server that drips one byte a second.
    """
    from nimwarden.net import http as bounded

    ctx = None
    if ep.base_url.startswith("https"):
        ctx = verifying_context(ep.ca_file)
    got = bounded.request("GET", ep.base_url.rstrip("/") + "/v1/models", probe="perf.llm.models",
                          limits=bounded.Limits(connect_s, read_s, 1 << 20), guard=guard,
                          headers={"Accept": "application/json", **ep.headers}, ssl_context=ctx,
                          redact_headers=tuple(k.lower() for k in ep.headers))
    if got.observation is None:
        raise StreamFailed(f"GET /v1/models: {got.error}")
    resp = got.observation
    if resp.status != 200:
        raise StreamFailed(f"GET /v1/models: HTTP {resp.status}: {resp.body[:200]!r}")
    try:
        return str(json.loads(resp.body)["data"][0]["id"])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise StreamFailed(f"GET /v1/models: not the expected JSON, a list of models ({type(exc).__name__}): {resp.body[:120]!r}") from None


def stream_once(ep: StreamEndpoint) -> StreamResult:
    """One streamed chat completion, timed per token; raises StreamFailed on anything but a clean stream."""
    conn = ep.connection()
    clock = time.perf_counter_ns
    try:
        t0 = clock()
        conn.request("POST", "/v1/chat/completions", ep.body(),
                     {"Content-Type": "application/json", "Accept": "text/event-stream", **ep.headers})
        resp = conn.getresponse()
        if resp.status != 200:
            raise StreamFailed(f"HTTP {resp.status}: {resp.read(200)!r}")
        if "text/event-stream" not in (resp.getheader("Content-Type") or ""):
            raise StreamFailed(f"not an event stream: Content-Type {resp.getheader('Content-Type')!r}")
        times: list[int] = []
        done = False
        for raw in resp:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True
                break
            try:
                chunk = json.loads(data)
            except ValueError as exc:
                raise StreamFailed(f"unparseable event: {data[:120]!r}") from exc
            if "error" in chunk:
                raise StreamFailed(f"error event: {str(chunk['error'])[:200]}")
            choices = chunk.get("choices") or [{}]
            if (choices[0].get("delta") or {}).get("content"):
                times.append(clock())
        t_end = clock()
    except (OSError, http.client.HTTPException) as exc:
        raise StreamFailed(f"{type(exc).__name__}: {exc}") from exc
    finally:
        conn.close()
    if not done:
        raise StreamFailed("stream ended without data: [DONE]")
    if not times:
        raise StreamFailed("stream carried no content tokens")
    return StreamResult(t0, times[0], t_end, tuple(times))


@dataclass(frozen=True)
class StreamMeasurement:
    endpoint: str
    model: str
    load: LoadSpec
    windows: tuple[Window, ...]  # request latency per window
    stability: Stability
    requests_per_s: float
    request_latency: LatencySummary | None
    ttft: LatencySummary | None
    inter_token: LatencySummary | None
    output_tokens_per_s: float
    errors: int
    error_samples: tuple[str, ...]

    @property
    def stable(self) -> bool:
        return self.stability.stable

    @property
    def throughput(self) -> float:
        return self.requests_per_s

    @property
    def latency(self) -> LatencySummary | None:
        return self.request_latency

    def evidence(self) -> dict:
        def d(x):
            return x.as_dict() if x else None

        return {"endpoint": self.endpoint, "model": self.model, "load": self.load.mode, "stable": self.stable,
                "stability": self.stability.as_dict(), "requests_per_s": round(self.requests_per_s, 2),
                "request_latency_us": d(self.request_latency), "ttft_us": d(self.ttft),
                "inter_token_latency_us": d(self.inter_token),
                "output_tokens_per_s": round(self.output_tokens_per_s, 1), "errors": self.errors,
                "error_samples": list(self.error_samples), "windows": [w.as_dict() for w in self.windows]}


def measure_stream(ep: StreamEndpoint, load: LoadSpec) -> StreamMeasurement:
    """Closed loop at ``load.concurrency`` streams; windows and stability as for Triton."""
    if load.rate:
        raise ValueError("streaming load supports fixed concurrency only")
    stream_once(ep)  # one clean stream first: a broken endpoint is an error, not a slow one
    lock = threading.Lock()
    results: list[StreamResult] = []  # completed, in completion order
    failures: list[tuple[int, int, str]] = []  # (start, end, reason)
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            t0 = time.perf_counter_ns()
            try:
                r = stream_once(ep)
                with lock:
                    results.append(r)
            except StreamFailed as exc:
                with lock:
                    failures.append((t0, time.perf_counter_ns(), str(exc)[:200]))
                stop.wait(0.01)

    threads = [threading.Thread(target=worker, daemon=True, name=f"nimwarden-stream-{i}") for i in range(load.concurrency)]
    for t in threads:
        t.start()
    windows: list[Window] = []
    bounds: list[tuple[int, int]] = []
    try:
        time.sleep(load.warmup_s)
        t_prev = time.perf_counter_ns()
        for index in range(load.max_windows):
            time.sleep(max(0.0, (t_prev + load.window_s * 1e9 - time.perf_counter_ns()) / 1e9))
            t_now = time.perf_counter_ns()
            with lock:
                done = [r for r in results if t_prev <= r.end_ns < t_now]
                errs = sum(1 for f in failures if t_prev <= f[1] < t_now)
            w = window_from_slices(index, (t_now - t_prev) / 1e9, [r.start_ns for r in done], [r.end_ns for r in done])
            windows.append(Window(w.index, w.duration_s, w.completed, errs, w.latencies_us))
            bounds.append((t_prev, t_now))
            t_prev = t_now
            if len(windows) >= load.min_windows and stability(windows, load.tolerance).stable:
                break
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=ep.timeout_s + 1)
    lo, hi = bounds[-3][0] if len(bounds) >= 3 else bounds[0][0], bounds[-1][1]
    last = [r for r in results if lo <= r.end_ns < hi]
    rps, req_lat, _ = merge(windows[-3:])
    ttft = [(r.first_token_ns - r.start_ns) / 1000 for r in last]
    itl = np.concatenate([np.diff(np.asarray(r.token_times_ns)) / 1000 for r in last]) if last else np.array([])
    span_s = (hi - lo) / 1e9
    return StreamMeasurement(
        endpoint=ep.base_url, model=ep.model, load=load, windows=tuple(windows),
        stability=stability(windows, load.tolerance), requests_per_s=rps, request_latency=req_lat,
        ttft=summarize_latency(ttft) if ttft else None, inter_token=summarize_latency(itl) if len(itl) else None,
        output_tokens_per_s=sum(r.tokens for r in last) / span_s if span_s > 0 else 0.0,
        errors=sum(w.errors for w in windows), error_samples=tuple(sorted({f[2] for f in failures}))[:5],
    )
