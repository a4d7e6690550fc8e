#!/usr/bin/env python3
"""Every candidate statistic of the regression detector on the same recorded runs (JSON lines).

Reads what ``benchmarks/perf_detector.py --record FILE`` wrote. Each trial has an "unchanged" run of
release A and a "slower" run of release B; both are judged against the pool a nightly baseline would
hold at that point: the last ``--pool`` runs of A measured before the trial's unchanged run (seeded by
the recording's baseline runs, then growing with each trial's unchanged run, the oldest dropping, as
``--perf-update-baseline`` keeps them). The same pool, the same candidates, for every statistic:

- ``suite`` — nimwarden's own judge statistic (``detector.judge_windows``, what PERF-REGRESSION runs).
- ``best-half-bootstrap`` — the detector before issue 18: best-half means, bootstrap CI of the ratio,
  min change = tolerance / 2, windows over 5 % CPU steal dropped, an unstable run (perf_analyzer's rule
  at the tolerance) is an error.
- ``mann-whitney`` — Google Benchmark's compare.py: two-sided Mann-Whitney U over the windows, alpha 0.05,
  slower when significant and the median is down; ``mann-whitney+relevance`` also needs the median
  down by tolerance / 2.
- ``fuchsia-ci`` — Fuchsia perfcompare: a 95 % t-interval of the mean over launches (the pool's runs)
  and of the current run (its windows: a nightly has one launch); slower when the intervals do not overlap.
- ``e-divisive`` — Apache Otava's change-point method: E-Divisive (energy statistic, permutation test,
  p < 0.05) on the series pool windows + current windows; slower when the change point it finds sits at
  the current run (within two windows) and the level after it is lower.
- ``adjacent-a-b`` — interleaving at run granularity: the current run against the one run of A measured
  just before it, Welch t-test one-sided p < 0.05 and mean down by tolerance / 2 (needs the old release
  running beside the new one).

One JSON line per statistic and recording: trials, detected, missed, false alarms, refusals (error:
"cannot judge") on each release, wrong verdicts (a pass of the slower release or a fail of the unchanged
one) and the seconds per run.

    .venv/bin/python benchmarks/perf_statistics.py /tmp/quiet.jsonl /tmp/noise.jsonl [--pool 5] [--tolerance 0.05]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nimwarden.families.performance import detector  # noqa: E402
from nimwarden.families.performance.stats import bootstrap_ratio  # noqa: E402

MAX_STEAL = 0.05


def tput(windows) -> np.ndarray:
    return np.array([float(w["throughput"]) for w in windows])


def _norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def _t_quantile(p: float, df: int) -> float:
    """Student t quantile by bisection on the regularised incomplete beta (no scipy here)."""
    def cdf(t: float) -> float:
        x = df / (df + t * t)
        ib = _betainc(df / 2, 0.5, x)
        return 1 - 0.5 * ib if t > 0 else 0.5 * ib
    lo, hi = -50.0, 50.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    if x > (a + 1) / (a + b + 2):
        return 1 - _betainc(b, a, 1 - x)
    # continued fraction (Numerical Recipes betacf)
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > 1e-300 else 1e-300)
    h = d
    for m in range(1, 200):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1 + aa / c if abs(1 + aa / c) > 1e-300 else 1e-300
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1 + aa / c if abs(1 + aa / c) > 1e-300 else 1e-300
        de = d * c
        h *= de
        if abs(de - 1) < 1e-12:
            break
    return math.exp(lbeta) * h / a


def _t_sf(t: float, df: float) -> float:
    x = df / (df + t * t)
    half = 0.5 * _betainc(df / 2, 0.5, x)
    return half if t > 0 else 1 - half


# ---- the statistics: f(run, pool_runs, tolerance, previous_a_run) -> "fail" | "pass" | "error"

def st_suite(run, pool, tol, prev):
    v = detector.judge_windows(run["windows"], [r["windows"] for r in pool], tol)
    return v.status


def st_best_half_bootstrap(run, pool, tol, prev):
    if not run["stable"]:
        return "error"
    cur_w = run["windows"]
    base_w = [w for r in pool for w in r["windows"]]

    def clean(ws):
        return [w for w in ws if (w.get("steal") or 0) <= MAX_STEAL]
    cc, cb = clean(cur_w), clean(base_w)
    robbed = len(cc) < 3 or len(cb) < 3
    c, b = (cur_w, base_w) if robbed else (cc, cb)
    t = bootstrap_ratio(tput(c), tput(b), detector.best_high, seed=0)
    p = bootstrap_ratio([w["p99_us"] for w in c], [w["p99_us"] for w in b], detector.best_low, seed=1)
    regressed = (t.high < 1.0 and t.estimate <= 1 - tol / 2) or p.low > 1 + tol
    if robbed:
        worst = max([w.get("steal") or 0 for w in cur_w] + [0.0])
        if regressed and 1 - t.high > worst:
            return "fail"
        if not regressed and len(cb) >= 3 and t.estimate >= 1 - tol / 2:
            return "pass"
        return "error"
    return "fail" if regressed else "pass"


def mann_whitney_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided p of the Mann-Whitney U test, normal approximation with tie correction (as scipy's
    asymptotic method)."""
    n1, n2 = len(x), len(y)
    allv = np.concatenate([x, y])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sv = allv[order]
    i = 0
    while i < len(sv):
        j = i
        while j + 1 < len(sv) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    _, counts = np.unique(allv, return_counts=True)
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - (counts ** 3 - counts).sum() / (n * (n - 1))))
    if sigma == 0:
        return 1.0
    z = (abs(u1 - n1 * n2 / 2) - 0.5) / sigma
    return min(1.0, 2 * _norm_sf(z))


def st_mann_whitney(run, pool, tol, prev, relevance=False):
    x, y = tput(run["windows"]), tput([w for r in pool for w in r["windows"]])
    p = mann_whitney_p(x, y)
    ratio = float(np.median(x) / np.median(y))
    slower = p < 0.05 and ratio < 1 and (not relevance or ratio <= 1 - tol / 2)
    return "fail" if slower else "pass"


def st_fuchsia(run, pool, tol, prev):
    means = np.array([tput(r["windows"]).mean() for r in pool])
    x = tput(run["windows"])
    tb = _t_quantile(0.975, len(means) - 1)
    tc = _t_quantile(0.975, len(x) - 1)
    b_lo = means.mean() - tb * means.std(ddof=1) / math.sqrt(len(means))
    c_hi = x.mean() + tc * x.std(ddof=1) / math.sqrt(len(x))
    return "fail" if c_hi < b_lo else "pass"


def e_divisive(series: np.ndarray, min_size: int = 3, permutations: int = 199, seed: int = 0) -> tuple[int, float]:
    """Best single change point of E-Divisive (alpha = 1) and its permutation p-value."""
    n = len(series)

    def best(s):
        d = np.abs(s[:, None] - s[None, :])
        cs = d.cumsum(0).cumsum(1)  # cs[i, j] = sum d[:i+1, :j+1]

        def block(a0, a1, b0, b1):  # sum d[a0:a1, b0:b1]
            tot = cs[a1 - 1, b1 - 1]
            if a0:
                tot -= cs[a0 - 1, b1 - 1]
            if b0:
                tot -= cs[a1 - 1, b0 - 1]
            if a0 and b0:
                tot += cs[a0 - 1, b0 - 1]
            return tot
        top, where = -np.inf, None
        for tau in range(min_size, n - min_size + 1):
            m, k = tau, n - tau
            q = (2 * block(0, m, m, n) / (m * k) - block(0, m, 0, m) / m ** 2 - block(m, n, m, n) / k ** 2) * m * k / n
            if q > top:
                top, where = q, tau
        return top, where
    stat, tau = best(series)
    rng = np.random.default_rng(seed)
    exceed = sum(best(rng.permutation(series))[0] >= stat for _ in range(permutations))
    return tau, (exceed + 1) / (permutations + 1)


def st_e_divisive(run, pool, tol, prev):
    base = tput([w for r in pool for w in r["windows"]])
    cur = tput(run["windows"])
    series = np.concatenate([base, cur])
    tau, p = e_divisive(series)
    slower = p < 0.05 and abs(tau - len(base)) <= 2 and series[tau:].mean() < series[:tau].mean()
    return "fail" if slower else "pass"


def st_adjacent(run, pool, tol, prev):
    x, y = tput(run["windows"]), tput(prev["windows"])
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    t = (x.mean() - y.mean()) / math.sqrt(vx + vy) if vx + vy > 0 else 0.0
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1)) if vx + vy > 0 else 1
    p = 1 - _t_sf(t, df)  # one-sided: current lower
    return "fail" if p < 0.05 and x.mean() / y.mean() <= 1 - tol / 2 else "pass"


STATISTICS: dict[str, Callable] = {
    "suite": st_suite,
    "best-half-bootstrap": st_best_half_bootstrap,
    "mann-whitney": st_mann_whitney,
    "mann-whitney+relevance": lambda *a: st_mann_whitney(*a, relevance=True),
    "fuchsia-ci": st_fuchsia,
    "e-divisive": st_e_divisive,
    "adjacent-a-b": st_adjacent,
}


def trials(runs: list[dict], pool_size: int):
    """(trial, unchanged run, slower run, pool, A run before the unchanged one)."""
    a_runs = []
    by_trial: dict[int, dict] = {}
    for r in runs:
        if r["role"] == "baseline":
            a_runs.append(r)
        elif r["role"] == "unchanged":
            by_trial.setdefault(r["trial"], {})["unchanged"] = (r, list(a_runs[-pool_size:]), a_runs[-1] if a_runs else None)
            a_runs.append(r)
        elif r["role"] == "slower":
            by_trial.setdefault(r["trial"], {})["slower"] = r
    for t, d in sorted(by_trial.items()):
        if "unchanged" in d and "slower" in d and len(d["unchanged"][1]) >= min(3, pool_size):
            same, pool, prev = d["unchanged"]
            yield t, same, d["slower"], pool, prev


def tally(verdicts) -> dict:
    """Counts over (verdict on the slower run, verdict on the unchanged run) pairs: fail / pass / error each."""
    c = {"detected": 0, "missed": 0, "refused_slower": 0, "false_alarms": 0, "passed_unchanged": 0, "refused_unchanged": 0}
    for vs, vu in verdicts:
        c["detected"] += vs == "fail"
        c["missed"] += vs == "pass"
        c["refused_slower"] += vs == "error"
        c["false_alarms"] += vu == "fail"
        c["passed_unchanged"] += vu == "pass"
        c["refused_unchanged"] += vu == "error"
    return {**c, "refusals": c["refused_slower"] + c["refused_unchanged"], "wrong_verdicts": c["missed"] + c["false_alarms"]}


def evaluate(path: str, pool_size: int, tol: float, names: list[str]) -> list[dict]:
    runs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    runs = [r for r in runs if r.get("kind") == "run"]
    ts = list(trials(runs, pool_size))
    out = []
    for name in names:
        f = STATISTICS[name]
        # the slower run's neighbour is the trial's unchanged run
        c = tally((f(slow, pool, tol, same), f(same, pool, tol, prev)) for _t, same, slow, pool, prev in ts)
        out.append({"bench": "perf_statistics", "recording": Path(path).name, "statistic": name, "trials": len(ts), **c,
                    "seconds_per_run": round(float(np.mean([r["run_s"] for r in runs])), 1) if runs else None,
                    "pool_runs": pool_size, "tolerance": tol})
    return out


def evaluate_interleaved(path: str, tol: float) -> dict | None:
    """``interleaved-a-b``: windows of A, A2 (the same release on a second server) and B measured in turn;
    per round the ratio X/A; slower when a one-sided t-test on the log ratios gives p < 0.05 and the
    geometric mean ratio is down by tolerance / 2."""
    recs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    recs = [r for r in recs if r.get("kind") == "interleaved"]
    if not recs:
        return None

    def verdict(x, a) -> str:
        lr = np.log(tput(x)[:len(a)] / tput(a)[:len(x)])
        if len(lr) < 3 or lr.std(ddof=1) == 0:
            return "error"
        t = lr.mean() / (lr.std(ddof=1) / math.sqrt(len(lr)))
        p = 1 - _t_sf(t, len(lr) - 1)
        return "fail" if p < 0.05 and math.exp(lr.mean()) <= 1 - tol / 2 else "pass"
    c = tally((verdict(r["windows"]["B"], r["windows"]["A"]), verdict(r["windows"]["A2"], r["windows"]["A"])) for r in recs)
    return {"bench": "perf_statistics", "recording": Path(path).name, "statistic": "interleaved-a-b", "trials": len(recs), **c,
            "seconds_per_run": round(float(np.mean([r["run_s"] for r in recs])) * 2 / 3, 1),
            "note": "seconds: the A and B share of each interleaved run (A2 is there only to count false alarms)",
            "tolerance": tol}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recordings", nargs="+")
    ap.add_argument("--pool", type=int, default=5, help="runs of A pooled in the baseline (KEEP_RUNS)")
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--statistic", action="append", choices=sorted(STATISTICS), help="only these (repeatable)")
    args = ap.parse_args()
    for path in args.recordings:
        for rec in evaluate(path, args.pool, args.tolerance, args.statistic or list(STATISTICS)):
            if rec["trials"]:
                print(json.dumps(rec), flush=True)
        inter = evaluate_interleaved(path, args.tolerance)
        if inter:
            print(json.dumps(inter), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
