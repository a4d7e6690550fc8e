"""`nimwarden report RUN_DIR` on a summary.json someone edited, or that a full disk cut short: one line naming the
field and exit 2, or every report written — never a writer's AttributeError as "a bug in nimwarden" (exit 70,
found by hand: a result replaced by a list).

The property: a summary.json that report.summary.shape_problem accepts is one every writer can write, whatever
values its results and sections hold (hypothesis mutates a real run's summary, the way a hand edits one)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nimwarden.report import write_all
from nimwarden.report.summary_shape import shape_problem
from tests.conftest import ROOT, run_audit

ODD = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**12), st.floats(allow_nan=True), st.text(max_size=12),
                st.sampled_from(["", "pass", "fail", "error", "not_applicable", "critical", "-", "?", "<script>", "\x1b[31m"]),
                st.lists(st.text(max_size=4), max_size=3), st.lists(st.integers(), max_size=2),
                st.dictionaries(st.text(max_size=6), st.text(max_size=6) | st.integers(), max_size=3))


@pytest.fixture(scope="module")
def real_summary(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edited")
    proc, summary = run_audit(ROOT / "targets" / "helm-review.yaml", tmp / "reports", timeout=120)
    assert summary is not None, proc.stderr[-2000:]
    summary["results"] = summary["results"][:40]  # a few of each status: quick to write, every writer exercised
    return summary


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_summary_the_shape_check_accepts_is_written_whatever_it_holds(real_summary, tmp_path_factory, data):
    summary = copy.deepcopy(real_summary)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.sampled_from(["result", "section", "top", "drop"]))
        if where == "drop":  # a key lost (cut short, or deleted by hand)
            r = data.draw(st.sampled_from([summary, *summary["results"]]))
            r.pop(data.draw(st.sampled_from(sorted(r))), None)
        elif where == "result":
            r = data.draw(st.sampled_from(summary["results"]))
            r[data.draw(st.sampled_from(sorted({*r, "waiver", "baseline_state", "expected"})))] = data.draw(ODD)
        elif where == "section":
            key = data.draw(st.sampled_from([k for k in ("run", "data", "trend", "kubernetes", "totals") if isinstance(summary.get(k), dict)] or ["run"]))
            section = summary.setdefault(key, {})
            section[data.draw(st.sampled_from(sorted({*section, "options", "fail_on", "counts", "objects"})))] = data.draw(ODD)
        else:
            summary[data.draw(st.sampled_from(["target", "started_at", "finished_at", "interrupted", "exit_status", "warnings",
                                                "waiver_findings", "schema"]))] = data.draw(ODD)
    if shape_problem(summary) is not None:
        event("refused by the shape check")
        return  # said in one line (the CLI test below)
    event("written")
    out = tmp_path_factory.mktemp("written")
    write_all(out, json.loads(json.dumps(summary, default=str)))
    assert (out / "report.html").stat().st_size > 0


@pytest.mark.parametrize(("document", "words"), [
    ("[]", "the document is a list"),
    ('{"results": {"a": 1}}', "results: input should be a valid list (found dict)"),
    ('{"results": [[1, 2]]}', "results[0]: input should be a valid dictionary or instance of result (found list)"),
    ('{"results": [{"status": 5}], "started_at": "x"}', "results[0].status: input should be 'pass', 'fail', 'error', 'skip', 'not_applicable' or 'waived' (found 5)"),
    ('{"results": [{"status": "fail", "control": null, "evidence": "x"}], "started_at": "x"}', "results[0].evidence: input should be a valid dictionary (found 'x')"),
    ('{"results": [], "started_at": "x", "totals": {"fail": null}}', "totals.fail: input should be a valid integer (found None)"),
    ('{"results": []}', "started_at: field required"),
])
def test_report_on_an_edited_summary_is_one_line_exit_2(tmp_path, document, words):
    (tmp_path / "summary.json").write_text(document)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    proc = subprocess.run([sys.executable, "-m", "nimwarden.cli", "report", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr, proc.stderr
