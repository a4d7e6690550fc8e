"""The load generator: closed-loop (fixed concurrency) and open-loop (fixed rate) modes.

Workers are threads, each with its own connection, sending one pre-encoded
request with a blocking call (the GIL is released while it waits); each
worker appends start and end timestamps to its own lists, and the measuring
thread slices those lists at window boundaries, so the hot loop does nothing
but time, send and append. Windows and stability follow perf_analyzer
(windows.py); warm-up requests are never counted.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nimwarden.perf import metrics as server_metrics
from nimwarden.perf.inputs import Payload
from nimwarden.perf.stats import LatencySummary
from nimwarden.perf.transport import Endpoint, Transport
from nimwarden.perf.windows import Stability, Window, merge, stability, window_from_slices

MAX_ERROR_SAMPLES = 5


@dataclass(frozen=True)
class LoadSpec:
    """How to load one model. ``rate`` set means open loop, otherwise ``concurrency`` in flight."""

    concurrency: int = 1
    rate: float | None = None  # requests per second (open loop)
    arrival: str = "constant"  # or "poisson" (open loop only)
    max_in_flight: int = 32  # open loop: sender threads, i.e. the most requests outstanding
    window_s: float = 5.0
    max_windows: int = 10
    tolerance: float = 0.10
    warmup_s: float = 2.0
    min_windows: int = 3  # measure at least this many windows even when stable earlier
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rate is None and self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.arrival not in ("constant", "poisson"):
            raise ValueError("arrival must be constant or poisson")
        if self.window_s <= 0 or self.max_windows < 3 or self.min_windows < 3:
            raise ValueError("need a positive window and at least 3 windows")

    @property
    def mode(self) -> str:
        return f"rate {self.rate:g}/s {self.arrival}" if self.rate else f"concurrency {self.concurrency}"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


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

    @property
    def stable(self) -> bool:
        return self.stability.stable

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
        }


class _Recorder:
    """One worker's timestamps; only that worker appends, the measurer only reads lengths and slices."""

    __slots__ = ("starts", "ends", "failed", "errors", "delayed")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.failed: list[int] = []  # indices into ends
        self.errors: list[str] = []
        self.delayed = 0


def _closed_loop(send: Callable[[], bytes], rec: _Recorder, stop: threading.Event) -> None:
    clock = time.perf_counter_ns
    starts, ends, failed = rec.starts.append, rec.ends.append, rec.failed.append
    while not stop.is_set():
        t0 = clock()
        try:
            send()
            t1 = clock()
        except Exception as exc:  # noqa: BLE001 - counted as a failed request, reported as such
            t1 = clock()
            failed(len(rec.ends))
            if len(rec.errors) < MAX_ERROR_SAMPLES:
                rec.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            stop.wait(0.005)  # a refusing server must not turn the client into a busy loop
        starts(t0)
        ends(t1)


class _Schedule:
    """Send times of an open-loop run: constant spacing or Poisson arrivals, shared by all senders."""

    def __init__(self, rate: float, arrival: str, seed: int, t0_ns: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._rate, self._arrival, self._next_ns = rate, arrival, float(t0_ns)
        self._lock = threading.Lock()
        self._count = itertools.count()

    def next_due_ns(self) -> int:
        with self._lock:
            if self._arrival == "poisson":
                self._next_ns += self._rng.exponential(1e9 / self._rate)
            else:
                self._next_ns = self._next_ns + 1e9 / self._rate
            return int(self._next_ns)


def _open_loop(send: Callable[[], bytes], rec: _Recorder, stop: threading.Event, schedule: _Schedule) -> None:
    clock = time.perf_counter_ns
    while not stop.is_set():
        due = schedule.next_due_ns()
        wait = due - clock()
        if wait > 0:
            if stop.wait(wait / 1e9):
                return
        elif wait < -1_000_000:
            rec.delayed += 1  # every sender was busy: the client could not keep the rate
        t0 = clock()
        try:
            send()
        except Exception as exc:  # noqa: BLE001 - counted as a failed request
            rec.failed.append(len(rec.ends))
            if len(rec.errors) < MAX_ERROR_SAMPLES:
                rec.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        rec.starts.append(t0)
        rec.ends.append(clock())


def _window(index: int, duration_s: float, recs: list[_Recorder], a: list[int], b: list[int]) -> Window:
    starts: list[int] = []
    ends: list[int] = []
    failed_idx: list[int] = []
    for rec, lo, hi in zip(recs, a, b):
        base = len(ends)
        starts.extend(rec.starts[lo:hi])
        ends.extend(rec.ends[lo:hi])
        failed_idx.extend(base + i - lo for i in rec.failed if lo <= i < hi)
    mask = np.zeros(len(ends), dtype=bool)
    if failed_idx:
        mask[failed_idx] = True
    return window_from_slices(index, duration_s, starts, ends, mask)


def _try_scrape(url: str | None, model: str, headers) -> tuple[server_metrics.Snapshot | None, str]:
    if not url:
        return None, "no metrics endpoint configured for this deployment"
    try:
        return server_metrics.scrape(url, model, headers=headers), f"from {url}"
    except Exception as exc:  # noqa: BLE001 - server figures are optional; the reason is reported
        return None, f"metrics not reachable at {url}: {type(exc).__name__}: {str(exc)[:160]}"


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

    workers = load.max_in_flight if load.rate else load.concurrency
    recs = [_Recorder() for _ in range(workers)]
    senders = [transport.sender() for _ in range(workers)]
    stop = threading.Event()
    schedule = _Schedule(load.rate, load.arrival, load.seed, time.perf_counter_ns()) if load.rate else None
    threads = [
        threading.Thread(
            target=_open_loop if schedule else _closed_loop,
            args=(s, r, stop, schedule) if schedule else (s, r, stop),
            name=f"nimwarden-load-{i}", daemon=True,
        )
        for i, ((s, _), r) in enumerate(zip(senders, recs))
    ]
    windows: list[Window] = []
    snapshots: list[server_metrics.Snapshot | None] = []
    note = ""
    try:
        for t in threads:
            t.start()
        time.sleep(load.warmup_s)
        marks = [len(r.ends) for r in recs]
        snap, note = _try_scrape(metrics_url, payload.model, metrics_headers)
        snapshots.append(snap)
        t_prev = time.perf_counter()
        for index in range(load.max_windows):
            time.sleep(max(0.0, t_prev + load.window_s - time.perf_counter()))
            now_marks = [len(r.ends) for r in recs]
            t_now = time.perf_counter()
            w = _window(index, t_now - t_prev, recs, marks, now_marks)
            windows.append(w)
            if snapshots[0] is not None:
                snap, note = _try_scrape(metrics_url, payload.model, metrics_headers)
                snapshots.append(snap)
            if on_window:
                on_window(w)
            marks, t_prev = now_marks, t_now
            if len(windows) >= load.min_windows and stability(windows, load.tolerance).stable:
                break
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=endpoint.timeout_s + 1)
        for _, close_sender in senders:
            close_sender()

    reported = windows[-3:]
    tput, latency, _ = merge(reported)
    server = None
    if len(snapshots) > 3 and snapshots[-4] is not None and snapshots[-1] is not None:
        server = server_metrics.delta(snapshots[-4], snapshots[-1])
    errors = sorted({e for r in recs for e in r.errors})[:MAX_ERROR_SAMPLES]
    return Measurement(
        endpoint=endpoint.describe(), model=payload.model, load=load, windows=tuple(windows),
        stability=stability(windows, load.tolerance), throughput=tput, latency=latency,
        errors=sum(w.errors for w in windows), error_samples=tuple(errors),
        delayed=sum(r.delayed for r in recs), server=server, server_note=note,
        input_shapes=payload.input_shapes,
    )
