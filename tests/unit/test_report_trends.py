"""Trends: comparison with the previous run of the same target, from summary.json files on disk."""

from __future__ import annotations

import json
import os

from nimwarden.report import trends
from tests.unit.report_samples import lab_summary, result, with_results


def _run(reports, name, summary):
    run_dir = reports / name
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return run_dir


A = result("TLS-VERSION-001", "tls", "high", "exposed", "e:443", "fail", "TLSv1")
B = result("PORTS-METRICS-001", "ports", "medium", "exposed", "e:8002", "fail", "open")
C = result("HOST-UID-001", "host", "medium", "hardened", "p", "error", "denied")


def test_compare_new_fixed_unchanged_not_rechecked():
    previous = with_results(lab_summary(), [A, B, C])
    current = with_results(
        lab_summary(),
        [
            dict(A, reason="TLSv1.1 accepted"),  # same key, new wording: unchanged
            dict(B, status="pass", reason="closed"),  # fixed
            result("GATEWAY-RATELIMIT-001", "gateway", "medium", "exposed", "g", "fail", "no limit"),  # new
        ],
    )
    trend = trends.compare(previous, current, "20261121T080000Z")
    assert trend["counts"] == {"new": 1, "fixed": 1, "unchanged": 1, "not_rechecked": 1}
    assert [t["control"] for t in trend["new"]] == ["GATEWAY-RATELIMIT-001"]
    assert trend["fixed"][0]["control"] == "PORTS-METRICS-001" and trend["fixed"][0]["was"] == "fail"
    assert trend["unchanged"][0]["control"] == "TLS-VERSION-001"
    assert trend["not_rechecked"][0] == dict(trend["not_rechecked"][0], control="HOST-UID-001", status="absent")
    assert trend["previous_run"] == "20261121T080000Z"


def test_same_control_on_another_subject_is_a_new_finding():
    trend = trends.compare(with_results(lab_summary(), [A]), with_results(lab_summary(), [dict(A, subject="e:8443")]))
    assert trend["counts"]["new"] == 1 and trend["counts"]["not_rechecked"] == 1


def test_previous_run_is_the_latest_older_run_of_the_same_target(tmp_path):
    reports = tmp_path / "reports"
    _run(reports, "20261120T080000Z", with_results(lab_summary("2026-11-20T08:00:00Z"), [A]))
    _run(reports, "20261121T080000Z", with_results(lab_summary("2026-11-21T08:00:00Z"), [A, B]))
    other = with_results(lab_summary(), [C])
    other["target"] = "staging"
    _run(reports, "20261121T090000Z", other)  # other target: ignored
    (reports / "20261121T100000Z").mkdir()  # no summary.json (interrupted before writing): ignored
    (reports / "20261121T110000Z").mkdir()
    (reports / "20261121T110000Z" / "summary.json").write_text("{not json", encoding="utf-8")
    current_dir = reports / "20261122T080000Z"
    current_dir.mkdir()
    os.symlink(current_dir.name, reports / "latest")
    _run(reports, "20261123T080000Z", with_results(lab_summary(), []))  # newer than current: ignored

    current = with_results(lab_summary("2026-11-22T08:00:00Z"), [A])
    trend = trends.attach_trend(current, reports, current_dir)
    assert trend is current["trend"]
    assert trend["previous_run"] == "20261121T080000Z"
    assert trend["counts"] == {"new": 0, "fixed": 0, "unchanged": 1, "not_rechecked": 1}

    points = trends.history(reports, current_dir, current)
    assert [p["run"] for p in points] == ["20261120T080000Z", "20261121T080000Z", "20261122T080000Z"]
    assert [p["fail"] for p in points] == [1, 2, 1]
    assert points[1]["fail_by_severity"] == {"high": 1, "medium": 1}
    assert [p["run"] for p in trends.history(reports, current_dir, current, limit=2)] == [
        "20261121T080000Z",
        "20261122T080000Z",
    ]


def test_first_run_has_no_trend(tmp_path):
    summary = with_results(lab_summary(), [A])
    summary["trend"] = {"stale": True}
    assert trends.attach_trend(summary, tmp_path / "reports", tmp_path / "reports" / "20261122T080000Z") is None
    assert "trend" not in summary


def test_a_narrower_previous_run_is_passed_over_for_the_last_one_that_covered_this_run(tmp_path):
    """A run narrowed with -k (or interrupted) is not "the previous run" of a full one: its gaps would read as new."""
    reports = tmp_path / "reports"
    _run(reports, "20261120T080000Z", with_results(lab_summary(), [A, B, dict(C, status="pass")]))  # full
    _run(reports, "20261121T080000Z", with_results(lab_summary(), [A]))  # `-k tls`: covers only A
    current_dir = reports / "20261122T080000Z"
    current_dir.mkdir()
    current = with_results(lab_summary(), [A, B, dict(C, status="pass")])
    trend = trends.attach_trend(current, reports, current_dir)
    assert trend["previous_run"] == "20261120T080000Z"
    assert trend["counts"] == {"new": 0, "fixed": 0, "unchanged": 2, "not_rechecked": 0}
    # A narrow current run may still compare with the narrow previous one (it covers it).
    narrow_dir = reports / "20261123T080000Z"
    narrow_dir.mkdir()
    assert trends.attach_trend(with_results(lab_summary(), [A]), reports, narrow_dir)["previous_run"] == "20261121T080000Z"
    # Nothing earlier covers it: no trend rather than a misleading one.
    wider = with_results(lab_summary(), [A, B, C, result("GATEWAY-RATELIMIT-001", "gateway", "medium", "exposed", "g", "pass", "ok")])
    assert trends.attach_trend(wider, reports, narrow_dir) is None


def _written(reports, name, summary):
    """A run as this tool writes it: summary.write_summary, every key first and the results last."""
    from nimwarden.report.summary import fail_by_severity, write_summary

    run_dir = reports / name
    run_dir.mkdir(parents=True)
    write_summary(run_dir, dict(summary, fail_by_severity=fail_by_severity(summary["results"])))
    return run_dir


def test_nightly_runs_are_read_one_at_a_time_and_the_chart_reads_only_their_heads(tmp_path, monkeypatch):
    """A year of nightly repository-scale runs in one folder: the comparison reads only the run it compares with
    (once, for the baseline and the trend, a result per line: never the file as one document), and the history
    chart only the head of each file."""
    reports = tmp_path / "reports"
    for day in range(10, 20):
        _written(reports, f"202611{day}T080000Z", with_results(lab_summary(f"2026-11-{day}T08:00:00Z"), [A, B]))
    current_dir = reports / "20261120T080000Z"
    current_dir.mkdir()
    current = with_results(lab_summary("2026-11-20T08:00:00Z"), [A])

    whole, read = [], []
    real_loads, real_read = trends.json.loads, trends._parse_earlier

    def counting(text, *args, **kwargs):
        out = real_loads(text, *args, **kwargs)
        if isinstance(out, dict) and "results" in out:
            whole.append(out.get("started_at"))
        return out

    monkeypatch.setattr(trends.json, "loads", counting)
    monkeypatch.setattr(trends, "_parse_earlier", lambda path: read.append(path.parent.name) or real_read(path))
    trends._last_read[:] = [None, None]
    name, previous = trends.previous_run(reports, current_dir, "lab", covering=current)
    assert name == "20261119T080000Z" and trends.previous_run(reports, current_dir, "lab", covering=current)[1] is previous
    assert read == ["20261119T080000Z"] and whole == []  # once, a line at a time, and none of the nine older runs
    points = trends.history(reports, current_dir, current)
    assert read == ["20261119T080000Z"] and whole == []  # the chart parsed no file whole
    assert [p["fail"] for p in points] == [2] * 10 + [1]
    assert points[0]["fail_by_severity"] == {"high": 1, "medium": 1}


# An earlier run as a comparison reads it: what it found and waived, and what it evaluated.
ODD = 'dep "quoted" \\ é\tx'  # a deployment name JSON escapes
EARLIER = [
    A, B, C,
    result("PORTS-METRICS-001", "ports", "medium", "hardened", "h:8002", "pass", "closed", {"status": "fail"}),  # evidence's "status"
    result("NIM-AUTH-001", "nim-api", "high", ODD, "n", "not_applicable", "no endpoint"),
    result("NIM-AUTH-001", "nim-api", None, "exposed", "n", "pass", "null severity: the line is parsed whole"),
    result("SECRETS-ENV-001", "secrets", "high", "exposed", 'p "x"', "waived", "accepted", waiver={"reason": "r"}),
    result("RBAC-WILDCARD-001", "rbac", "high", ODD, "r", "skip", "not asked for"),
    result("TLS-CERT-001", "tls", "high", "hardened", "t", "fail", 'title: "status": "pass"', title='has "status": "pass" in it'),
]


def _as_a_comparison_reads_it(summary):
    kept = [{k: r[k] for k in trends.KEPT_FIELDS if k in r} for r in summary["results"] if r["status"] in trends.KEPT_STATUSES]
    return {k: v for k, v in summary.items() if k != "results"}, kept, trends._evaluated(summary)


def test_an_earlier_run_is_read_for_what_a_comparison_needs_and_nothing_else(tmp_path):
    """A summary this tool wrote is read a result per line; what it passed or found not applicable is kept only as
    what it evaluated. The comparison and the baseline are the same as with the whole file read."""
    from nimwarden.report import baseline

    summary = with_results(lab_summary(), EARLIER)
    run_dir = _written(tmp_path, "20261121T080000Z", summary)
    written = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    earlier = trends._parse_earlier(run_dir / "summary.json")
    head, kept, evaluated = _as_a_comparison_reads_it(written)
    assert {k: v for k, v in earlier.items() if k != "results"} == head
    assert earlier["results"] == kept and [r["status"] for r in kept] == ["fail", "fail", "error", "waived", "fail"]
    assert earlier.evaluated == evaluated and ("NIM-AUTH-001", ODD) in evaluated and ("RBAC-WILDCARD-001", ODD) in evaluated
    current = with_results(lab_summary(), [dict(A, status="pass"), dict(EARLIER[3], status="fail"), EARLIER[6]])
    assert trends.compare(earlier, current) == trends.compare(written, current)
    mine, theirs = json.loads(json.dumps(current)), json.loads(json.dumps(current))
    assert baseline.attach(mine, earlier, "s", False) == baseline.attach(theirs, written, "s", False) and mine == theirs
    assert baseline.read_baseline(run_dir) == earlier and baseline.read_baseline(run_dir).evaluated == evaluated  # --baseline FILE


def test_an_earlier_run_written_otherwise_is_read_whole_and_one_cut_short_is_no_run(tmp_path):
    summary = with_results(lab_summary(), EARLIER)
    for name, text in (("one-line", json.dumps(summary)), ("indented", json.dumps(summary, indent=2)),
                       ("results-first", json.dumps({"results": summary["results"], **summary}, indent=2))):
        path = tmp_path / name / "summary.json"
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
        earlier = trends._parse_earlier(path)
        head, kept, evaluated = _as_a_comparison_reads_it(summary)
        assert ({k: v for k, v in earlier.items() if k != "results"}, earlier["results"], earlier.evaluated) == (head, kept, evaluated), name
    whole = (_written(tmp_path, "20261121T080000Z", summary) / "summary.json").read_bytes()
    for cut in (len(whole) - 3, whole.index(b'"status": "waived"'), whole.index(b'"results": [') + 14):
        (tmp_path / "cut.json").write_bytes(whole[:cut])
        assert trends._parse_earlier(tmp_path / "cut.json") is None, cut


def test_a_summary_that_is_no_regular_file_is_passed_over_and_never_read(tmp_path):
    """A FIFO (opening it would wait for a writer) or a link to a device (reading it never ends) named summary.json
    is not an earlier run, nor a baseline."""
    import signal

    import pytest

    from nimwarden.report import baseline

    reports = tmp_path / "reports"
    _written(reports, "20261120T080000Z", with_results(lab_summary("2026-11-20T08:00:00Z"), [A]))
    (reports / "20261121T080000Z").mkdir()
    os.mkfifo(reports / "20261121T080000Z" / "summary.json")
    (reports / "20261122T080000Z").mkdir()
    os.symlink("/dev/zero", reports / "20261122T080000Z" / "summary.json")
    current_dir = reports / "20261123T080000Z"
    current_dir.mkdir()
    current = with_results(lab_summary(), [A])

    class Stuck(BaseException):  # not an OSError, which the readers take for "not a summary" and go on
        pass

    def stuck(*_):
        raise Stuck("a summary.json that is no regular file was read")

    before = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(10)  # what this guards against would wait for ever: a failure, not a hang
    try:
        assert trends.previous_run(reports, current_dir, "lab", covering=current)[0] == "20261120T080000Z"
        assert [p["run"] for p in trends.history(reports, current_dir, current)] == ["20261120T080000Z", "20261123T080000Z"]
        for name in ("20261121T080000Z", "20261122T080000Z"):
            with pytest.raises(ValueError, match="not a regular file"):
                baseline.read_baseline(reports / name)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)
