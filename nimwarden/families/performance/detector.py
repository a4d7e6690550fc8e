"""Regression detector: is the current run slower than the baseline, beyond noise?

The judge's statistic (``judge_windows``, issue 18) compares *capacities*: a run's capacity is the
mean of the best half of its per-window throughputs under ``MAX_STEAL`` CPU steal. Interference on a
shared machine (another job, a noisy neighbour, the hypervisor) only ever slows a window down, so the
best windows estimate what the server can do, while a real slowdown moves every window, best ones
included. A baseline pools its last runs (nimwarden.families.performance.baseline); each run gives one
capacity and the baseline's is their median, so one disturbed run cannot make the baseline slow.

- **slower** (fail): the capacity is down by at least ``min_change`` (half the tolerance by default)
  against the baseline's median, the run is undisturbed (see below) and the drop is outside the run's
  own noise (the bootstrap interval of the ratio lies below 1); or an undisturbed run's p99 is worse
  beyond ``P99_TOLERANCE`` (25 %, or the tolerance if larger) even at its interval's optimistic end
  (tails swing by tens of per cent on a shared machine: p99 catches blow-ups, throughput steady
  slowdowns).
- **not slower** (pass): the capacity is within ``min_change`` of the baseline's. A disturbed run that
  is not slower passes: interference can fake a slowdown, never hide one.
- **cannot judge** (error, with the reason), never a guess:
  - the baseline's own runs differ by more than the tolerance (the machine's speed moved between them:
    on the project's VM by up to 30 % with no steal to show for it; then neither verdict would be
    more than a guess), or the run is faster than every baseline run by more than the tolerance (the
    machine is not the one the baseline describes, and a faster machine hides a slowdown);
  - a run that reads slower, or whose p99 blew up, was disturbed: fewer than two thirds (``AGREE``) of
    its clean windows came within the tolerance of its second-best window (a robbed run's windows
    scatter downwards);
  - fewer than three windows of the run, or of every baseline run, were under the steal limit, unless
    the drop is larger than twice the worst steal plus the tolerance (steal is the average over the
    machine's CPUs, and a server bound to one of two loses up to twice it): then it fails.

The rule was chosen on recorded runs against the statistics the field uses (Mann-Whitney U as Google
Benchmark's compare.py, Fuchsia perfcompare's intervals over launches, E-Divisive change points as
Apache Otava, adjacent and interleaved A/B), all applied to the same recordings by
benchmarks/perf_statistics.py: it was the only one without wrong verdicts, quiet or under noise
(figures in docs/benchmarks.md). ``compare`` (best-half bootstrap intervals of the ratio, the
detector before issue 18) stays as a library function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nimwarden.families.performance.stats import Interval, bootstrap_ratio

MIN_WINDOWS = 3
MAX_STEAL = 0.05  # as windows.MAX_STEAL (not imported: this module stays free of the generator)
AGREE = 2 / 3  # share of a run's clean windows that must lie within the tolerance of its second-best one
P99_TOLERANCE = 0.25  # p99 pages only when even its interval's optimistic end is this much worse


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


# ---- the judge's statistic (issue 18): per-run capacity against the pooled baseline's runs


def _steal(w) -> float | None:
    steal = w.get("steal") if isinstance(w, dict) else w.steal
    return None if steal is None else float(steal)


@dataclass(frozen=True)
class RunCapacity:
    """What one run's windows say about the server: its capacity (mean of the best half of the windows
    under ``MAX_STEAL``) and whether enough windows agree with the best ones to trust it."""

    windows: int
    clean: tuple[float, ...]  # throughputs of the windows under the steal limit
    agreeing: int  # clean windows within the tolerance of the run's second-best window
    capacity: float | None
    worst_steal: float
    all_capacity: float | None  # best half of every window, steal or not

    @property
    def undisturbed(self) -> bool:
        return self.capacity is not None and self.agreeing >= AGREE * len(self.clean)

    def as_dict(self) -> dict:
        return {"windows": self.windows, "clean_windows": len(self.clean), "agreeing_windows": self.agreeing,
                "capacity": None if self.capacity is None else round(self.capacity, 3),
                "worst_steal": round(self.worst_steal, 3), "undisturbed": self.undisturbed}


def _best_half(values) -> float:
    v = sorted(values)
    k = (len(v) + 1) // 2
    return sum(v[-k:]) / k


def run_capacity(windows: Sequence, tolerance: float, max_steal: float = MAX_STEAL) -> RunCapacity:
    """One run's capacity; windows are loadgen Windows or the dicts recordings and baselines store."""
    tput, clean = [], []
    worst = 0.0
    for w in windows:
        t = float(w["throughput"]) if isinstance(w, dict) else (w.throughput if w.completed else None)
        if t is None:
            continue
        steal = _steal(w)
        worst = max(worst, steal or 0.0)
        tput.append(t)
        if steal is None or steal <= max_steal:
            clean.append(t)
    cap = _best_half(clean) if len(clean) >= MIN_WINDOWS else None
    agreeing = 0
    if cap is not None:
        ref = sorted(clean)[-2]  # the second best: one lucky window does not set the bar
        agreeing = sum(t >= ref * (1 - tolerance) for t in clean)
    return RunCapacity(len(tput), tuple(clean), agreeing, cap, worst, _best_half(tput) if len(tput) >= MIN_WINDOWS else None)


@dataclass(frozen=True)
class Verdict:
    """The detector's answer on one run: ``fail`` (slower), ``pass`` or ``error`` (cannot judge, and why)."""

    status: str
    reason: str
    evidence: dict


def judge_windows(current: Sequence, baseline_runs: Sequence[Sequence], tolerance: float, *,
                  min_change: float | None = None, p99: bool = True, seed: int = 0) -> Verdict:
    """Is the run of ``current`` windows slower than the baseline's runs (each a sequence of windows)?

    Windows are loadgen Windows or dicts with ``throughput``, ``p99_us`` and optionally ``steal``. See
    the module docstring for the rule and docs/benchmarks.md for the figures it was chosen by.
    """
    if not 0 < tolerance < 1:
        raise ValueError("tolerance must lie between 0 and 1")
    min_change = tolerance / 2 if min_change is None else min_change
    cur = run_capacity(current, tolerance)
    runs = [run_capacity(r, tolerance) for r in baseline_runs if len(r)]
    usable = [r for r in runs if r.capacity is not None]
    ev: dict = {"tolerance": tolerance, "min_change": min_change, "current": cur.as_dict(),
                "baseline_runs": [r.as_dict() for r in runs]}
    if not runs:
        return Verdict("error", "the baseline holds no windows", ev)
    if not usable:
        worst = max(r.worst_steal for r in runs)
        return Verdict("error", f"too few windows of the baseline ran with CPU steal under {MAX_STEAL:.0%} (none of its "
                       f"{len(runs)} run(s) has {MIN_WINDOWS}; worst {worst:.0%}): a robbed baseline cannot vouch for a "
                       "run; record it again when the machine is quieter", ev)
    caps = sorted(r.capacity for r in usable)
    base = caps[len(caps) // 2] if len(caps) % 2 else (caps[len(caps) // 2 - 1] + caps[len(caps) // 2]) / 2
    lo, hi, spread = caps[0], caps[-1], caps[-1] / caps[0] - 1
    pooled = [t for r in usable for t in r.clean]
    ev.update(baseline_capacity=round(base, 3), baseline_slowest_run=round(lo, 3), baseline_spread=round(spread, 4))
    if cur.capacity is None and spread <= tolerance:
        # Too few windows under the steal limit. Steal only slows a run: what it cannot fake still stands.
        ratio = (cur.all_capacity or 0.0) / base
        ev["throughput_ratio"] = round(ratio, 4)
        if ratio >= 1 - min_change:
            return Verdict("pass", f"not slower than the baseline even with {cur.worst_steal:.0%} CPU steal: "
                           f"throughput {_pct(ratio)} (capacity {cur.all_capacity:.1f}/s vs {base:.1f}/s)", ev)
        # Steal is the machine's average over its CPUs; a server bound to one of two loses up to twice that.
        if 1 - ratio > 2 * cur.worst_steal + tolerance and (cur.all_capacity or 0.0) < lo:
            return Verdict("fail", f"throughput {_pct(ratio)} (capacity {cur.all_capacity:.1f}/s vs {base:.1f}/s): more "
                           f"than the {cur.worst_steal:.0%} CPU steal this run saw can explain (twice it, plus the "
                           "tolerance)", ev)
        return Verdict("error", f"only {len(cur.clean)} of {cur.windows} windows of this run ran with CPU steal under "
                       f"{MAX_STEAL:.0%} (worst {cur.worst_steal:.0%}): the machine was too busy to judge a "
                       f"{tolerance:.0%} change (throughput {_pct(ratio)}); run again when it is quieter", ev)
    if cur.capacity is None:
        return Verdict("error", f"only {len(cur.clean)} of {cur.windows} windows of this run ran with CPU steal under "
                       f"{MAX_STEAL:.0%} (worst {cur.worst_steal:.0%}) and the baseline's own runs differ by {spread:.1%}: "
                       "the machine was too busy to judge; run again when it is quieter", ev)
    ratio = cur.capacity / base
    ci = bootstrap_ratio(cur.clean, pooled, best_high, resamples=2000, seed=seed)
    ev["throughput_ratio"] = ci.as_dict()
    what = (f"throughput {_pct(ratio)} (95% CI {_pct(ci.low)} to {_pct(ci.high)}; capacity {cur.capacity:.1f}/s vs "
            f"{base:.1f}/s, the median of {len(usable)} baseline run(s), {lo:.1f}-{hi:.1f}/s)")
    p99_note = p99_bad = ""
    if p99:
        cur_p99 = [float(w["p99_us"] if isinstance(w, dict) else w.latency.p99_us) for w in current
                   if (_steal(w) or 0.0) <= MAX_STEAL and (isinstance(w, dict) or w.completed)]
        base_p99 = [float(w["p99_us"]) if isinstance(w, dict) else w.latency.p99_us
                    for r in baseline_runs for w in r if (_steal(w) or 0.0) <= MAX_STEAL]
        if len(cur_p99) >= MIN_WINDOWS and len(base_p99) >= MIN_WINDOWS:
            p = bootstrap_ratio(cur_p99, base_p99, best_low, resamples=2000, seed=seed + 1)
            ev["p99_ratio"] = p.as_dict()
            p99_note = f", p99 latency {_pct(p.estimate)}"
            if p.low > 1 + max(tolerance, P99_TOLERANCE):
                p99_bad = (f"p99 latency {_pct(p.estimate)} (95% CI {_pct(p.low)} to {_pct(p.high)}) vs baseline, beyond "
                           f"{max(tolerance, P99_TOLERANCE):.0%}")
    # The baseline is only a bar when its own runs agree: runs that differ by more than the change to
    # judge say the machine's speed moved between them (on the project VM by up to 30 % with no steal to
    # show for it), and then neither a pass nor a fail would be more than a guess.
    if spread > tolerance:
        return Verdict("error", f"the baseline's own runs differ by {spread:.1%}, more than the {tolerance:.0%} change to "
                       f"judge: this machine's speed moved between them, so it cannot judge a {tolerance:.0%} change "
                       f"({what}); record the baseline again when the machine is quieter", ev)
    if cur.capacity > hi * (1 + tolerance):
        return Verdict("error", f"faster than every baseline run by more than {tolerance:.0%} ({what}): the machine is not "
                       "the one the baseline describes, and a faster machine can hide a slowdown; if the release "
                       "really improved, record the baseline again", ev)
    if p99_bad:
        # Interference blows tails up as readily as a slow release: only an undisturbed run's stands.
        if cur.undisturbed:
            return Verdict("fail", f"{p99_bad}; {what}", ev)
        return Verdict("error", f"{p99_bad}, but only {cur.agreeing} of {len(cur.clean)} windows of this run came within "
                       f"{tolerance:.0%} of its second-best one: something else slowed it, so its tail cannot be judged; "
                       f"run again when the machine is quieter ({what})", ev)
    if ratio >= 1 - min_change:
        return Verdict("pass", f"not slower than the baseline by {min_change:.1%} or more: {what}{p99_note}", ev)
    if not cur.undisturbed:
        return Verdict("error", f"only {cur.agreeing} of {len(cur.clean)} windows of this run came within {tolerance:.0%} of "
                       f"its second-best one: something else slowed it (interference only slows windows down), so its "
                       f"{_pct(ratio)} cannot be judged; run again when the machine is quieter ({what})", ev)
    if ci.high >= 1.0:
        return Verdict("error", f"the drop is within this run's own noise (its interval reaches no change): cannot judge "
                       f"({what}); run again when the machine is quieter", ev)
    return Verdict("fail", f"regressed: {what}{p99_note}", ev)
