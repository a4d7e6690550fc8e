"""Regression detector: is the current run slower than the baseline, beyond noise?

Decides with bootstrap confidence intervals over per-window samples, not a
single ratio: the throughput ratio (current/baseline) and the p99 ratio.

Each side is summarised by its *best half* of windows: the mean of the
highest half of per-window throughputs, the mean of the lowest half of
per-window p99s. Interference on a shared machine (another job, a noisy
neighbour, a GC pause) only ever slows a window down, so the best half
estimates what the server can do and ignores the windows something else
spoiled, while a real slowdown moves every window, best half included. A
baseline pools the windows of its last runs (nimwarden.families.performance.baseline), so
one disturbed baseline run cannot hide a regression either.

On a virtual machine the worst interference is invisible to the guest's load
average: the hypervisor giving the vCPUs to other guests (CPU *steal*). On the
project's 2-vCPU machine, windows with 20-50 % steal ran at 15-80 % of the
undisturbed throughput. Every window records the steal it saw
(nimwarden.families.performance.windows) and the judge (nimwarden.families.performance.judge.regression)
compares only windows under ``MAX_STEAL``. When fewer than three remain on
either side it keeps only the verdicts steal cannot fake — a drop larger
than the worst steal, or no drop against an unrobbed baseline — and
otherwise reports an error saying the machine was too busy. (Plain means
and medians were tried first: means let one disturbed baseline run mask a
10 % slowdown; medians of six windows gave intervals too coarse to detect
it. Figures in docs/benchmarks.md.)

- Throughput regresses when its interval lies entirely below "no change"
  (significant) *and* its point estimate is down by at least ``min_change``
  (relevant; half the profile's tolerance by default), so a change of the
  full tolerance (a "10 % slower" release) is caught reliably while a
  statistically visible but tiny drift, or a large but noisy one, pages
  nobody.
- p99 regresses only when even the interval's optimistic end is worse than
  the full tolerance. Tails are noisy on a shared machine (per-window p99 of
  a quiet, unchanged release moved by +-40 % on the 2-core project machine),
  so p99 catches tail blow-ups and throughput catches steady slowdowns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nimwarden.families.performance.stats import Interval, bootstrap_ratio

MIN_WINDOWS = 3


def best_high(a: np.ndarray) -> np.ndarray:
    """Mean of the highest half (ceil(n/2)) of each row: throughput as the undisturbed windows show it."""
    k = (a.shape[-1] + 1) // 2
    return np.sort(a, axis=-1)[..., -k:].mean(axis=-1)


def best_low(a: np.ndarray) -> np.ndarray:
    """Mean of the lowest half (ceil(n/2)) of each row: tail latency as the undisturbed windows show it."""
    k = (a.shape[-1] + 1) // 2
    return np.sort(a, axis=-1)[..., :k].mean(axis=-1)


@dataclass(frozen=True)
class Samples:
    """Per-window figures of one run (as stored in a baseline)."""

    throughput: tuple[float, ...]
    p99_us: tuple[float, ...]

    @classmethod
    def from_windows(cls, windows: Sequence, max_steal: float | None = None) -> Samples:
        """From loadgen Windows, or from the dicts a baseline file stores.

        With ``max_steal``, windows whose recorded CPU steal exceeds it are left out (a window
        without a steal figure is kept: not every platform has one).
        """
        tput, p99 = [], []
        for w in windows:
            steal = w.get("steal") if isinstance(w, dict) else w.steal
            if max_steal is not None and steal is not None and steal > max_steal:
                continue
            if isinstance(w, dict):
                tput.append(float(w["throughput"]))
                p99.append(float(w["p99_us"]))
            elif w.completed:
                tput.append(w.throughput)
                p99.append(w.latency.p99_us)
        return cls(tuple(tput), tuple(p99))


@dataclass(frozen=True)
class Comparison:
    throughput_ratio: Interval
    p99_ratio: Interval
    min_change: float
    throughput_regressed: bool
    p99_regressed: bool

    @property
    def regressed(self) -> bool:
        return self.throughput_regressed or self.p99_regressed

    def describe(self) -> str:
        t, p = self.throughput_ratio, self.p99_ratio
        conf = round(t.confidence * 100)
        return (f"throughput {_pct(t.estimate)} ({conf}% CI {_pct(t.low)} to {_pct(t.high)}), "
                f"p99 latency {_pct(p.estimate)} ({conf}% CI {_pct(p.low)} to {_pct(p.high)}) vs baseline")

    def evidence(self) -> dict:
        return {"throughput_ratio": self.throughput_ratio.as_dict(), "p99_ratio": self.p99_ratio.as_dict(),
                "min_change": self.min_change, "throughput_regressed": self.throughput_regressed,
                "p99_regressed": self.p99_regressed}


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def compare(current: Samples, baseline: Samples, tolerance: float = 0.10, *, min_change: float | None = None,
            confidence: float = 0.95, resamples: int = 4000, seed: int = 0) -> Comparison:
    """Bootstrap both ratios; raises ValueError when either run has fewer than 3 windows."""
    for name, s in (("current", current), ("baseline", baseline)):
        if len(s.throughput) < MIN_WINDOWS:
            raise ValueError(f"{name} run has {len(s.throughput)} windows; the detector needs {MIN_WINDOWS}")
    if not 0 < tolerance < 1:
        raise ValueError("tolerance must lie between 0 and 1")
    min_change = tolerance / 2 if min_change is None else min_change
    tput = bootstrap_ratio(current.throughput, baseline.throughput, best_high, confidence=confidence,
                           resamples=resamples, seed=seed)
    p99 = bootstrap_ratio(current.p99_us, baseline.p99_us, best_low, confidence=confidence, resamples=resamples,
                          seed=seed + 1)
    return Comparison(
        throughput_ratio=tput, p99_ratio=p99, min_change=min_change,
        throughput_regressed=tput.high < 1.0 and tput.estimate <= 1.0 - min_change,
        p99_regressed=p99.low > 1.0 + tolerance,
    )
