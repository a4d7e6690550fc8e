"""The load generator: closed-loop (fixed concurrency) and open-loop (fixed rate) modes.

Workers (workers.py) are threads, optionally spread over processes, each
with its own connection, sending one pre-encoded request with a blocking
call; each appends start and end timestamps to its own lists, and the
measuring thread collects them at window boundaries, so the hot loop does
nothing but time, send and append. Windows and stability follow
perf_analyzer (windows.py); warm-up requests are never counted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nimwarden.families.performance import metrics as server_metrics
from nimwarden.families.performance.inputs import Payload
from nimwarden.families.performance.spec import LoadSpec  # noqa: F401 - defined apart, imported from here too
from nimwarden.families.performance.stats import LatencySummary
from nimwarden.families.performance.transport import Endpoint, Transport
from nimwarden.families.performance.windows import (
    ClientCost,
    Stability,
    Window,
    client_cost,
    cpu_times,
    merge,
    stability,
    steal_between,
    window_from_slices,
)
from nimwarden.families.performance.workers import ProcessPool, Schedule, ThreadPool


@dataclass(frozen=True)
class Measurement:
    """One measured load level: every window, the stability verdict and the reported (last 3) figures."""

    endpoint: str
    model: str
    load: LoadSpec
    windows: tuple[Window, ...]
    stability: Stability
    throughput: float
    latency: LatencySummary | None
    errors: int  # failed requests in every measured window (not only the last 3)
    error_samples: tuple[str, ...]
    delayed: int  # open loop: requests sent more than 1 ms after their scheduled time
    server: server_metrics.ServerStats | None
    server_note: str  # why server figures are missing, or where they came from
    input_shapes: dict = field(default_factory=dict)
    client_processes: int = 1
    # Successful requests this generator saw complete between the same two metrics scrapes that gave
    # ``server`` (each scrape placed at the midpoint of its HTTP call). The windows end at a collect,
    # not at a scrape, so comparing ``server`` with the windows' counts is off by whatever completed in
    # the gap between a collect and its scrape — hundreds of requests when the machine stalls there.
    server_span_completed: int | None = None
    # The same count bounded by when each scrape's HTTP call began and ended (the server read its
    # counters somewhere inside the call): requests that surely completed inside the span, and those
    # that possibly did. Under CPU steal a scrape can take a tenth of a second or more, and the midpoint
    # alone is then off by hundreds of requests; the server's count must lie between these two.
    server_span_bounds: tuple[int, int] | None = None

    @property
    def stable(self) -> bool:
        return self.stability.stable

    @property
    def client(self) -> ClientCost:
        """The generator's own cost over the reported (last three) windows."""
        return client_cost(self.windows[-3:], self.client_processes)

    def evidence(self) -> dict:
        return {
            "endpoint": self.endpoint, "model": self.model, "load": self.load.mode,
            "input_shapes": self.input_shapes,
            "stable": self.stable, "stability": self.stability.as_dict(),
            "throughput_infer_per_s": round(self.throughput, 2),
            "latency_us": self.latency.as_dict() if self.latency else None,
            "errors": self.errors, "error_samples": list(self.error_samples), "delayed_requests": self.delayed,
            "windows": [w.as_dict() for w in self.windows],
            "server": self.server.as_dict() if self.server else None, "server_note": self.server_note,
            "client_completed_in_server_span": self.server_span_completed,
            "client_completed_in_server_span_bounds": list(self.server_span_bounds) if self.server_span_bounds else None,
            "client": self.client.as_dict(),
        }


def _try_scrape(url: str | None, model: str, headers) -> tuple[server_metrics.Snapshot | None, str, tuple[int, int]]:
    """A metrics snapshot (or None and why), and when its HTTP call began and ended, in
    ``perf_counter_ns`` like the requests' timestamps (CLOCK_MONOTONIC, shared by worker processes)."""
    t0 = time.perf_counter_ns()
    if not url:
        return None, "no metrics endpoint configured for this deployment", (t0, t0)
    try:
        snap = server_metrics.scrape(url, model, headers=headers)
        return snap, f"from {url}", (t0, time.perf_counter_ns())
    except Exception as exc:  # noqa: BLE001 - server figures are optional; the reason is reported
        return None, f"metrics not reachable at {url}: {type(exc).__name__}: {str(exc)[:160]}", (t0, t0)


def completed_between(batches, lo_ns: int, hi_ns: int) -> int:
    """Successful requests whose end falls in (lo_ns, hi_ns], over (starts, ends, failed_mask) batches."""
    total = 0
    for _, ends, failed in batches:
        ok = ends if not failed.any() else ends[~failed]
        total += int(np.count_nonzero((ok > lo_ns) & (ok <= hi_ns)))
    return total


def measure(
    endpoint: Endpoint,
    payload: Payload,
    load: LoadSpec,
    metrics_url: str | None = None,
    metrics_headers: dict[str, str] | None = None,
    on_window: Callable[[Window], None] | None = None,
    engine: str | None = None,
) -> Measurement:
    """Run one load level until stable or out of windows. Raises when even one request cannot be made."""
    # One full request first: a server that cannot answer at all is an error, not "0 infer/s".
    transport = Transport(endpoint, payload, engine)
    transport.preflight()

    if load.rate:
        pool = ThreadPool(transport, load.max_in_flight,
                          Schedule(load.rate, load.arrival, load.seed, time.perf_counter_ns()))
    elif load.worker_processes() > 1:
        pool = ProcessPool(endpoint, payload, engine, load.concurrency, load.worker_processes())
    else:
        pool = ThreadPool(transport, load.concurrency)
    windows: list[Window] = []
    snapshots: list[server_metrics.Snapshot | None] = []
    scraped: list[tuple[int, int]] = []  # each scrape's HTTP call: (began, ended)
    # the last batches, kept to count completions between scrapes (the span of the last three windows
    # touches at most the last four batches and the one collected after the loop)
    batches: deque = deque(maxlen=5)
    note = ""
    pool.start()
    try:
        time.sleep(load.warmup_s)
        pool.collect()  # warm-up requests are never counted
        snap, note, at = _try_scrape(metrics_url, payload.model, metrics_headers)
        snapshots.append(snap)
        scraped.append(at)
        t_prev = time.perf_counter()
        cpu_prev = cpu_times()
        client_prev = pool.cpu_seconds()
        for index in range(load.max_windows):
            time.sleep(max(0.0, t_prev + load.window_s - time.perf_counter()))
            t_now = time.perf_counter()
            cpu_now = cpu_times()
            client_now = pool.cpu_seconds()
            client = None if client_now is None or client_prev is None else max(0.0, client_now - client_prev)
            batch = pool.collect()
            batches.append(batch)
            w = window_from_slices(index, t_now - t_prev, *batch, steal=steal_between(cpu_prev, cpu_now),
                                   client_cpu_s=client)
            cpu_prev, client_prev = cpu_now, client_now
            windows.append(w)
            if snapshots[0] is not None:
                snap, note, at = _try_scrape(metrics_url, payload.model, metrics_headers)
                snapshots.append(snap)
                scraped.append(at)
            if on_window:
                on_window(w)
            t_prev = t_now
            if len(windows) >= load.min_windows and stability(windows, load.tolerance).stable:
                break
        if snapshots[0] is not None:
            batches.append(pool.collect())  # what completed between the last collect and the last scrape
    finally:
        pool.stop()

    reported = windows[-3:]
    tput, latency, _ = merge(reported)
    server = span_completed = bounds = None
    if len(snapshots) > 3 and snapshots[-4] is not None and snapshots[-1] is not None:
        server = server_metrics.delta(snapshots[-4], snapshots[-1])
        (a0, a1), (b0, b1) = scraped[-4], scraped[-1]
        span_completed = completed_between(batches, (a0 + a1) // 2, (b0 + b1) // 2)  # each at its midpoint
        bounds = (completed_between(batches, a1, b0), completed_between(batches, a0, b1))
    return Measurement(
        endpoint=endpoint.describe(), model=payload.model, load=load, windows=tuple(windows),
        stability=stability(windows, load.tolerance), throughput=tput, latency=latency,
        errors=sum(w.errors for w in windows), error_samples=tuple(pool.errors()),
        delayed=pool.delayed(), server=server, server_note=note,
        input_shapes=payload.input_shapes, client_processes=pool.processes, server_span_completed=span_completed,
        server_span_bounds=bounds,
    )
