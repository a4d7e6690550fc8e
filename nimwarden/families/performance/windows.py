"""Measurement windows and perf_analyzer's stability rule (docs/facts.md).

A window counts the requests that *completed* inside it. A measurement is
stable when, over the last three windows, max/min - 1 of both throughput
and average latency is within the tolerance; perf_analyzer then reports the
merged last three windows, and so do we.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nimwarden.families.performance.stats import LatencySummary, spread, summarize_latency

STABLE_WINDOWS = 3
MAX_STEAL = 0.05  # a window in which the hypervisor took more of this machine's CPU is "robbed"


@dataclass(frozen=True)
class Window:
    """One measurement window: how many requests completed, how fast, how many failed."""

    index: int
    duration_s: float
    completed: int  # successful requests that ended in the window
    errors: int  # failed requests that ended in the window
    latencies_us: np.ndarray = field(repr=False, compare=False)
    # Share of this machine's CPU time the hypervisor gave to others during the window (/proc/stat
    # "steal"); None where it cannot be read. A window that lost CPU measures the host, not the server.
    steal: float | None = None
    # CPU seconds the load generator itself used during the window (perf_analyzer's "client overhead"):
    # a generator that is busy all the time measures itself, not the server. None where unreadable.
    client_cpu_s: float | None = None

    @property
    def throughput(self) -> float:
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def latency(self) -> LatencySummary | None:
        return summarize_latency(self.latencies_us) if self.completed else None

    def as_dict(self) -> dict:
        lat = self.latency
        return {"index": self.index, "duration_s": round(self.duration_s, 3), "completed": self.completed,
                "errors": self.errors, "throughput": round(self.throughput, 2),
                "avg_us": round(lat.avg_us, 1) if lat else None, "p99_us": round(lat.p99_us, 1) if lat else None,
                "steal": None if self.steal is None else round(self.steal, 3),
                "client_cpu_s": None if self.client_cpu_s is None else round(self.client_cpu_s, 4)}


def cpu_times() -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs from /proc/stat, or None where there is no such file."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    values = [int(v) for v in fields[1:]]
    return values[7], sum(values[:8])  # user nice system idle iowait irq softirq steal (guest is in user)


def steal_between(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return max(0.0, (after[0] - before[0]) / (after[1] - before[1]))


def window_from_slices(index: int, duration_s: float, starts_ns: Sequence[int], ends_ns: Sequence[int],
                       failed_mask: np.ndarray | None = None, steal: float | None = None,
                       client_cpu_s: float | None = None) -> Window:
    """Build a window from matching start/end timestamps; failed requests count as errors, not latency."""
    starts = np.asarray(starts_ns, dtype=np.int64)
    ends = np.asarray(ends_ns, dtype=np.int64)
    lat = (ends - starts) / 1000.0
    if failed_mask is not None and failed_mask.any():
        errors = int(failed_mask.sum())
        lat = lat[~failed_mask]
    else:
        errors = 0
    return Window(index, duration_s, int(len(lat)), errors, lat, steal, client_cpu_s)


# A generator process busier than this share of its window is the bottleneck (one Python process
# drives its requests on one core at most: the GIL).
CLIENT_BOUND = 0.9


@dataclass(frozen=True)
class ClientCost:
    """What the load generator itself cost over some windows: CPU per 1,000 requests, and the share of
    the time its processes were busy (1.0 = every process used a full core throughout)."""

    cpu_ms_per_1000: float | None
    busy_share: float | None
    processes: int

    @property
    def bottleneck(self) -> bool:
        return self.busy_share is not None and self.busy_share >= CLIENT_BOUND

    def as_dict(self) -> dict:
        return {"cpu_ms_per_1000_requests": None if self.cpu_ms_per_1000 is None else round(self.cpu_ms_per_1000, 2),
                "busy_share": None if self.busy_share is None else round(self.busy_share, 3),
                "processes": self.processes, "bottleneck": self.bottleneck}


def client_cost(windows: Sequence[Window], processes: int) -> ClientCost:
    used = [w for w in windows if w.client_cpu_s is not None]
    if not used or len(used) != len(windows):
        return ClientCost(None, None, processes)
    cpu = sum(w.client_cpu_s for w in used)  # type: ignore[misc]
    requests = sum(w.completed + w.errors for w in used)
    wall = sum(w.duration_s for w in used)
    return ClientCost(cpu * 1e6 / requests if requests else None, cpu / (wall * max(1, processes)) if wall > 0 else None, processes)


@dataclass(frozen=True)
class Stability:
    stable: bool
    throughput_spread: float
    latency_spread: float
    windows_considered: int

    def as_dict(self) -> dict:
        return {"stable": self.stable, "throughput_spread": round(self.throughput_spread, 4),
                "latency_spread": round(self.latency_spread, 4), "windows_considered": self.windows_considered}


def stability(windows: Sequence[Window], tolerance: float) -> Stability:
    """perf_analyzer's rule over the last three windows; fewer windows, or an empty one, is unstable."""
    last = list(windows)[-STABLE_WINDOWS:]
    if len(last) < STABLE_WINDOWS or any(w.completed == 0 for w in last):
        return Stability(False, float("inf"), float("inf"), len(last))
    tput = spread([w.throughput for w in last])
    lat = spread([float(w.latencies_us.mean()) for w in last])
    return Stability(tput <= tolerance and lat <= tolerance, tput, lat, len(last))


def merge(windows: Sequence[Window]) -> tuple[float, LatencySummary | None, int]:
    """Throughput, latency and error count of several windows taken together."""
    duration = sum(w.duration_s for w in windows)
    completed = sum(w.completed for w in windows)
    errors = sum(w.errors for w in windows)
    lat = np.concatenate([w.latencies_us for w in windows]) if windows else np.array([])
    return (completed / duration if duration > 0 else 0.0), (summarize_latency(lat) if len(lat) else None), errors
