"""Pure judges for the performance family: measurements + policy -> Outcome.

Fail closed: an incomplete measurement, an unstable one, or a comparison
that cannot be made for a reason other than "not comparable" is an error.
A baseline that is missing or was measured elsewhere makes a comparison
``not_applicable`` with the reason, never a pass.
"""

from __future__ import annotations

from typing import Any

from nimwarden.families.performance import baseline as baselines
from nimwarden.families.performance.detector import judge_windows
from nimwarden.families.performance.windows import MAX_STEAL
from nimwarden.outcome import (
    Attempt,
    Outcome,
    errored,
    fail_closed,
    failed,
    not_applicable,
    passed,
)


def _unstable(m: Any) -> Outcome | None:
    if m.stable:
        return None
    s = m.stability
    worst = max([_steal(w) for w in m.windows[-3:]] + [0.0])
    robbed = (f"; this machine lost up to {worst:.0%} of its CPU to other guests (steal) in those windows, so measure "
              "again when it is quieter") if worst > MAX_STEAL else ""
    return errored(
        f"measurement of {m.model} at {m.load.mode} did not stabilize within {len(m.windows)} windows "
        f"(last 3 windows: throughput spread {s.throughput_spread:.1%}, latency spread {s.latency_spread:.1%}, "
        f"tolerance {m.load.tolerance:.0%}){robbed}", **m.evidence())


@fail_closed
def stable_measurement(att: Attempt) -> Outcome:
    """PERF-STABLE: the load level was measured to a stable figure and no request failed."""
    m = att.observation
    if m.errors:
        return failed(f"{m.errors} of {m.errors + sum(w.completed for w in m.windows)} inference requests failed "
                      f"under {m.load.mode}", **att.evidence())
    bad = _unstable(m)
    if bad:
        return bad
    client = getattr(m, "client", None)
    if client is not None and client.bottleneck:
        per = f", {client.cpu_ms_per_1000:.0f} ms of client CPU per 1,000 requests" if client.cpu_ms_per_1000 is not None else ""
        return errored(f"the load generator, not the server, was the bottleneck at {m.load.mode}: its {client.processes} "
                       f"process(es) were busy {client.busy_share:.0%} of the time{per}, so the figure measures the client; "
                       "give it more processes (options.performance.processes) or a machine of its own", **att.evidence())
    lat = m.latency
    return passed(f"{m.model} at {m.load.mode}: {m.throughput:.1f} infer/s, p50 {lat.p50_us / 1000:.2f} ms, "
                  f"p99 {lat.p99_us / 1000:.2f} ms, stable, no failed requests", **att.evidence())


@fail_closed
def regression(att: Attempt, base: baselines.Baseline | None, fingerprint: dict, tolerance: float,
               baseline_path: str, min_change: float | None = None) -> Outcome:
    """PERF-REGRESSION: the current run is not slower than the baseline beyond noise.

    The statistic is ``detector.judge_windows`` over the baseline's runs (each stored run's windows,
    or the pooled windows of an older file as one run): fail when slower, pass when not, error naming
    why when the machine, not the release, decides the figure (a baseline whose runs disagree by more
    than ``tolerance``, a disturbed run that reads slower, too much CPU steal)."""
    m = att.observation
    if base is None:
        return not_applicable(f"no baseline recorded at {baseline_path}; record one with --perf-update-baseline",
                              fingerprint=fingerprint)
    diff = baselines.differences(base.fingerprint, fingerprint)
    if diff:
        return not_applicable(f"baseline {baseline_path} was measured in another environment: " + "; ".join(diff),
                              baseline_fingerprint=base.fingerprint, fingerprint=fingerprint)
    level = base.level(m.load.mode)
    if level is None:
        return not_applicable(f"baseline {baseline_path} has no entry for {m.load.mode} "
                              f"(has: {', '.join(sorted(base.levels)) or 'none'})")
    if m.errors:
        return failed(f"{m.errors} inference requests failed during the comparison run", **att.evidence())
    # perf_analyzer's stability rule is PERF-STABLE's business: the detector judges every window of the run
    # itself and refuses (errors) when interference spoiled a run that reads slower (detector.judge_windows).
    runs = [r.get("windows") or [] for r in level.get("runs") or ()] or [level["windows"]]
    try:
        v = judge_windows([w for w in m.windows if w.completed], runs, tolerance, min_change=min_change)
    except (ValueError, ZeroDivisionError) as exc:
        return errored(f"cannot compare with {baseline_path}: {exc}")
    evidence = {"comparison": v.evidence, "baseline": baseline_path, "baseline_recorded_at": level.get("recorded_at"),
                "baseline_throughput": level.get("throughput"), "current": m.evidence(), "fingerprint": fingerprint}
    where = f"{m.model} at {m.load.mode}"
    if v.status == "fail":
        return failed(f"{where} {v.reason if v.reason.startswith('regressed') else 'regressed: ' + v.reason}", **evidence)
    if v.status == "pass":
        return passed(f"{where} {v.reason}", **evidence)
    return errored(f"{where}: cannot judge against {baseline_path}: {v.reason}", **evidence)


def _steal(w) -> float:
    steal = w.get("steal") if isinstance(w, dict) else w.steal
    return float(steal or 0.0)


@fail_closed
def under_load(att: Attempt, latency_tolerance: float) -> Outcome:
    """PERF-UNDERLOAD: the audit caused no inference failure and did not slow inference beyond tolerance."""
    if att is None:
        return errored("the audit ran under load, but no background load was started for this deployment")
    r = att.observation
    ev = att.evidence()
    if r.failed:
        return failed(f"{r.failed} of {r.requests} background inference requests failed while the audit ran: "
                      "a probe disturbed the service (a finding against the harness itself)", severity="critical", **ev)
    if r.server_failures:
        return failed(f"the server's inference failure counter rose by {r.server_failures:g} during the audit",
                      severity="critical", **ev)
    if r.failures_before is not None and r.failures_after is None:
        return errored(f"could not read the server's failure counter after the audit: {r.metrics_note}", **ev)
    if r.reference is None or r.during is None:
        return errored("the background load completed no requests in the reference or the audit period", **ev)
    ratio = r.during.p50_us / r.reference.p50_us
    if ratio > 1 + latency_tolerance:
        return failed(f"p50 latency rose {ratio - 1:+.0%} during the audit (tolerance {latency_tolerance:.0%})", **ev)
    counter = ("server failure counter unchanged" if r.server_failures is not None
               else "no metrics endpoint declared, so only the client's count was checked")
    return passed(f"{r.requests} background requests over {r.duration_s:.0f}s, none failed; {counter}; "
                  f"p50 {ratio - 1:+.0%} against the quiet reference", **ev)


_RANK = {"fail": 0, "error": 1, "pass": 2, "not_applicable": 3, "skip": 3, "waived": 3}


def combine(parts: list[tuple[str, Outcome]]) -> Outcome:
    """One verdict for several (subject, outcome) parts, e.g. every model and load level of a deployment.

    Any fail fails, else any error errors, else any pass passes; only when
    every part does not apply does the whole not apply.
    """
    if not parts:
        return errored("nothing was measured: no model or load level configured")
    if len(parts) == 1:
        return parts[0][1]
    worst = min(parts, key=lambda p: _RANK[p[1].status.value])[1]
    shown = [f"{s}: {o.reason}" for s, o in parts if o.status == worst.status]
    evidence = {"parts": [{"subject": s, "status": o.status.value, "reason": o.reason, "evidence": dict(o.evidence)}
                          for s, o in parts]}
    return Outcome(worst.status, "; ".join(shown), evidence, severity=worst.severity)
