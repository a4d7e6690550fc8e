"""Report writers, run at session end (and on interrupt).

Every writer is a pure function of the summary dict, so ``nimwarden report
<run dir>`` can regenerate the artifacts from summary.json alone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nimwarden.report import baseline, gating
from nimwarden.report.summary import (
    build_summary,
    finish_summary,
    point_latest,
    results_path,
    utc_now,
    write_results,
)


@dataclass(frozen=True)
class RunRecord:
    """What the report needs to know about one finished audit run (plain data: the writers know
    nothing of pytest). ``stopped_early``: the runner stopped before every collected control ran
    (``-x``, a failed collection) and ``pytest_exit`` is the runner's own status."""

    target: Any
    started: str
    options: Sequence[str]
    fail_on: str | None
    waivers: Sequence[Any]
    run_dir: Path | None
    reports_dir: Path
    collected: Sequence[str]
    interrupted: bool
    stopped_early: bool
    pytest_exit: int
    data: dict[str, dict[str, Any]] | None = None  # the families' dated data (families.data_stamps)
    fail_on_new: bool = False  # only findings absent from the baseline gate (nimwarden.report.baseline)
    baseline: str | None = None  # a summary.json to compare with; default: the previous comparable run
    kubernetes: dict[str, Any] | None = None  # the inventory of the Kubernetes source, where the runner let its state go


def finish_run(run: RunRecord, results: list[dict[str, Any]], timings: dict[str, Any] | None = None,
               extra_writers: Sequence[Any] = (), redacted_at: int | None = None, spread: bool = False) -> tuple[int, list[str]]:
    """Build summary.json and every artifact for a finished run; return the contract exit status
    and the closing lines to print. ``timings`` (start-up, parsing, judging) go into summary.json
    with the time the reports took; ``extra_writers(run_dir, summary)`` write what pytest's plugins
    would (junit.xml, allure-results/) when the run had no pytest; ``spread``: SARIF and OSCAL are
    written by a process of their own too (a run without threads: the in-process runner). ``redacted_at``: every result was
    redacted when the redactor knew that many secrets (:func:`nimwarden.redact.generation`); while it
    still knows no more, the results are not redacted a second and a third time."""
    import time

    t0 = time.perf_counter()
    from nimwarden import redact
    from nimwarden.waivers import apply_waivers

    def fresh() -> bool:
        return redacted_at is not None and redacted_at == redact.generation()

    finished = utc_now()
    results, waiver_findings = apply_waivers(results, run.waivers, dt.datetime.now(dt.timezone.utc).date())
    finished_ids = {r.get("nodeid") for r in results}
    not_run = [n for n in run.collected if n not in finished_ids]
    summary = build_summary(
        target=run.target,
        results=results,
        started=run.started,
        finished=finished,
        interrupted=run.interrupted or bool(run.stopped_early and not_run and run.pytest_exit == 2),
        not_run=not_run,
        options=list(run.options),
        waiver_findings=waiver_findings,
        data=run.data,
        results_redacted=fresh(),
    )
    # what pytest's plugins would have written (junit.xml, allure-results/: many small files, the disk's time more
    # than ours) needs only the results as they are now: started first, beside everything below. Spread, the
    # writers beside are two processes: the first extra writer (allure-results/) and OSCAL, which need no
    # fingerprint, from now; SARIF, which does, and the other extra writers once the baseline is attached (the
    # three processes then finish about together, report.html and summary.json being this one's)
    extra = tuple(extra_writers)
    first, later = ((_group(*extra[:1], _write_oscal),), (_group(_write_sarif, *extra[1:], _results_writer(fresh())),)) \
        if spread else (extra, ())
    early = _beside(first, run.run_dir, summary) if run.run_dir is not None else None
    previous = _attach_baseline(run, summary)
    inventory = run.kubernetes if run.kubernetes is not None else kubernetes_inventory(run.target)
    if inventory:
        summary["kubernetes"] = inventory
    verdicts = {v.name: v for v in gating.deployment_verdicts(summary, run.fail_on)}
    for entry in summary["deployments"]:
        v = verdicts.get(entry["name"])
        entry["verdict"] = v.verdict if v else gating.UNEVALUATED
        if v is not None and v.why:
            entry["why"] = v.why
    status = baseline.exit_status(summary, run.fail_on)
    if not results and run.pytest_exit == 4:  # pytest usage error before any control ran
        status = 2
    summary["exit_status"] = status
    lines = []
    if timings is not None:
        summary["timings"] = dict(timings)
    if run.run_dir is not None:
        machine = _beside(later, run.run_dir, summary)

        def join() -> None:  # every writer beside is done before summary.json
            for beside in (early, machine):
                if beside is not None:
                    beside()

        write_all(run.run_dir, summary, run.reports_dir, started_clock=t0 if timings is not None else None, before_summary=join,
                  results_redacted=fresh(), formats=() if spread else ("sarif", "oscal"), previous=previous,
                  results_body=results_path(run.run_dir) if later else None)
        point_latest(run.reports_dir, run.run_dir)
        if timings is not None:  # the caller prints them: reports_s is known now
            timings.update(summary.get("timings") or {})
        lines.append(f"report: {run.run_dir / 'report.html'}")
    lines += baseline.explain(summary)
    lines += gating.explain(summary, run.fail_on).splitlines()
    if baseline.fail_on_new(summary):
        lines[-1] = f"exit status {status} (--fail-on-new{f', --fail-on {run.fail_on}' if run.fail_on else ''})"
    return status, lines


def _attach_baseline(run: RunRecord, summary: dict[str, Any]) -> Any:
    """Compare with --baseline FILE, else with the previous comparable run (when the run writes reports).
    Returns what :func:`trends.previous_run` found when it was asked (the trend compares with the same
    run), else ``trends.NOT_LOOKED``."""
    from nimwarden.report import trends

    previous, source, found = None, None, trends.NOT_LOOKED
    if run.baseline:
        try:
            previous, source = baseline.read_baseline(run.baseline), str(run.baseline)
        except ValueError as exc:  # checked before the run started; a file changed since is said, not hidden
            source = f"unreadable ({exc})"
    elif run.run_dir is not None:
        found = trends.previous_run(run.reports_dir, run.run_dir, str(summary.get("target", "")), covering=summary)
        if found is not None:
            previous, source = found[1], found[0]
    elif not run.fail_on_new:
        return found
    baseline.attach(summary, previous, source, run.fail_on_new)
    return found



def _beside(writers: Sequence[Any], run_dir: Path, summary: dict[str, Any]):
    """Run ``writers(run_dir, summary)`` beside the main writers — in forked processes where this process may
    fork (:func:`nimwarden.forked.safe`: the in-process runner, one thread), else in this one — and return the
    join. Each writer is one process of its own. A child that fails leaves its files to be written here, so
    nothing is ever missing."""
    import os

    if not writers:
        return None
    from nimwarden import forked

    groups = [(w,) for w in writers]
    children: list[tuple[int | None, tuple]] = []
    for group in groups:
        pid = None
        if forked.safe():
            try:
                pid = os.fork()
            except OSError:
                pid = None
            if pid == 0:  # the child: write, and leave without running the parent's exit handlers
                code = 0
                try:
                    for w in group:
                        w(run_dir, summary)
                except BaseException:  # noqa: BLE001 - any failure: the parent writes them instead
                    code = 1
                os._exit(code)
        children.append((pid, group))

    def join() -> None:
        for pid, group in children:
            if pid:
                _, status = os.waitpid(pid, 0)
                if status == 0:
                    continue
            for w in group:
                w(run_dir, summary)

    return join


def kubernetes_inventory(target: Any) -> dict[str, Any] | None:
    """What the target's Kubernetes source holds (objects per kind, kinds not judged, Helm hooks), from
    the state this process read; manifests and snapshots are read if it has not (an xdist controller)."""
    source = getattr(target, "kubernetes", None)
    if source is None or source.source == "none":
        return None
    from nimwarden.k8s import source as k8s

    read = k8s.cached(source)
    if read is None and source.source in ("manifests", "snapshot"):
        try:
            read = k8s.cluster_state(source)
        except Exception:  # noqa: BLE001 - the inventory is informative; the controls already said what failed
            return None
    if read is None or read.observation is None:
        return None
    return k8s.inventory(read.observation)


def _results_writer(redacted: bool) -> Any:
    """The results' part of summary.json (:func:`write_results`), as a writer beside."""
    return lambda run_dir, summary: write_results(run_dir, summary, redacted)


def _group(*writers: Any) -> Any:
    """One writer: ``writers``, in turn (one process beside)."""
    def write(run_dir: Path, summary: dict[str, Any]) -> None:
        for w in writers:
            w(run_dir, summary)

    return write


def _write_sarif(run_dir: Path, summary: dict[str, Any]) -> None:
    from nimwarden.report.sarif import write_sarif

    write_sarif(run_dir, summary)


def _write_oscal(run_dir: Path, summary: dict[str, Any]) -> None:
    from nimwarden.report.oscal import write_oscal

    write_oscal(run_dir, summary)


def write_all(run_dir: Path, summary: dict[str, Any], reports_dir: Path | None = None,
              started_clock: float | None = None, before_summary: Any = None, results_redacted: bool = False,
              formats: Sequence[str] = ("sarif", "oscal"), previous: Any = ("", None), results_body: Path | None = None) -> list[Path]:
    """report.html (with trend), the machine formats that exist, and summary.json last (with
    ``timings.reports_s`` measured from ``started_clock`` when given). ``previous``: the previous
    comparable run as :func:`trends.previous_run` found it already (default ``trends.NOT_LOOKED``: looked for here)."""
    import time

    written = []
    history = None
    try:
        from nimwarden.report import trends

        if reports_dir is not None:
            trends.attach_trend(summary, reports_dir, run_dir, previous)
        # `nimwarden report <run dir>` passes no reports_dir: keep the stored trend, and draw the
        # history chart from the run's siblings so a regenerated report.html loses nothing.
        history = trends.history(reports_dir if reports_dir is not None else Path(run_dir).parent, run_dir, summary)
    except (OSError, ValueError, KeyError):
        history = None
    from nimwarden.report.html import write_html

    written.append(write_html(run_dir, summary, history))
    for name in formats:  # the machine formats written here (not beside, by a process of their own)
        try:
            module = __import__(f"nimwarden.report.{name}", fromlist=["write"])
        except ImportError:
            continue
        writer = getattr(module, f"write_{name}", None)
        if writer is not None:
            written.append(writer(run_dir, summary))
    # the results' lines of summary.json (its slow part) while the writers beside finish; the rest, timings
    # included, once they have
    body = results_body if results_body is not None else write_results(run_dir, summary, results_redacted)
    if before_summary is not None:
        before_summary()
    if started_clock is not None and isinstance(summary.get("timings"), dict):
        summary["timings"]["reports_s"] = round(time.perf_counter() - started_clock, 3)
    written.insert(0, finish_summary(run_dir, summary, body))
    return written


def load_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
