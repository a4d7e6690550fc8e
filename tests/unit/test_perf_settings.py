"""options.performance of a deployment: defaults, and errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from nimwarden.errors import ConfigError
from nimwarden.families.performance.settings import parse
from nimwarden.target import Credential, Deployment, KubernetesRef


def dep(kind="triton", **perf):
    return Deployment(name="d", kind=kind, expect="compliant", endpoints={}, exposure=(), models=("add",),
                      credentials={"gw": Credential("gw", "Authorization", "GW_TOKEN", None)}, must_fail=(),
                      kubernetes=KubernetesRef(), options={"performance": perf} if perf else {})


def test_defaults_follow_perf_analyzer():
    s = parse(dep(), "lab.yaml")
    assert s.models == ("add",) and s.protocol == "grpc" and s.tolerance == 0.10
    (level,) = s.levels
    assert (level.concurrency, level.window_s, level.max_windows, level.rate) == (1, 5.0, 10, None)
    nim = parse(dep("nim"), "lab.yaml")
    assert nim.protocol == "http" and nim.levels[0].window_s == 10.0  # perf_analyzer's LLM window


def test_levels_rate_and_under_load():
    s = parse(dep(concurrency=[1, 4], tolerance=0.2, under_load={"rate": None, "concurrency": 3}), "p.yaml")
    assert [lv.concurrency for lv in s.levels] == [1, 4] and all(lv.tolerance == 0.2 for lv in s.levels)
    assert s.under_load.rate is None and s.under_load.concurrency == 3
    r = parse(dep(rate=200, arrival="poisson"), "p.yaml")
    assert r.levels[0].rate == 200 and r.levels[0].arrival == "poisson"


@pytest.mark.parametrize("perf,field", [
    ({"concurency": [1]}, "options.performance.concurency"),
    ({"concurrency": [0]}, "options.performance.concurrency[0]"),
    ({"concurrency": "4"}, "options.performance.concurrency"),
    ({"tolerance": 5}, "options.performance.tolerance"),
    ({"protocol": "udp"}, "options.performance.protocol"),
    ({"credential": "nope"}, "options.performance.credential"),
    ({"shapes": {"add": {"INPUT0": [-1]}}}, "options.performance.shapes.add.INPUT0[0]"),  # the dimension itself (issue 25)
    ({"under_load": {"rps": 5}}, "options.performance.under_load.rps"),  # the unknown key itself (issue 25)
    ({"arrival": "bursty", "rate": 5}, "options.performance.arrival"),
])
def test_bad_settings_name_file_and_field(perf, field):
    with pytest.raises(ConfigError) as exc:
        parse(dep(**perf), "targets/x.yaml")
    assert str(exc.value).startswith(f"targets/x.yaml: deployments[d].{field}:")


def test_baseline_dir_defaults_beside_the_reports_and_resolves_against_the_profile(tmp_path):
    assert parse(dep(), tmp_path / "p.yaml").baseline_dir is None  # the run's <--reports-dir>/baselines
    assert parse(dep(baseline_dir="perf/base"), tmp_path / "p.yaml").baseline_dir == (tmp_path / "perf" / "base").resolve()
    assert parse(dep(baseline_dir="/srv/base"), tmp_path / "p.yaml").baseline_dir == Path("/srv/base")
    with pytest.raises(ConfigError, match="baseline_dir"):
        parse(dep(baseline_dir=7), tmp_path / "p.yaml")


def test_regression_looks_for_baselines_beside_the_reports_dir(tmp_path):
    """Issue 15: baselines used to land in ./reports/baselines of the working directory, whatever --reports-dir said."""
    from types import SimpleNamespace

    from nimwarden.families.performance.regression import regression_checks
    from nimwarden.outcome import Attempt

    def probe(baseline_dir):
        level = SimpleNamespace(mode="concurrency=1")
        return SimpleNamespace(levels=lambda: [("add", level)], measurement=lambda m, lvl: Attempt("perf", "measure", object(), None),
                               fingerprint=lambda m, obs: {}, settings=SimpleNamespace(baseline_dir=baseline_dir, tolerance=0.1))

    reports = tmp_path / "my-reports"
    ((_, out),) = regression_checks(probe(None), "lab", "hardened", False, reports / "baselines")
    assert f"no baseline recorded at {reports / 'baselines' / 'lab' / 'hardened' / 'add.json'}" in out.reason
    ((_, own),) = regression_checks(probe(tmp_path / "elsewhere"), "lab", "hardened", False, reports / "baselines")
    assert str(tmp_path / "elsewhere" / "lab") in own.reason


def test_the_run_puts_baselines_beside_its_reports_dir(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from nimwarden.plugin import _run_switches

    monkeypatch.delenv("NIMWARDEN_REPORTS_DIR", raising=False)
    config = SimpleNamespace(getoption=lambda name, default=None: str(tmp_path / "r") if name == "nimwarden_reports_dir" else default)
    assert _run_switches(config)["baseline_dir"] == str(tmp_path / "r" / "baselines")
