"""Load workers: threads in this process, or several processes each running threads.

A worker appends start and end timestamps (``time.perf_counter_ns``, the
system-wide monotonic clock on Linux, so processes agree) to its own lists;
``collect()`` hands over everything completed since the previous call, which
is how the measuring loop cuts windows without touching the hot loop.

Why processes: on a small, shared machine a thread holding the GIL can be
descheduled by the OS, stalling every other worker of the process. On the
2-core project machine, under its neighbours' load, two processes out-ran
one at concurrency 16 in one accuracy run (1.16 vs 0.93 of perf_analyzer's
throughput) and tied in another; at concurrency 4 one process did as well or
better, hence LoadSpec.worker_processes' threshold.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nimwarden.families.performance.inputs import Payload
from nimwarden.families.performance.transport import Endpoint, Transport

MAX_ERROR_SAMPLES = 5


class Recorder:
    """One worker's timestamps; only that worker appends, the measurer only reads lengths and slices."""

    __slots__ = ("starts", "ends", "failed", "errors", "delayed")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.failed: list[int] = []  # indices into ends
        self.errors: list[str] = []
        self.delayed = 0


def closed_loop(send: Callable[[], bytes], rec: Recorder, stop: threading.Event) -> None:
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


class Schedule:
    """Send times of an open-loop run: constant spacing or Poisson arrivals, shared by all senders."""

    def __init__(self, rate: float, arrival: str, seed: int, t0_ns: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._rate, self._arrival, self._next_ns = rate, arrival, float(t0_ns)
        self._lock = threading.Lock()

    def next_due_ns(self) -> int:
        with self._lock:
            if self._arrival == "poisson":
                self._next_ns += self._rng.exponential(1e9 / self._rate)
            else:
                self._next_ns = self._next_ns + 1e9 / self._rate
            return int(self._next_ns)


def open_loop(send: Callable[[], bytes], rec: Recorder, stop: threading.Event, schedule: Schedule) -> None:
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


Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # starts_ns, ends_ns, failed mask


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process from /proc/<pid>/stat, None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class ThreadPool:
    """``workers`` threads on one transport: closed loop, or open loop when ``schedule`` is given."""

    processes = 1  # the load generator's threads share this process (and its GIL)

    def cpu_seconds(self) -> float | None:
        """CPU the generator has used so far (this process: the measuring loop only waits meanwhile)."""
        return time.process_time()

    def __init__(self, transport: Transport, workers: int, schedule: Schedule | None = None) -> None:
        self.recs = [Recorder() for _ in range(workers)]
        self._senders = [transport.sender() for _ in range(workers)]
        self._stop = threading.Event()
        self._marks = [0] * workers
        self._threads = [
            threading.Thread(target=open_loop if schedule else closed_loop,
                             args=(s, r, self._stop, schedule) if schedule else (s, r, self._stop),
                             name=f"nimwarden-load-{i}", daemon=True)
            for i, ((s, _), r) in enumerate(zip(self._senders, self.recs))
        ]
        self._join_s = transport.endpoint.timeout_s + 1

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def collect(self) -> Batch:
        starts: list[int] = []
        ends: list[int] = []
        failed: list[int] = []
        now = [len(r.ends) for r in self.recs]
        for rec, lo, hi in zip(self.recs, self._marks, now):
            base = len(ends)
            starts.extend(rec.starts[lo:hi])
            ends.extend(rec.ends[lo:hi])
            failed.extend(base + i - lo for i in rec.failed if lo <= i < hi)
        self._marks = now
        mask = np.zeros(len(ends), dtype=bool)
        if failed:
            mask[failed] = True
        return np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64), mask

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self._join_s)
        for _, close in self._senders:
            close()

    def errors(self) -> list[str]:
        return sorted({e for r in self.recs for e in r.errors})[:MAX_ERROR_SAMPLES]

    def delayed(self) -> int:
        return sum(r.delayed for r in self.recs)


def _child(conn, endpoint: Endpoint, payload: Payload, engine: str | None, workers: int) -> None:
    """A worker process: its own transport and threads, driven over a pipe by the parent."""
    try:
        transport = Transport(endpoint, payload, engine)
        transport.preflight()
        pool = ThreadPool(transport, workers)
        pool.start()
        conn.send(("ready", None))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        cmd = conn.recv()
        if cmd == "collect":
            conn.send(pool.collect())
        else:
            pool.stop()
            conn.send((pool.collect(), pool.errors(), pool.delayed()))
            return


class ProcessPool:
    """``workers`` closed-loop workers spread over ``processes`` processes (spawned, not forked)."""

    def __init__(self, endpoint: Endpoint, payload: Payload, engine: str | None, workers: int, processes: int):
        ctx = multiprocessing.get_context("spawn")
        shares = [workers // processes + (1 if i < workers % processes else 0) for i in range(processes)]
        self._conns, self._procs = [], []
        for share in (s for s in shares if s):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_child, args=(child, endpoint, payload, engine, share), daemon=True,
                               name="nimwarden-load-proc")
            self._conns.append(parent)
            self._procs.append(proc)
        self._errors: list[str] = []
        self._delayed = 0
        self._timeout_s = endpoint.timeout_s + 30

    def start(self) -> None:
        for p in self._procs:
            p.start()
        for conn in self._conns:
            if not conn.poll(self._timeout_s):
                self.stop()
                raise RuntimeError("a load worker process did not start")
            kind, detail = conn.recv()
            if kind != "ready":
                self.stop()
                raise RuntimeError(f"a load worker process failed: {detail}")

    @property
    def processes(self) -> int:
        return len(self._procs)

    def cpu_seconds(self) -> float | None:
        """CPU the worker processes have used so far (None when a process cannot be read)."""
        used = [process_cpu_seconds(p.pid) for p in self._procs if p.pid is not None]
        return None if not used or any(u is None for u in used) else float(sum(used))  # type: ignore[arg-type]

    def collect(self) -> Batch:
        for conn in self._conns:
            conn.send("collect")
        parts = [conn.recv() for conn in self._conns]
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))  # type: ignore[return-value]

    def stop(self) -> None:
        for conn, proc in zip(self._conns, self._procs):
            try:
                if proc.is_alive():
                    conn.send("stop")
                    if conn.poll(self._timeout_s):
                        _, errors, delayed = conn.recv()
                        self._errors.extend(errors)
                        self._delayed += delayed
            except (OSError, EOFError):
                pass  # the process is already gone; join below
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()

    def errors(self) -> list[str]:
        return sorted(set(self._errors))[:MAX_ERROR_SAMPLES]

    def delayed(self) -> int:
        return self._delayed
