"""Statistics, windows, stability and the regression detector: behaviours that must not drift."""

from __future__ import annotations

import numpy as np
import pytest

from nimwarden.families.performance import detector
from nimwarden.families.performance.stats import bootstrap_ratio, nearest_rank, spread, summarize_latency
from nimwarden.families.performance.windows import Window, merge, stability, window_from_slices


def test_nearest_rank_matches_perf_analyzer_convention():
    values = np.arange(1, 101, dtype=float)  # 1..100
    assert nearest_rank(values, 50) == 50
    assert nearest_rank(values, 99) == 99
    assert nearest_rank(values, 100) == 100
    assert nearest_rank(np.array([7.0]), 99) == 7.0
    with pytest.raises(ValueError):
        nearest_rank(np.array([]), 50)


def test_summary_of_unsorted_latencies():
    s = summarize_latency([30, 10, 20, 40])
    assert (s.count, s.avg_us, s.p50_us, s.p99_us) == (4, 25.0, 20.0, 40.0)


def test_spread_is_max_over_min_minus_one():
    assert spread([100, 110, 105]) == pytest.approx(0.10)
    assert spread([0, 5]) == float("inf")


def _window(i, tput, lat_us, n=100, errors=0):
    return Window(i, n / tput, n, errors, np.full(n, float(lat_us)))


def test_stability_needs_three_windows_within_tolerance_for_both_figures():
    steady = [_window(i, 1000, 500) for i in range(3)]
    assert stability(steady, 0.10).stable
    assert not stability(steady[:2], 0.10).stable  # fewer than three windows is never stable
    noisy_tput = [_window(0, 1000, 500), _window(1, 1200, 500), _window(2, 1000, 500)]
    assert not stability(noisy_tput, 0.10).stable
    noisy_lat = [_window(0, 1000, 500), _window(1, 1000, 600), _window(2, 1000, 500)]
    assert not stability(noisy_lat, 0.10).stable
    # only the last three count: an early outlier is forgiven
    assert stability([_window(9, 10, 9000)] + steady, 0.10).stable


def test_an_empty_window_is_unstable():
    empty = Window(2, 1.0, 0, 5, np.array([]))
    assert not stability([_window(0, 1000, 500), _window(1, 1000, 500), empty], 0.5).stable


def test_window_from_slices_excludes_failed_requests_from_latency():
    starts = [0, 1000, 2000]
    ends = [500_000, 1_001_000, 2_000_000_000]  # the last one "took" 2 s but failed
    mask = np.array([False, False, True])
    w = window_from_slices(0, 1.0, starts, ends, mask)
    assert (w.completed, w.errors) == (2, 1)
    assert w.latency.p99_us == pytest.approx(1000.0)


def test_merge_weights_windows_by_duration():
    tput, lat, errors = merge([_window(0, 100, 10), _window(1, 300, 30, errors=2)])
    assert tput == pytest.approx(200 / (1 + 1 / 3))
    assert lat.count == 200 and errors == 2


def test_bootstrap_ratio_interval_brackets_the_truth_and_excludes_one_for_a_clear_drop():
    rng = np.random.default_rng(1)
    base = 1000 + rng.normal(0, 10, 8)
    slow = 900 + rng.normal(0, 10, 8)
    iv = bootstrap_ratio(slow, base)
    assert iv.low < 0.9 < iv.high + 0.01
    assert iv.high < 1.0
    same = bootstrap_ratio(1000 + rng.normal(0, 10, 8), base)
    assert same.low < 1.0 < same.high


def test_bootstrap_is_reproducible_with_a_seed_and_rejects_tiny_samples():
    a, b = [1.0, 1.1, 0.9, 1.05], [1.0, 1.02, 0.98, 1.01]
    assert bootstrap_ratio(a, b, seed=3) == bootstrap_ratio(a, b, seed=3)
    with pytest.raises(ValueError):
        bootstrap_ratio([1.0], b)


def _samples(tput, p99, noise, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return detector.Samples(tuple(tput * (1 + rng.normal(0, noise, n))), tuple(p99 * (1 + rng.normal(0, noise, n))))


def test_detector_flags_a_ten_percent_slowdown_and_states_the_interval():
    base = _samples(1000, 5000, 0.01, seed=1)
    slower = _samples(910, 5500, 0.01, seed=2)
    c = detector.compare(slower, base, tolerance=0.10)
    assert c.regressed and c.throughput_regressed
    assert 0.88 < c.throughput_ratio.estimate < 0.94 and c.throughput_ratio.low < c.throughput_ratio.estimate < c.throughput_ratio.high
    assert f"throughput {(c.throughput_ratio.estimate - 1) * 100:+.1f}% (95% CI" in c.describe()


def test_windows_spoiled_by_interference_neither_hide_a_slowdown_nor_raise_a_false_alarm():
    """Interference only slows windows down: two of six spoiled windows (-20 %) in either run change nothing."""
    clean = _samples(1000, 5000, 0.005, seed=11)
    spoiled_base = detector.Samples((800.0, 810.0, *clean.throughput[2:]), (7000.0, 6900.0, *clean.p99_us[2:]))
    slower = _samples(900, 5500, 0.005, seed=12)
    assert detector.compare(slower, spoiled_base).throughput_regressed  # a spoiled baseline does not mask -10 %
    spoiled_same = _samples(1000, 5000, 0.005, seed=13)
    spoiled_same = detector.Samples((790.0, 805.0, *spoiled_same.throughput[2:]), (7100.0, 6800.0, *spoiled_same.p99_us[2:]))
    assert not detector.compare(spoiled_same, clean).regressed  # a spoiled current run is not a regression
    # The plain mean would have been fooled both ways: this is what the best-half statistic is for.
    mean = np.mean
    assert mean(slower.throughput) / mean(spoiled_base.throughput) > 0.95
    assert mean(spoiled_same.throughput) / mean(clean.throughput) < 0.95


def test_p99_pages_only_beyond_the_full_tolerance():
    base = _samples(1000, 5000, 0.01, seed=1)
    assert not detector.compare(_samples(1000, 5500, 0.01, seed=2), base).p99_regressed  # +10 %: a tail wobble
    blown = detector.compare(_samples(1000, 7000, 0.01, seed=2), base)
    assert blown.p99_regressed and blown.regressed and not blown.throughput_regressed


def test_detector_stays_quiet_on_noise_and_on_improvements():
    base = _samples(1000, 5000, 0.02, seed=3)
    for seed in range(4, 14):
        assert not detector.compare(_samples(1000, 5000, 0.02, seed=seed), base).regressed
    assert not detector.compare(_samples(1200, 4000, 0.01, seed=5), base).regressed


def test_detector_ignores_a_significant_but_tiny_drift():
    base = _samples(1000, 5000, 0.001, seed=6)
    drift = _samples(980, 5050, 0.001, seed=7)  # -2 %: significant with this little noise, below min_change
    c = detector.compare(drift, base, tolerance=0.10)
    assert c.throughput_ratio.high < 1.0
    assert not c.regressed


def test_detector_does_not_page_on_a_large_but_noisy_change():
    base = detector.Samples((1000, 700, 1300, 1000), (5000, 5000, 5000, 5000))
    cur = detector.Samples((900, 600, 1250, 850), (5000, 5000, 5000, 5000))
    assert not detector.compare(cur, base).throughput_regressed


def test_detector_needs_three_windows_each():
    with pytest.raises(ValueError, match="windows"):
        detector.compare(detector.Samples((1.0, 1.0), (1.0, 1.0)), _samples(1, 1, 0.01))

