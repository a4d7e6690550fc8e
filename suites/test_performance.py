"""Performance suite (family performance): thin tests — measure through the perf probe, judge, verdict.

One measurement per (deployment, model, load level) serves both the
stability and the regression control. Settings come from the deployment's
``options.performance`` (nimwarden/perf/settings.py).
"""

from __future__ import annotations

import os

import pytest

from nimwarden.errors import ConfigError
from nimwarden.judges import perf as judge
from nimwarden.outcome import errored, not_applicable
from nimwarden.perf import baseline, session
from nimwarden.perf.probe import PerfProbe
from nimwarden.perf.settings import parse

pytestmark = pytest.mark.kinds("triton")


@pytest.fixture(scope="module")
def perf(target):
    """Factory: the module's PerfProbe for a deployment, so both controls share one measurement."""
    made: dict[str, PerfProbe] = {}

    def get(deployment) -> PerfProbe:
        if deployment.name not in made:
            made[deployment.name] = PerfProbe(target, deployment, parse(deployment, target.path))
        return made[deployment.name]

    return get


def _update_requested(config) -> bool:
    return bool(config.getoption("nimwarden_perf_update_baseline", default=False)
                or os.environ.get("NIMWARDEN_PERF_UPDATE_BASELINE") == "1")


def _levels(probe):
    return [(m, lvl) for m in probe.settings.models for lvl in probe.settings.levels]


@pytest.mark.control("PERF-STABLE-001")
def test_inference_load_is_stable_and_served(deployment, perf, verdict):
    probe = perf(deployment)
    verdict(judge.combine([(f"{m} {lvl.mode}", judge.stable_measurement(probe.measurement(m, lvl)))
                           for m, lvl in _levels(probe)]))


@pytest.mark.control("PERF-REGRESSION-001")
def test_inference_not_slower_than_baseline(deployment, target, perf, verdict, request):
    probe = perf(deployment)
    parts = []
    for model, lvl in _levels(probe):
        att = probe.measurement(model, lvl)
        path = baseline.path_for(target.name, deployment.name, model, root=probe.settings.baseline_dir)
        fp = probe.fingerprint(model, att.observation) if att.completed else {}
        if _update_requested(request.config):
            if att.completed and att.observation.stable and not att.observation.errors:
                saved = baseline.save(path, fp, lvl.mode, baseline.level_record(att.observation))
                runs = len((baseline.load(saved).level(lvl.mode) or {}).get("runs") or ())
                parts.append((f"{model} {lvl.mode}", not_applicable(f"baseline recorded now at {path} (explicit update; it now "
                                                                    f"holds {runs} run(s)); nothing to compare against", fingerprint=fp)))
            else:  # asked to record, and the run is not fit to be a baseline: say so, do not fall through to "no baseline"
                why = judge.stable_measurement(att)
                parts.append((f"{model} {lvl.mode}", errored(f"baseline not recorded at {path}: {why.reason}")))
            continue
        try:
            base = baseline.load(path)
        except ConfigError as exc:
            parts.append((f"{model} {lvl.mode}", errored(str(exc))))
            continue
        parts.append((f"{model} {lvl.mode}",
                      judge.regression(att, base, fp, probe.settings.tolerance, str(path))))
    verdict(judge.combine(parts))


@pytest.mark.control("PERF-UNDERLOAD-001")
def test_audit_causes_no_inference_failure(deployment, target, verdict):
    report = session.finish(deployment.name)
    if report is None:
        return verdict(not_applicable("audit under load was not requested (nimwarden audit --under-load)"))
    verdict(judge.under_load(report, parse(deployment, target.path).under_load.latency_tolerance))


@pytest.mark.control("PERF-LLM-001")
@pytest.mark.kinds("nim")
def test_llm_streaming_is_stable_and_served(deployment, perf, verdict):
    probe = perf(deployment)
    verdict(judge.combine([(f"stream {lvl.mode}", judge.stable_measurement(probe.stream(lvl)))
                           for lvl in probe.settings.levels]))
