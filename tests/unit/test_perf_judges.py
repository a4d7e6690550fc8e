"""The performance judges: good case passes, bad case fails, broken probe errors, not comparable is n/a."""

from __future__ import annotations

import numpy as np

from nimwarden.families.performance import baseline, judge
from nimwarden.families.performance.loadgen import LoadSpec, Measurement
from nimwarden.families.performance.stats import summarize_latency
from nimwarden.families.performance.underload import UnderLoadReport
from nimwarden.families.performance.windows import Window, merge, stability
from nimwarden.outcome import Attempt, Status

LOAD = LoadSpec(concurrency=4, window_s=1.0)


def measurement(tputs=(1000, 1000, 1000, 1000), lat_us=500.0, errors=0, seed=0, steal=None, client_cpu_s=0.2,
                processes=1) -> Measurement:
    rng = np.random.default_rng(seed)
    steal = steal or (None,) * len(tputs)
    windows = tuple(Window(i, 1.0, int(t), errors if i == 0 else 0, lat_us * (1 + rng.normal(0, 0.01, int(t))), steal[i],
                           client_cpu_s)
                    for i, t in enumerate(tputs))
    tput, lat, _ = merge(windows[-3:])
    return Measurement("grpc://127.0.0.1:1", "add", LOAD, windows, stability(windows, LOAD.tolerance), tput, lat,
                       errors, ("RequestFailed: x",) if errors else (), 0, None, "no metrics", client_processes=processes)


def ok(obs):
    return Attempt("perf.loadgen", "concurrency 4 on add", obs, None, 1.0)


BROKEN = Attempt("perf.loadgen", "concurrency 4 on add", None, "ConnectionRefusedError: refused", 0.1)


def test_stable_measurement_pass_fail_error():
    assert judge.stable_measurement(ok(measurement())).status is Status.PASS
    failed = judge.stable_measurement(ok(measurement(errors=3)))
    assert failed.status is Status.FAIL and "3 of" in failed.reason
    unstable = judge.stable_measurement(ok(measurement(tputs=(1000, 600, 1000, 1400))))
    assert unstable.status is Status.ERROR and "did not stabilize" in unstable.reason
    assert judge.stable_measurement(BROKEN).status is Status.ERROR


def test_every_measurement_records_the_clients_own_cost():
    m = measurement(client_cpu_s=0.25)
    client = m.evidence()["client"]
    assert client["cpu_ms_per_1000_requests"] == 250.0  # 0.25 s CPU for 1,000 requests a window
    assert client["busy_share"] == 0.25 and client["processes"] == 1 and not client["bottleneck"]
    unknown = measurement(client_cpu_s=None).evidence()["client"]
    assert unknown["busy_share"] is None and not unknown["bottleneck"]


def test_stable_errors_naming_the_client_when_it_was_the_bottleneck():
    saturated = judge.stable_measurement(ok(measurement(client_cpu_s=0.97)))
    assert saturated.status is Status.ERROR and "load generator, not the server" in saturated.reason and "97%" in saturated.reason
    # two processes at 0.97 s CPU a window together are only half busy
    assert judge.stable_measurement(ok(measurement(client_cpu_s=0.97, processes=2))).status is Status.PASS


def _baseline(tmp_path, fp, tputs=(1000, 1000, 1000, 1000)):
    path = baseline.path_for("lab", "hardened", "add", root=tmp_path)
    baseline.save(path, fp, LOAD.mode, baseline.level_record(measurement(tputs, seed=9)))
    return baseline.load(path), str(path)


FP = baseline.fingerprint(server_version="2.51.0", model="add", model_versions=["1"], protocol="grpc",
                          input_shapes={"INPUT0": [4]})


def test_regression_fails_with_the_interval_on_a_slower_release(tmp_path):
    base, path = _baseline(tmp_path, FP)
    slower = measurement(tputs=(900, 900, 900, 900), lat_us=550.0)
    out = judge.regression(ok(slower), base, FP, 0.10, path)
    assert out.status is Status.FAIL
    assert "regressed: throughput -10.0%" in out.reason and "95% CI" in out.reason


def test_regression_passes_an_unchanged_release(tmp_path):
    base, path = _baseline(tmp_path, FP)
    out = judge.regression(ok(measurement(seed=3)), base, FP, 0.10, path)
    assert out.status is Status.PASS, out.reason


def test_regression_not_applicable_without_baseline_or_in_another_environment(tmp_path):
    out = judge.regression(ok(measurement()), None, FP, 0.10, "reports/baselines/lab/hardened/add.json")
    assert out.status is Status.NOT_APPLICABLE and "no baseline" in out.reason
    base, path = _baseline(tmp_path, FP)
    other = dict(FP, triton_version="2.59.1")
    out = judge.regression(ok(measurement()), base, other, 0.10, path)
    assert out.status is Status.NOT_APPLICABLE and "triton_version" in out.reason
    base16 = baseline.Baseline(base.path, base.fingerprint, {"concurrency 16": base.levels[LOAD.mode]})
    assert judge.regression(ok(measurement()), base16, FP, 0.10, path).status is Status.NOT_APPLICABLE


def test_regression_errors_on_broken_runs_and_on_disturbed_runs_that_read_slower(tmp_path):
    """Instability is PERF-STABLE's verdict; the detector refuses only a disturbed run that reads slower
    (interference can fake a slowdown, never hide one, so a disturbed run that is not slower passes)."""
    base, path = _baseline(tmp_path, FP)
    assert judge.regression(BROKEN, base, FP, 0.10, path).status is Status.ERROR
    unstable = measurement(tputs=(1000, 600, 1000, 1050))
    assert judge.regression(ok(unstable), base, FP, 0.10, path).status is Status.PASS
    much_faster = measurement(tputs=(1200, 1250, 1200, 1250))  # the machine, or the release: the baseline is stale
    out = judge.regression(ok(much_faster), base, FP, 0.10, path)
    assert out.status is Status.ERROR and "faster than every baseline run" in out.reason
    disturbed_slower = measurement(tputs=(900, 600, 700, 650, 800, 500))
    out = judge.regression(ok(disturbed_slower), base, FP, 0.10, path)
    assert out.status is Status.ERROR and "cannot judge" in out.reason and "windows of this run came within" in out.reason


def test_regression_compares_only_windows_the_hypervisor_did_not_rob(tmp_path):
    """Windows with more than 5 % CPU steal measure the host, not the server: left out, or an error if too few remain."""
    base, path = _baseline(tmp_path, FP, tputs=(1000, 1000, 1000, 1000, 1000, 1000))
    # A slower release measured while the hypervisor also stole CPU in two windows: still caught, from the clean four.
    robbed = measurement(tputs=(500, 600, 900, 900, 900, 900), lat_us=550.0, steal=(0.4, 0.3, 0.01, 0.02, 0.0, 0.01))
    out = judge.regression(ok(robbed), base, FP, 0.10, path)
    assert out.status is Status.FAIL and "-10.0%" in out.reason, out.reason
    # An unchanged release whose robbed windows would read as a 20 % regression: not a finding.
    same = measurement(tputs=(700, 800, 1000, 1000, 1000, 1000), steal=(0.35, 0.25, 0.02, 0.0, 0.01, 0.03))
    assert judge.regression(ok(same), base, FP, 0.10, path).status is Status.PASS
    # Too few clean windows. Steal only slows a run down, so what still stands is said; the rest is an error.
    robbed = (0.3, 0.2, 0.04, 0.25)
    busy_same = measurement(tputs=(1000, 1000, 1000, 1000), steal=robbed)
    out = judge.regression(ok(busy_same), base, FP, 0.10, path)
    assert out.status is Status.PASS and "even with 30% CPU steal" in out.reason, out.reason  # not slower, even robbed
    busy_slower = measurement(tputs=(920, 920, 920, 920), lat_us=540.0, steal=robbed)
    out = judge.regression(ok(busy_slower), base, FP, 0.10, path)
    assert out.status is Status.ERROR and "CPU steal under 5%" in out.reason and "worst 30%" in out.reason, out.reason
    # Steal is the machine's average over its CPUs: a server on one of two loses up to twice it, so only a
    # drop beyond 2 x 30 % + the tolerance stands as a regression.
    collapsed = measurement(tputs=(200, 200, 200, 200), lat_us=2400.0, steal=robbed)
    out = judge.regression(ok(collapsed), base, FP, 0.10, path)
    assert out.status is Status.FAIL and "more than the 30% CPU steal" in out.reason, out.reason
    # A robbed baseline cannot vouch for an unchanged run: it may hide a slowdown.
    robbed_base, robbed_path = _baseline(tmp_path / "robbed", FP)
    robbed_base.levels[LOAD.mode]["windows"] = [dict(w, steal=0.3) for w in robbed_base.levels[LOAD.mode]["windows"]]
    robbed_base.levels[LOAD.mode]["runs"][0]["windows"] = robbed_base.levels[LOAD.mode]["windows"]  # the judge reads runs
    out = judge.regression(ok(measurement(seed=4)), robbed_base, FP, 0.10, robbed_path)
    assert out.status is Status.ERROR and "windows of the baseline" in out.reason, out.reason


def report(failed=0, before=5.0, after=5.0, ref=500.0, during=520.0, note="from metrics"):
    return UnderLoadReport("grpc://127.0.0.1:1", "add", "rate 50/s", 30.0, 1500, failed, (), summarize_latency([ref] * 10),
                           summarize_latency([during] * 10), before, after, note)


def test_under_load_outcomes():
    assert judge.under_load(ok(report()), 0.5).status is Status.PASS
    bad = judge.under_load(ok(report(failed=1)), 0.5)
    assert bad.status is Status.FAIL and bad.severity == "critical" and "harness itself" in bad.reason
    counter = judge.under_load(ok(report(after=6.0)), 0.5)
    assert counter.status is Status.FAIL and counter.severity == "critical"
    slow = judge.under_load(ok(report(during=900.0)), 0.5)
    assert slow.status is Status.FAIL and "p50" in slow.reason
    assert judge.under_load(ok(report(after=None)), 0.5).status is Status.ERROR
    assert judge.under_load(BROKEN, 0.5).status is Status.ERROR
    # no metrics endpoint declared: the client-side count still decides, and the reason says so
    no_metrics = judge.under_load(ok(report(before=None, after=None)), 0.5)
    assert no_metrics.status is Status.PASS and "only the client's count" in no_metrics.reason
