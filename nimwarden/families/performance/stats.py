"""Latency summaries and bootstrap confidence intervals.

Pure numpy; no I/O. Percentiles use the nearest-rank method that
perf_analyzer reports (the value of the request at rank ceil(p/100 * n)), so
our p50/p99 line up with its output instead of an interpolated value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def nearest_rank(sorted_values: np.ndarray, p: float) -> float:
    """The p-th percentile of already sorted values by nearest rank."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(p / 100.0 * n))
    return float(sorted_values[rank - 1])


@dataclass(frozen=True)
class LatencySummary:
    """Latency of a set of requests, in microseconds."""

    count: int
    avg_us: float
    p50_us: float
    p90_us: float
    p95_us: float
    p99_us: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 1) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def summarize_latency(latencies_us: Sequence[float] | np.ndarray) -> LatencySummary:
    values = np.sort(np.asarray(latencies_us, dtype=np.float64))
    if len(values) == 0:
        raise ValueError("no latencies to summarize")
    p = {q: nearest_rank(values, q) for q in PERCENTILES}
    return LatencySummary(len(values), float(values.mean()), p[50], p[90], p[95], p[99])


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": round(self.estimate, 4), "low": round(self.low, 4),
                "high": round(self.high, 4), "confidence": self.confidence}


def bootstrap_ratio(
    current: Sequence[float],
    baseline: Sequence[float],
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    confidence: float = 0.95,
    resamples: int = 4000,
    seed: int | None = 0,
) -> Interval:
    """Percentile-bootstrap interval of statistic(current) / statistic(baseline).

    Each group is resampled with replacement independently (the two runs are
    independent); ``statistic`` maps a (resamples, n) array to (resamples,)
    and defaults to the mean. A fixed seed makes a verdict reproducible from
    its evidence.
    """
    cur = np.asarray(current, dtype=np.float64)
    base = np.asarray(baseline, dtype=np.float64)
    if len(cur) < 2 or len(base) < 2:
        raise ValueError("a bootstrap needs at least two samples per group")
    if not 0.5 < confidence < 1:
        raise ValueError("confidence must lie between 0.5 and 1")
    stat = statistic or (lambda a: a.mean(axis=-1))
    point_base = float(stat(base[None, :])[0])
    if point_base <= 0:
        raise ValueError("baseline statistic must be positive")
    rng = np.random.default_rng(seed)
    cur_s = stat(cur[rng.integers(0, len(cur), (resamples, len(cur)))])
    base_s = stat(base[rng.integers(0, len(base), (resamples, len(base)))])
    ratios = cur_s / base_s
    alpha = (1 - confidence) / 2
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    return Interval(float(stat(cur[None, :])[0]) / point_base, float(low), float(high), confidence)


def spread(values: Sequence[float]) -> float:
    """max/min - 1 of positive values: perf_analyzer's stability measure."""
    lo, hi = min(values), max(values)
    if lo <= 0:
        return math.inf
    return hi / lo - 1.0
