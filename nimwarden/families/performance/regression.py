"""PERF-REGRESSION's flow for one deployment: judge each (model, load level) measurement against its
baseline, or, when the run was asked to (``--perf-update-baseline``), record the measurement as a
baseline run instead. Recording from a run that is not fit to be a baseline is an error, never a
silent "no baseline"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nimwarden.errors import ConfigError
from nimwarden.families.performance import baseline, detector
from nimwarden.families.performance import judge as perf_judge
from nimwarden.outcome import Outcome, errored, not_applicable


def _record(path, att, fp: dict, mode: str, tolerance: float) -> Outcome:
    # A baseline run need not meet perf_analyzer's stability rule (at a 5 % tolerance on a shared machine it
    # rarely does): the detector weighs each run's windows itself and refuses to judge against a baseline
    # whose runs disagree. It must be complete, without failed requests, with enough windows under the steal limit.
    usable = att.completed and detector.run_capacity(
        [w for w in att.observation.windows if w.completed], tolerance).capacity is not None
    if usable and not att.observation.errors:
        saved = baseline.save(path, fp, mode, baseline.level_record(att.observation))
        runs = len((baseline.load(saved).level(mode) or {}).get("runs") or ())
        return not_applicable(f"baseline recorded now at {path} (explicit update; it now holds {runs} run(s)); nothing to compare against",
                              fingerprint=fp)
    if att.completed and not att.observation.errors:
        return errored(f"baseline not recorded at {path}: fewer than {detector.MIN_WINDOWS} of its windows ran with CPU "
                       f"steal under {detector.MAX_STEAL:.0%}; record it when the machine is quieter")
    why = perf_judge.stable_measurement(att)
    return errored(f"baseline not recorded at {path}: {why.reason}")


def regression_checks(probe: Any, target_name: str, deployment_name: str, update: bool,
                      default_root: str | Path | None = None) -> list[tuple[str, Outcome]]:
    """(``"<model> <mode>"``, Outcome) for every model and load level the probe measures. Baselines live
    under ``options.performance.baseline_dir``, else ``default_root`` (the run's ``<reports-dir>/baselines``)."""
    parts = []
    root = probe.settings.baseline_dir or (Path(default_root) if default_root else baseline.DEFAULT_ROOT)
    for model, lvl in probe.levels():
        att = probe.measurement(model, lvl)
        path = baseline.path_for(target_name, deployment_name, model, root=root)
        fp = probe.fingerprint(model, att.observation) if att.completed else {}
        label = f"{model} {lvl.mode}"
        if update:
            parts.append((label, _record(path, att, fp, lvl.mode, probe.settings.tolerance)))
            continue
        try:
            base = baseline.load(path)
        except ConfigError as exc:
            parts.append((label, errored(str(exc))))
            continue
        parts.append((label, perf_judge.regression(att, base, fp, probe.settings.tolerance, str(path))))
    return parts
