"""Compare a run with the previous comparable run for the same target, and collect history for charts.

Comparable: it evaluated at least every (control, deployment) the current run evaluated, so a
run narrowed with ``-k`` or interrupted half-way is not taken as "the previous run" of a full one.

A finding is a result with status ``fail`` or ``error``; it is identified by
control + deployment + subject (normalised: no ports, no pod suffixes; see
``nimwarden.report.fingerprint``), so the same problem on the same object is
recognised from one run to the next even when its reason text or a port changes.

- new: a finding now that was not a finding before;
- fixed: a finding before whose key now passes (or no longer applies);
- unchanged: a finding in both runs;
- not_rechecked: a finding before whose key was not evaluated this time
  (skipped, waived or absent): not fixed, just not looked at.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nimwarden.report import fingerprint
from nimwarden.report.summary import fail_by_severity

FINDING_STATUSES = ("fail", "error")
SOLVED_STATUSES = ("pass", "not_applicable")


def finding_key(result: Mapping[str, Any]) -> tuple[str, str, str]:
    return fingerprint.finding_key(result)


def _brief(result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "control": result.get("control"),
        "deployment": result.get("deployment"),
        "subject": result.get("subject"),
        "status": result.get("status"),
        "severity": result.get("severity"),
        "title": result.get("title"),
    }


def compare(previous: Mapping[str, Any], current: Mapping[str, Any], previous_run: str = "") -> dict[str, Any]:
    """The trend record stored in ``summary["trend"]``."""
    before = {finding_key(r): r for r in previous.get("results") or [] if r.get("status") in FINDING_STATUSES}
    now_all = {finding_key(r): r for r in current.get("results") or []}
    now = {k: r for k, r in now_all.items() if r.get("status") in FINDING_STATUSES}
    new = [_brief(now[k]) for k in sorted(now.keys() - before.keys())]
    unchanged = [_brief(now[k]) for k in sorted(now.keys() & before.keys())]
    fixed, not_rechecked = [], []
    for k in sorted(before.keys() - now.keys()):
        if k in now_all and now_all[k].get("status") in SOLVED_STATUSES:
            fixed.append(_brief(now_all[k]) | {"was": before[k].get("status")})
        else:
            gone = dict(_brief(before[k]))
            gone["status"] = now_all[k].get("status") if k in now_all else "absent"
            not_rechecked.append(gone)
    return {
        "previous_run": previous_run,
        "previous_started_at": previous.get("started_at"),
        "counts": {
            "new": len(new),
            "fixed": len(fixed),
            "unchanged": len(unchanged),
            "not_rechecked": len(not_rechecked),
        },
        "new": new,
        "fixed": fixed,
        "unchanged": unchanged,
        "not_rechecked": not_rechecked,
    }


def regular_file(path: Path) -> Any:
    """``path``'s stat when it is a regular file (a link to one counts), else None: a FIFO or a device named
    summary.json in a reports folder would block the run or never end."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def read_earlier(path: Path) -> dict[str, Any] | None:
    """An earlier run's summary, as a comparison needs it (:class:`Earlier`); None when it is not one (no regular file,
    not JSON, cut short, not of this schema, or without a list of results). The one read last is kept: the baseline
    and the trend both ask for the previous run."""
    st = regular_file(path)
    if st is None:
        return None
    key = (str(path), st.st_mtime_ns, st.st_size)
    if _last_read[0] == key:  # the baseline and the trend both ask for the previous run: read it once
        return _last_read[1]
    data = _parse_earlier(path)
    if data is None or data.get("schema") != "nimwarden/summary/v1":
        return None  # a half-written or foreign file is not a previous run
    _last_read[:] = [key, data]
    return data


# The one summary read last (a run compares itself with one previous run; holding more would hold hundreds
# of megabytes at repository scale: a 500-workload run's summary.json is 52 MB of JSON).
_last_read: list[Any] = [None, None]

_RESULTS_KEY = b'\n  "results": ['


class Earlier(dict):
    """An earlier run's summary as a comparison reads it: every key, but of its results only those a comparison
    names (:data:`KEPT_STATUSES`, with :data:`KEPT_FIELDS`); ``evaluated``: the (control, deployment) pairs of
    all of them. A nightly run at repository scale compares itself with a summary of 200,000 results: held whole,
    it doubled the run's memory (1.3 GiB instead of 0.7 at 2,000 workloads)."""

    evaluated: frozenset[tuple[str, str]] = frozenset()


# What the trend (:func:`compare`) and the baseline (:func:`nimwarden.report.baseline.attach`) read of an earlier
# run's results: its findings and what it waived, with these fields. The others only say what it evaluated.
KEPT_STATUSES = ("fail", "error", "waived")
KEPT_FIELDS = ("control", "deployment", "subject", "status", "severity", "title", "family", "reason")
_KEPT = tuple(s.encode("ascii") for s in KEPT_STATUSES)

_STR = rb'"[^"\\]*(?:\\.[^"\\]*)*"'  # a JSON string (the unrolled form: four times faster than an alternation)
# A result line as this tool writes it (nimwarden.report.record.make_result): its first keys, up to its evidence, are
# KEPT_FIELDS. Group 1 is those keys as a JSON object without its closing brace; 2, 3 and 4 the control, the
# deployment (a JSON string) and the status. Any other line is parsed whole.
_LINE_START = re.compile(rb'    (\{"control": "([^"\\]*)", "family": ' + _STR + rb', "severity": ' + _STR + rb', "title": ' + _STR
                         + rb', "deployment": (' + _STR + rb'), "subject": ' + _STR + rb', "status": "([a-z_]+)", "reason": '
                         + _STR + rb'), "evidence": ')


def _take(r: Any, kept: list, evaluated: set) -> None:
    if isinstance(r, dict):
        evaluated.add((str(r.get("control", "")), str(r.get("deployment", ""))))
        if r.get("status") in KEPT_STATUSES:
            kept.append({k: r[k] for k in KEPT_FIELDS if k in r})


def _earlier(head: dict[str, Any], kept: list, evaluated: set) -> Earlier:
    out = Earlier(head)
    out["results"] = kept
    out.evaluated = frozenset(evaluated)
    return out


def _head_of(f: Any) -> tuple[dict[str, Any] | None, int]:
    """A summary's every key but its results, from the head of the open file where this tool's writer puts them
    (:func:`nimwarden.report.summary.write_summary`), and where the results' part begins; None when the file is
    not laid out so."""
    head = b""
    while _RESULTS_KEY not in head:
        chunk = f.read(1 << 20)
        if not chunk:
            break
        head += chunk
    at = head.find(_RESULTS_KEY)
    data = None
    if at >= 0 and head[:at].rstrip().endswith(b","):
        try:
            data = json.loads(head[:at].rstrip()[:-1] + b"\n}")
        except ValueError:
            data = None
    return (data, at + len(_RESULTS_KEY)) if isinstance(data, dict) and "results" not in data else (None, 0)


def _parse_earlier(path: Path) -> Earlier | None:
    """:class:`Earlier` from ``path``: a summary this tool wrote (every key first, then a result per line) is read a
    line at a time, a passed or not-applicable result from its first keys alone; any other file is read whole."""
    try:
        with open(path, "rb") as f:
            head, at = _head_of(f)
            if head is not None:
                f.seek(at)
                try:
                    return _earlier(head, *_result_lines(f))
                except _NotLaidOut:
                    pass
            f.seek(0)
            whole = json.loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(whole, dict):
        return None
    results = whole.pop("results", None)
    if not isinstance(results, list):
        return None
    kept: list = []
    evaluated: set = set()
    for r in results:
        _take(r, kept, evaluated)
    return _earlier(whole, kept, evaluated)


class _NotLaidOut(Exception):
    """A results' part not laid out a result per line (written otherwise, or cut short): the file is read whole."""


def _result_lines(f: Any) -> tuple[list, set]:
    """What a comparison keeps of a summary's results part (``\\n    {…},\\n    {…}\\n  ]\\n}``), read from ``f`` a
    line at a time: of a result laid out as this tool writes it, only its first keys are parsed (a passed or
    not-applicable one: only its control and deployment). Raises :class:`_NotLaidOut` where the part is not laid
    out so."""
    if f.readline().strip():
        raise _NotLaidOut
    kept: list = []
    evaluated: set = set()
    names: dict[bytes, str] = {}  # one str per control and deployment name: 200,000 results name a few thousand
    for line in f:
        if not line.startswith(b"    {"):
            break
        m = _LINE_START.match(line)
        if m is None:
            try:
                _take(json.loads(line.rstrip().rstrip(b",")), kept, evaluated)
            except ValueError:
                raise _NotLaidOut from None
            continue
        control, deployment, status = m.group(2, 3, 4)
        if control not in names:
            names[control] = control.decode("utf-8")
        if deployment not in names:
            names[deployment] = json.loads(deployment) if b"\\" in deployment else deployment[1:-1].decode("utf-8")
        evaluated.add((names[control], names[deployment]))
        if status in _KEPT:
            kept.append(json.loads(m.group(1) + b"}"))
    else:
        raise _NotLaidOut  # no end to the results
    if line.strip() != b"]" or f.readline().strip() != b"}" or f.read().strip():
        raise _NotLaidOut
    return kept, evaluated


def _read_head(path: Path) -> dict[str, Any] | None:
    """A summary without its results, read from the head of the file (:func:`_head_of`); a file laid out otherwise
    is read whole."""
    if regular_file(path) is None:
        return None
    try:
        with open(path, "rb") as f:
            data = _head_of(f)[0]
    except OSError:
        return None
    # Only this writer's layout (every key but the results first) carries fail_by_severity in the head;
    # anything else — an older summary, one written by another tool — is read whole.
    if data is None or "fail_by_severity" not in data:
        data = read_earlier(path)
        return None if data is None else {k: v for k, v in data.items() if k != "results"} | {
            "fail_by_severity": fail_by_severity(data.get("results") or [])}
    return data if data.get("schema") == "nimwarden/summary/v1" else None


def _runs(reports_dir: str | Path, current_run_dir: str | Path, target: str, read=read_earlier):
    """(run name, summary) of the earlier runs of ``target``, newest first, read one at a time as asked for (by ``read``:
    by default as a comparison reads them, :class:`Earlier`). Run directories are named by UTC timestamp, so their names sort in
    time order; ``latest`` (a link) and ``baselines`` are not runs."""
    reports_dir = Path(reports_dir)
    current = Path(current_run_dir).name
    if not reports_dir.is_dir():
        return
    for child in sorted(reports_dir.iterdir(), reverse=True):
        if child.is_symlink() or not child.is_dir() or child.name >= current or child.name == "baselines":
            continue
        summary = read(child / "summary.json")
        if summary is not None and summary.get("target") == target:
            yield child.name, summary


LOOK_BACK = 30  # runs searched for a comparable one


def _evaluated(summary: Mapping[str, Any]) -> frozenset[tuple[str, str]] | set[tuple[str, str]]:
    if isinstance(summary, Earlier):
        return summary.evaluated
    return {(str(r.get("control", "")), str(r.get("deployment", ""))) for r in summary.get("results") or []}


def previous_run(
    reports_dir: str | Path, current_run_dir: str | Path, target: str, covering: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The newest earlier run of ``target``; with ``covering``, the newest that evaluated every
    (control, deployment) that run evaluated.

    A run restricted with ``-k`` or interrupted covers only part of the catalog: comparing a full
    run with it would call every control it skipped "new". Such runs are passed over.
    """
    wanted = None  # made when there is a run to compare with (a first run has none: 100,000 results not walked)
    for looked, (name, summary) in enumerate(_runs(reports_dir, current_run_dir, target)):
        if looked >= LOOK_BACK:
            break
        if wanted is None:
            wanted = _evaluated(covering) if covering is not None else set()
        if wanted <= _evaluated(summary):  # one at a time: a passed-over run is not held while the next is read
            return name, summary
    return None


NOT_LOOKED = ("", None)  # attach_trend's ``found`` when nobody looked yet (None: looked, and there is none)


def attach_trend(summary: dict[str, Any], reports_dir: str | Path, run_dir: str | Path,
                 found: tuple[str, dict[str, Any]] | None | tuple[str, None] = NOT_LOOKED) -> dict[str, Any] | None:
    """Store the comparison with the previous comparable run in ``summary["trend"]`` (None when there is none).
    ``found``: what :func:`previous_run` gave for this run already (the baseline looked first), so the
    previous run, a summary of 100,000 results at repository scale, is not read twice."""
    if found == NOT_LOOKED:  # (a found run's name is never empty)
        found = previous_run(reports_dir, run_dir, str(summary.get("target", "")), covering=summary)
    if found is None:
        summary.pop("trend", None)
        return None
    name, previous = found
    summary["trend"] = compare(previous, summary, name)
    return summary["trend"]


def _history_point(name: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    by_severity = summary.get("fail_by_severity")
    if not isinstance(by_severity, dict):  # a summary written before the field was
        by_severity = fail_by_severity(summary.get("results") or [])
    totals = summary.get("totals") or {}
    return {
        "run": name,
        "started_at": summary.get("started_at"),
        "fail": int(totals.get("fail", 0)),
        "error": int(totals.get("error", 0)),
        "waived": int(totals.get("waived", 0)),
        "pass": int(totals.get("pass", 0)),
        "fail_by_severity": by_severity,
    }


def history(
    reports_dir: str | Path, run_dir: str | Path, summary: Mapping[str, Any], limit: int = 20
) -> list[dict[str, Any]]:
    """The last ``limit`` runs of this target including the current one, oldest first, for the trend chart."""
    points = []
    for name, head in _runs(reports_dir, run_dir, str(summary.get("target", "")), read=_read_head):
        if len(points) >= max(0, limit - 1):
            break
        points.append(_history_point(name, head))  # the head of each file: its totals, not its results
    points.reverse()
    points.append(_history_point(Path(run_dir).name, summary))
    return points[-limit:]
