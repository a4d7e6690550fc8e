"""The regression detector's statistic on recorded windows (tests/fixtures/perf/, recorded with
benchmarks/perf_detector.py --record on the project's 2-vCPU VM): nothing here times anything live.

windows_quiet.json: four runs of release A whose capacities agree within 3 % (the baseline), another
run of A, and a run of B (5 % more CPU work per request) measured the same night.
windows_noise.json: a baseline recorded under --noise and a run of A that the CPU hogs robbed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nimwarden.families.performance import baseline, detector, judge
from nimwarden.families.performance.loadgen import LoadSpec
from nimwarden.outcome import Attempt, Status

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "perf"
TOLERANCE = 0.05


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def pool(fx: dict) -> list[list[dict]]:
    return [r["windows"] for r in fx["baseline_runs"]]


def shifted(windows: list[dict], factor: float) -> list[dict]:
    return [dict(w, throughput=w["throughput"] * factor) for w in windows]


def test_the_recorded_baseline_is_one_a_five_percent_change_can_be_judged_against():
    runs = [detector.run_capacity(w, TOLERANCE) for w in pool(load("windows_quiet.json"))]
    caps = [r.capacity for r in runs]
    assert None not in caps and max(caps) / min(caps) - 1 <= TOLERANCE


def test_an_unshifted_recorded_run_passes():
    fx = load("windows_quiet.json")
    v = detector.judge_windows(fx["unchanged"]["windows"], pool(fx), TOLERANCE)
    assert v.status == "pass", v.reason
    assert "not slower than the baseline" in v.reason


def test_the_same_run_five_percent_slower_is_found():
    fx = load("windows_quiet.json")
    v = detector.judge_windows(shifted(fx["unchanged"]["windows"], 0.95), pool(fx), TOLERANCE)
    assert v.status == "fail", v.reason
    assert v.reason.startswith("regressed: throughput -") and "95% CI" in v.reason
    assert v.evidence["throughput_ratio"]["high"] < 1.0


def test_the_recorded_slower_release_is_found():
    fx = load("windows_quiet.json")
    v = detector.judge_windows(fx["slower"]["windows"], pool(fx), TOLERANCE)
    assert v.status == "fail", v.reason


def test_a_run_the_noise_robbed_is_refused_not_judged():
    fx = load("windows_noise.json")
    robbed = fx["robbed"]["windows"]
    assert sum((w["noise"] or 0) > 0.5 for w in robbed) >= 3  # the hogs ran through several of its windows
    v = detector.judge_windows(robbed, pool(fx), TOLERANCE)
    assert v.status == "error", v.reason
    # Refused for what it is: its windows scatter downwards from its best ones (the hogs only slow windows).
    assert "windows of this run came within 5% of its second-best one" in v.reason and "cannot be judged" in v.reason
    # The same windows with the hogs' windows left out would read as what they are: not slower.
    quiet_part = [w for w in robbed if not w["noise"]]
    assert detector.judge_windows(quiet_part, pool(fx), TOLERANCE).status == "pass"


def test_a_baseline_whose_runs_disagree_cannot_judge_a_five_percent_change():
    fx = load("windows_quiet.json")
    drifted = pool(fx) + [shifted(fx["baseline_runs"][0]["windows"], 1.2)]  # the machine got 20 % faster
    v = detector.judge_windows(fx["unchanged"]["windows"], drifted, TOLERANCE)
    assert v.status == "error" and "baseline's own runs differ" in v.reason, v.reason


def test_the_suite_judge_runs_the_same_statistic_on_a_stored_baseline(tmp_path):
    """judge.regression with a profile tolerance of 0.05, against a baseline file holding the recorded runs."""
    fx = load("windows_quiet.json")
    fp = baseline.fingerprint(server_version="2.51.0", model="add", model_versions=["1"], protocol="grpc",
                              input_shapes={"INPUT0": [4]})
    load_spec = LoadSpec(concurrency=2, window_s=1.0, max_windows=12, min_windows=12, tolerance=TOLERANCE)
    runs = [{"recorded_at": f"run {i}", "throughput": None, "windows": r} for i, r in enumerate(pool(fx))]
    level = {"recorded_at": "run 3", "throughput": None, "runs": runs, "windows": [w for r in runs for w in r["windows"]]}
    base = baseline.Baseline(tmp_path / "add.json", fp, {load_spec.mode: level})

    class Recorded:  # what judge.regression reads of a loadgen Measurement
        def __init__(self, windows):
            self.windows = tuple(_Window(w) for w in windows)
            self.model, self.load, self.errors = "add", load_spec, 0

        def evidence(self):
            return {"windows": [w.d for w in self.windows]}

    out = judge.regression(Attempt("perf.loadgen", "recorded", Recorded(fx["unchanged"]["windows"]), None, 0.0), base, fp,
                           TOLERANCE, "recorded")
    assert out.status is Status.PASS, out.reason
    out = judge.regression(Attempt("perf.loadgen", "recorded", Recorded(shifted(fx["unchanged"]["windows"], 0.95)), None, 0.0),
                           base, fp, TOLERANCE, "recorded")
    assert out.status is Status.FAIL and "regressed" in out.reason, out.reason


class _Window:
    def __init__(self, d):
        self.d, self.throughput, self.steal, self.completed = d, d["throughput"], d.get("steal"), 1
        self.latency = type("L", (), {"p99_us": d["p99_us"]})()


@pytest.mark.parametrize("tolerance", [0.05, 0.10])
def test_profile_tolerances_are_accepted(tolerance):
    from nimwarden.families.performance import settings  # noqa: F401 - validation lives there (0.01-0.9)

    fx = load("windows_quiet.json")
    assert detector.judge_windows(fx["unchanged"]["windows"], pool(fx), tolerance).status == "pass"
