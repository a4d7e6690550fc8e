"""Performance (family performance): thin tests — measure through the perf probe, judge, verdict.

One measurement per (deployment, model, load level), from the probe cache, serves both the
stability and the regression control. Settings come from the deployment's ``options.performance``
(nimwarden/families/performance/settings.py).
"""

from __future__ import annotations

import pytest

from nimwarden.families.performance import judge, session
from nimwarden.families.performance.probe import PerfProbe
from nimwarden.families.performance.regression import regression_checks
from nimwarden.families.performance.settings import parse

pytestmark = pytest.mark.kinds("triton")


@pytest.mark.control("PERF-STABLE-001")
def test_inference_load_is_stable_and_served(deployment, probes, verdict):
    probe = probes(PerfProbe.for_deployment, deployment)
    verdict(judge.combine([(f"{m} {lvl.mode}", judge.stable_measurement(probe.measurement(m, lvl))) for m, lvl in probe.levels()]))


@pytest.mark.control("PERF-REGRESSION-001")
def test_inference_not_slower_than_baseline(target, deployment, probes, run_switches, verdict):
    probe = probes(PerfProbe.for_deployment, deployment)
    verdict(judge.combine(regression_checks(probe, target.name, deployment.name, run_switches["perf_update_baseline"],
                                            run_switches["baseline_dir"])))


@pytest.mark.control("PERF-UNDERLOAD-001")
def test_audit_causes_no_inference_failure(target, deployment, verdict):
    verdict(judge.under_load(session.finish(deployment.name), parse(deployment, target.path).under_load.latency_tolerance))


@pytest.mark.control("PERF-LLM-001")
@pytest.mark.kinds("nim")
def test_llm_streaming_is_stable_and_served(deployment, probes, verdict):
    probe = probes(PerfProbe.for_deployment, deployment)
    verdict(judge.combine([(f"stream {lvl.mode}", judge.stable_measurement(probe.stream(lvl))) for lvl in probe.settings.levels]))
