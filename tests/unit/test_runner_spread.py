"""Judging spread over a forked child (nimwarden.runner.judge_all): order, fallback, secrets."""

from __future__ import annotations

import os

import pytest

from nimwarden import redact
from nimwarden.runner import judge_all


@pytest.fixture
def two(monkeypatch):
    monkeypatch.setenv("NIMWARDEN_JUDGE_PROCESSES", "2")


def cases(n):
    return [(f"suites/test_x.py::test_x[{i}]", None, None, {"i": i}) for i in range(n)]


def test_the_second_half_comes_back_from_the_child_in_order(two):
    parent = os.getpid()
    results, by = judge_all(cases(40), lambda nodeid, fn, control, params: {"nodeid": nodeid, "pid": os.getpid()},
                            lambda case: True)
    assert by == "two processes"
    assert [r["nodeid"] for r in results] == [c[0] for c in cases(40)]
    pids = [r["pid"] for r in results]
    assert pids[:20] == [parent] * 20 and parent not in pids[20:] and len(set(pids[20:])) == 1


def test_the_split_halves_the_cases_that_apply_not_all_cases(two):
    # the first 30 cases are not applicable (cheap): the child takes the second half of the 10 that apply
    results, _ = judge_all(cases(40), lambda nodeid, fn, control, params: {"i": params["i"], "pid": os.getpid()},
                           lambda case: case[3]["i"] >= 30)
    assert [r["i"] for r in results if r["pid"] != os.getpid()] == list(range(35, 40))


def test_a_child_that_fails_leaves_its_half_to_the_parent(two):
    parent = os.getpid()

    def judge(nodeid, fn, control, params):
        if os.getpid() != parent:
            os._exit(3)  # the child dies without a word
        return {"nodeid": nodeid, "pid": os.getpid()}

    results, by = judge_all(cases(10), judge, lambda case: True)
    assert by == "one process (the second failed)"
    assert [r["nodeid"] for r in results] == [c[0] for c in cases(10)] and {r["pid"] for r in results} == {parent}


def test_a_secret_the_child_learnt_is_redacted_by_the_parent(two):
    secret = "child-learnt-" + os.urandom(6).hex()

    def judge(nodeid, fn, control, params):
        if params["i"] == 9:
            redact.register(secret)  # e.g. a literal key found in a manifest
        return {"nodeid": nodeid}

    assert secret not in redact.known()
    _, by = judge_all(cases(10), judge, lambda case: True)
    assert by == "two processes"
    assert secret in redact.known() and secret not in redact.redact_text(f"value={secret}")


def test_few_cases_are_judged_in_one_process(monkeypatch):
    monkeypatch.delenv("NIMWARDEN_JUDGE_PROCESSES", raising=False)
    results, by = judge_all(cases(10), lambda nodeid, fn, control, params: {"pid": os.getpid()}, lambda case: True)
    assert by == "one process" and {r["pid"] for r in results} == {os.getpid()}
    monkeypatch.setenv("NIMWARDEN_JUDGE_PROCESSES", "1")
    _, by = judge_all(cases(5000), lambda nodeid, fn, control, params: {}, lambda case: True)
    assert by == "one process"


def test_nothing_is_forked_while_another_thread_runs(monkeypatch, tmp_path):
    """A program calling nimwarden.cli.main may run threads: a child forked while one of them holds a lock would
    wait on it forever, so judging, the manifests' reading and the report writers stay in this process (unless
    NIMWARDEN_JUDGE_PROCESSES=2 forces the forks, as the tests do)."""
    import threading

    from nimwarden import forked
    from nimwarden.k8s import beside
    from nimwarden.report import _beside
    from tests.unit.test_read_beside import Section

    monkeypatch.delenv("NIMWARDEN_JUDGE_PROCESSES", raising=False)
    monkeypatch.setattr(forked, "cpus", lambda: 2)
    monkeypatch.setattr(beside, "BESIDE_FROM", 1)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert not forked.safe() and forked.fork_piped() is None and forked.safe(force=True)
        results, by = judge_all(cases(4000), lambda nodeid, fn, control, params: {"pid": os.getpid()}, lambda case: True)
        assert by == "one process" and {r["pid"] for r in results} == {os.getpid()}
        (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: n}\n"
                                           "spec: {containers: [{name: c}]}\n", encoding="utf-8")
        assert beside.start(Section("manifests", (str(tmp_path),))) is None
        wrote: list = []
        join = _beside((lambda run_dir, summary: wrote.append(os.getpid()),), tmp_path, {})
        join()
        assert wrote == [os.getpid()]  # written here, at the join
    finally:
        stop.set()
        other.join()


def test_a_report_writer_that_dies_beside_leaves_its_files_to_be_written_here(tmp_path, monkeypatch, capsys):
    """Every writer beside (allure-results/ and OSCAL from the results as judged; SARIF, junit.xml and the results'
    part of summary.json once the baseline is attached) may die: its files are written by the audit's own process,
    once each, and the run is the run a healthy one writes."""
    import json

    from nimwarden import cli
    from nimwarden.report import junit, oscal, sarif, summary
    from tests import corpus

    monkeypatch.setenv("NIMWARDEN_JUDGE_PROCESSES", "2")  # every fork, whatever the size
    profile = corpus.one_pod_profile(tmp_path)

    def audit(reports):
        assert cli.main(["audit", "--target", str(profile), "--reports-dir", str(reports)]) == 3  # one error: a NIM image unknown
        (run,) = [p for p in reports.iterdir() if p.name != "latest"]
        return run

    healthy = audit(tmp_path / "healthy")
    parent = os.getpid()

    def dying(real):
        def write(*args, **kwargs):
            out = real(*args, **kwargs)  # written whole (allure-results/: every file), then the child dies
            if os.getpid() != parent:
                os._exit(3)
            return out
        return write

    for module, name in ((junit, "write_allure_results"), (oscal, "write_oscal"), (sarif, "write_sarif"),
                         (junit, "write_junit"), (summary, "write_results")):
        monkeypatch.setattr(module, name, dying(getattr(module, name)))
    run = audit(tmp_path / "dying")
    capsys.readouterr()
    names = sorted(p.name for p in run.iterdir())
    assert names == sorted(p.name for p in healthy.iterdir())  # every file, and no leftover
    assert len(list((run / "allure-results").iterdir())) == len(list((healthy / "allure-results").iterdir()))  # once each
    strip = lambda s: [{k: v for k, v in r.items() if k != "duration_s"} for r in s["results"]]  # noqa: E731
    assert strip(json.loads((run / "summary.json").read_text())) == strip(json.loads((healthy / "summary.json").read_text()))
    assert json.loads((run / "oscal-assessment-results.json").read_text())["assessment-results"]["results"][0]["findings"]
