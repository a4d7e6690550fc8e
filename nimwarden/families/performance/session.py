"""Audit-under-load for one pytest session: start a steady load per deployment, stop it at the end.

The plugin calls :func:`start` before the first test when ``--under-load``
is given and orders the PERF-UNDERLOAD tests last (:func:`runs_last`); each
of those tests calls :func:`finish` for its deployment and judges the
report. :func:`stop_all` at session end stops whatever is still running
(an interrupted run), so no load outlives the audit.
"""

from __future__ import annotations

from nimwarden.families.performance.probe import PerfProbe
from nimwarden.families.performance.settings import parse
from nimwarden.families.performance.underload import BackgroundLoad, UnderLoadReport
from nimwarden.outcome import Attempt, attempt

CONTROL = "PERF-UNDERLOAD-001"
KINDS = ("triton",)

_loads: dict[str, Attempt[BackgroundLoad]] = {}
_reports: dict[str, Attempt[UnderLoadReport]] = {}
_started = False


def started() -> bool:
    return _started


def start(target) -> dict[str, Attempt[BackgroundLoad]]:
    """Start one background load per Triton deployment; failures to start are kept as incomplete attempts."""
    global _started
    for dep in target.deployments:
        if dep.kind not in KINDS or dep.name in _loads:
            continue
        settings = parse(dep, target.path)
        probe = PerfProbe(target, dep, settings)
        ul = settings.under_load

        def go(probe=probe, settings=settings, ul=ul) -> BackgroundLoad:
            if not settings.models:
                raise RuntimeError("no model to load: list the deployment's models or options.performance.models")
            info = probe.info(settings.models[0])
            if not info.completed:
                raise RuntimeError(f"model metadata unavailable: {info.error}")
            return BackgroundLoad(probe._required_endpoint(), probe.payload(info.observation),
                                  concurrency=ul.concurrency, rate=ul.rate, metrics_url=probe._metrics_or_none(),
                                  reference_s=ul.reference_s, engine=settings.engine).start()

        load = f"rate {ul.rate:g}/s" if ul.rate else f"concurrency {ul.concurrency}"
        _loads[dep.name] = attempt("perf.underload", f"background load ({load}) on {dep.name}", go)
    _started = True
    return dict(_loads)


def finish(deployment: str) -> Attempt[UnderLoadReport] | None:
    """Stop the deployment's background load (once) and return what it saw; None when none was started."""
    if deployment in _reports:
        return _reports[deployment]
    started_load = _loads.get(deployment)
    if started_load is None:
        return None
    if not started_load.completed:
        rep: Attempt[UnderLoadReport] = Attempt(started_load.probe, started_load.request, None, started_load.error,
                                                started_load.elapsed_s)
    else:
        rep = attempt(started_load.probe, started_load.request, started_load.observation.stop)
    _reports[deployment] = rep
    return rep


def stop_all() -> None:
    for name in list(_loads):
        finish(name)


def reset() -> None:
    """Forget everything (tests start several sessions in one process)."""
    global _started
    stop_all()
    _loads.clear()
    _reports.clear()
    _started = False


def runs_last(item) -> int:
    """Sort key for pytest items: the under-load controls after everything else."""
    marker = item.get_closest_marker("control")
    return 1 if marker is not None and marker.args and marker.args[0] == CONTROL else 0
