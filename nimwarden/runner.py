"""The in-process runner: an audit of a target that probes nothing, without pytest's machinery.

A target whose deployments declare no endpoints and whose Kubernetes source is manifests or a
snapshot (rendered charts in CI) asks for nothing but judging cluster state: no probe, no lab,
nothing to run concurrently. For it, ``nimwarden audit`` runs the same suites (suites/test_*.py)
through this module instead of pytest: the same test functions, parametrized the same way (every
deployment of the kinds a test applies to, then its ``parametrize`` marks), the same
applicability predicates, the same ``verdict()`` contract and the same result records
(:func:`nimwarden.plugin.make_result`), handed to the same :func:`nimwarden.report.finish_run`. It
writes what pytest's plugins write for an audit too: ``junit.xml`` and ``allure-results/``.
``NIMWARDEN_RUNNER=pytest`` (or any pytest argument, ``--intrusive``, ``--under-load``) runs pytest.
``tests/integration/test_chart_audit.py`` proves both give the same results on the chart corpus.

summary.json gains ``timings``: start-up (imports, profile, the cases), parsing (the manifests: a second
process reads them beside start-up, :mod:`nimwarden.k8s.beside`; ``parse_wait_s`` is how long start-up then
waited for them), judging (the controls) and reports, in seconds.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import itertools
import os
import pickle
import sys
import time
from collections import namedtuple
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nimwarden import catalog, families, forked, redact
from nimwarden.errors import unwritable
from nimwarden.k8s import source as k8s_source
from nimwarden.outcome import Outcome
from nimwarden.report.record import make_result
from nimwarden.target import Target


def eligible(target: Target, args: Any) -> str | None:
    """Why this audit must run under pytest, or None when the in-process runner serves it."""
    if os.environ.get("NIMWARDEN_RUNNER") == "pytest":
        return "NIMWARDEN_RUNNER=pytest"
    if os.environ.get("PYTEST_ADDOPTS", "").strip():  # a CI job's --junitxml, -x, -p: they apply to the audit too
        return "PYTEST_ADDOPTS is set"
    if [a for a in args.pytest_args if a != "--"] or args.intrusive or args.under_load or args.perf_update_baseline or args.fail_on:
        return "pytest arguments or switches given"
    if getattr(args, "fail_on_new", False) or getattr(args, "baseline", None) or getattr(args, "run_dir", None):
        return "--fail-on-new, --baseline or a prepared run directory (the plugin gates on the baseline)"
    if target.kubernetes.source not in ("manifests", "snapshot"):
        return "the Kubernetes source is read from a cluster"
    if any(d.endpoints for d in target.deployments):
        return "a deployment declares endpoints to probe"
    return None


class _Verdict:
    def __init__(self) -> None:
        self.recorded: tuple[Outcome, str | None] | None = None

    def __call__(self, outcome: Outcome, subject: str | None = None) -> None:
        if not isinstance(outcome, Outcome):
            raise TypeError(f"verdict() takes an Outcome, got {type(outcome).__name__}")
        if self.recorded is not None:
            raise RuntimeError("verdict() called twice in one test")
        self.recorded = (outcome, subject or outcome.subject)


def _marks(obj: Any) -> list:
    marks = getattr(obj, "pytestmark", [])
    return list(marks) if isinstance(marks, list) else [marks]


def _expand(rel: str, name: str, fn: Any, marks: list, module_marks: list, wants_deployment: bool, target: Target):
    control = next((m.args[0] for m in marks if m.name == "control"), None)
    if control is None:
        return
    kinds = next((m for m in marks + module_marks if m.name == "kinds"), None)
    wanted = set(kinds.args) if kinds is not None else None
    axes: list[list[tuple[str, Any, str]]] = []
    if wants_deployment:
        deps = [d for d in target.deployments if wanted is None or d.kind in wanted]
        if not deps:
            return  # pytest collects an empty parameter set: nothing is reported
        axes.append([("deployment", d, d.name) for d in deps])
    for m in reversed([m for m in marks if m.name == "parametrize"]):  # pytest applies the innermost mark first
        argname, values = m.args[0], m.args[1]
        axes.append([(argname, v, str(v)) for v in values])
    entry, test = catalog.get(control), f"{rel}::{name}"
    for combo in itertools.product(*axes) if axes else [()]:
        params = {k: v for k, v, _ in combo}
        ids = "-".join(i for _, _, i in combo)
        yield test + (f"[{ids}]" if ids else ""), fn, entry, params


def _cases(module: Any, target: Target):
    """(nodeid, function, control, params) for every test of a suite module, in pytest's order and ids."""
    rel = f"suites/{Path(module.__file__).name}"
    module_marks = _marks(module)
    for name, fn in vars(module).items():
        if not name.startswith("test_") or not callable(fn) or getattr(fn, "__module__", None) != module.__name__:
            continue
        yield from _expand(rel, name, fn, _marks(fn), module_marks, "deployment" in inspect.signature(fn).parameters, target)


_Mark = namedtuple("_Mark", "name args")


def _static_cases(path: Path, target: Target) -> Iterator | None:
    """The cases of a suite read from its source, without importing it (and the clients it imports):
    ``pytest.mark.<name>(literal, …)`` decorators, directly or through a module-level name, and a
    module-level ``pytestmark``. None when the source holds anything else (then the module is imported)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    names = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}

    def mark(node: ast.AST) -> _Mark:
        node = names.get(node.id, node) if isinstance(node, ast.Name) else node
        func = node.func if isinstance(node, ast.Call) else None
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute) and func.value.attr == "mark"
                and isinstance(func.value.value, ast.Name) and func.value.value.id == "pytest") or node.keywords:
            raise ValueError("not a plain pytest mark")
        return _Mark(func.attr, tuple(ast.literal_eval(a) for a in node.args))

    try:
        module_marks = [mark(names["pytestmark"])] if "pytestmark" in names else []
        tests = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                marks = [mark(d) for d in reversed(node.decorator_list)]  # pytestmark order: innermost first
                tests.append((node.name, marks, any(a.arg == "deployment" for a in node.args.args)))
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    # expanded as they are asked for: a suite whose first case applies is imported, its source's cases never made
    return (case for name, marks, wants in tests for case in _expand(f"suites/{path.name}", name, None, marks, module_marks, wants, target))


def _import_suite(path: Path) -> Any:
    """The suite module, imported with :mod:`nimwarden.suite_marks` for pytest where pytest is not imported yet
    (only the marks are read here; pytest itself comes in if a suite asks for more)."""
    from nimwarden.suite_marks import without_pytest

    spec = importlib.util.spec_from_file_location(f"suites.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    with without_pytest():
        spec.loader.exec_module(module)
    return module


def _suite_cases(suites: Path, target: Target, reason_of) -> list:
    """Every case of every suite. A suite none of whose cases applies is not imported (nor are the
    probe clients it imports): its cases come from its source, each with its not-applicable reason."""
    cases = []
    for path in sorted(suites.glob("test_*.py")):
        static = _none_applies(_static_cases(path, target), reason_of)
        cases.extend(static if static is not None else _cases(_import_suite(path), target))
    return cases


def _none_applies(static: Iterator | None, reason_of) -> list | None:
    """The cases read from a suite's source when none of them applies; None (the suite is imported) at the
    first case that applies, or when a mark cannot be expanded from the source."""
    if static is None:
        return None
    read = []
    try:
        for case in static:
            if not reason_of(case[2], case[3]):
                return None
            read.append(case)
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return read


def run(target_file: Path, target: Target, args: Any, suites: Path, started_clock: float,
        read: Callable[[], tuple[float, str]]) -> int:
    """Audit ``target`` in-process; returns the contract exit status. ``read()`` reads its manifests (or joins the
    process reading them beside, :mod:`nimwarden.k8s.beside`), raising a one-line error on a broken one, and
    returns the seconds the reading took and by what ("" for this process); it is called once the cases are
    built, before anything is judged."""
    return _run(target, args, suites, started_clock, read)


def _run(target: Target, args: Any, suites: Path, started_clock: float, read: Callable[[], tuple[float, str]]) -> int:
    from nimwarden.report import RunRecord, finish_run
    from nimwarden.report.summary import new_run_dir, utc_now

    waivers = []
    if target.waivers is not None:
        from nimwarden.waivers import load_waivers

        waivers = load_waivers(target.waivers, known_controls=catalog.load_catalog().keys())
    started = utc_now()
    switches = {"intrusive": False, "under_load": False, "perf_update_baseline": False}

    reasons: dict = {}

    def reason_of(control, params):  # asked two or three times per case (once more for a suite read from its source)
        dep = params.get("deployment")
        if len(params) == (dep is not None):  # nothing but the deployment (most cases): the key made without the others
            key = (control.id, dep.name if dep is not None else None)
        else:
            key = (control.id, dep.name if dep is not None else None,
                   repr(sorted((k, v) for k, v in params.items() if k != "deployment")))
        reason = reasons.get(key, reasons)
        if reason is reasons:
            others = {k: v for k, v in params.items() if k != "deployment"}
            reason = reasons[key] = families.not_applicable_reason(control.family, control.id,
                                                                   families.Applicability(target, dep, others, switches))
        return reason

    cases = _suite_cases(suites, target, reason_of)
    say = _progress(len(cases))
    t_read = time.perf_counter()
    parse_s, read_by = read()
    t_judge = time.perf_counter()
    say(f"{_objects(target)} Kubernetes object(s) read in {parse_s:.1f} s; judging {len(cases):,} controls of "
        f"{len(target.deployments):,} deployment(s) …")
    made: dict = {}

    def probes(factory, deployment=None, *extra):
        key = (getattr(factory, "__qualname__", repr(factory)), getattr(factory, "__module__", ""),
               deployment.name if deployment is not None else None, extra)
        if key not in made:
            made[key] = factory(target, deployment, *extra)
        return made[key]

    signatures: dict = {}

    def judge_case(nodeid, fn, control, params) -> dict:
        t0 = time.perf_counter()
        reason = reason_of(control, params)
        if reason:  # what not_applicable(reason) recorded would make: no subject, severity or evidence of its own
            return make_result(control, params, None, ("not_applicable", reason), time.perf_counter() - t0, nodeid)
        verdict = _Verdict()
        deployment = params.get("deployment")
        others = {k: v for k, v in params.items() if k != "deployment"}
        unrecorded = None
        fixtures = {"target": target, "deployment": deployment, "verdict": verdict, "probes": probes, "run_switches": switches}
        wanted = signatures.get(fn)
        if wanted is None:
            wanted = signatures[fn] = inspect.signature(fn).parameters
        kwargs = {k: v for k, v in {**fixtures, **others}.items() if k in wanted}
        try:
            fn(**kwargs)
        except Exception as exc:  # noqa: BLE001 - a harness error is an error result, never a pass
            unrecorded = ("error", f"harness error during call: {type(exc).__name__}: {str(exc)[:480]}")
        if verdict.recorded is None and unrecorded is None:
            unrecorded = ("error", "the test finished without recording a verdict (fail closed)")
        recorded = verdict.recorded if unrecorded is None else None
        return make_result(control, params, recorded, unrecorded, time.perf_counter() - t0, nodeid)

    collected = [nodeid for nodeid, _fn, _control, _params in cases]
    secrets_known = redact.generation()  # make_result redacts each result; unchanged at the end: no second pass
    results, judged_by = judge_all(cases, judge_case, lambda case: not reason_of(case[2], case[3]))
    for made_probe in made.values():
        close = getattr(made_probe, "close", None)
        if callable(close):
            close()
    made.clear()
    inventory = _release(target)
    t_reports = time.perf_counter()
    say(f"judged in {t_reports - t_judge:.1f} s ({judged_by}); writing the reports …")
    reports_dir = Path(args.reports_dir).resolve()
    try:
        run_dir = new_run_dir(reports_dir, started)
    except OSError as exc:
        raise (unwritable(exc, reports_dir, "the run's folder") or exc) from None
    record = RunRecord(target=target, started=started, options=["--intrusive=no"], fail_on=None, waivers=waivers, run_dir=run_dir,
                       reports_dir=reports_dir, collected=collected, interrupted=False, stopped_early=False, pytest_exit=0,
                       data=families.data_stamps(target), kubernetes=inventory)
    timings = {"runner": f"in-process (no probes to run; {read_by + '; ' if read_by else ''}judged by {judged_by})", "startup_s": round(t_read - started_clock, 3),
               "parse_s": round(parse_s, 3), "parse_wait_s": round(t_judge - t_read, 3), "judge_s": round(t_reports - t_judge, 3)}
    redacted_at = secrets_known if redact.generation() == secrets_known else None
    try:
        status, lines = finish_run(record, results, timings=timings, extra_writers=(_write_allure, _write_junit),
                                   redacted_at=redacted_at, spread=True)
    except OSError as exc:  # the disk filled up (or went read-only) while the reports were written: they are incomplete
        raise (unwritable(exc, run_dir, "the reports") or exc) from None
    print(f"{len(results)} controls judged in-process: " + ", ".join(f"{n} {s}" for s, n in sorted(_totals(results).items())))
    for line in lines:
        print(line)
    print("timings: " + ", ".join(f"{k} {v} s" for k, v in timings.items() if k.endswith("_s")))
    return status


# From this many cases (about 50 workloads), an offline audit takes seconds: it says what it is doing as it goes.
PROGRESS_FROM = 5000


def _progress(cases: int) -> Callable[[str], None]:
    """Where progress goes: a line on stdout per phase of a long offline audit (as the pytest runner's progress:
    on a terminal, or with ``NIMWARDEN_PROGRESS=1`` whatever the size; never with ``NIMWARDEN_PROGRESS=0``)."""
    forced = os.environ.get("NIMWARDEN_PROGRESS")
    on = forced == "1" or (forced != "0" and cases >= PROGRESS_FROM and sys.stdout.isatty())
    if not on:
        return lambda message: None

    def say(message: str) -> None:
        print(f"nimwarden: {message}", flush=True)

    return say


def _release(target: Target) -> dict | None:
    """What the Kubernetes source held (the report's inventory), then the objects read let go: once everything is
    judged nothing else needs them, and the reports need the memory (:meth:`ClusterState.forget`)."""
    from nimwarden.report import kubernetes_inventory

    read = k8s_source.cached(target.kubernetes)
    if read is None or read.observation is None:
        return None
    inventory = kubernetes_inventory(target)  # as the report takes it (from the state this process read)
    read.observation.forget()
    k8s_source.clear_cache()
    return inventory


def _objects(target: Target) -> str:
    read = k8s_source.cached(target.kubernetes)
    return f"{len(read.observation.objects):,}" if read is not None and read.observation is not None else "no"


# Below this many cases to judge (not applicable ones cost next to nothing), a second process costs more
# than it saves: the chart corpus (a few hundred) is judged in ~0.1 s.
SPREAD_FROM = 1500


def judge_all(cases: list, judge_case: Callable[..., dict], applies: Callable[[tuple], bool]) -> tuple[list[dict], str]:
    """Every case's result, in the cases' order, and by what ("one process" or "two processes").

    Judging is pure computation on one core; a repository-scale audit has thousands of cases and the
    machine a second core. With at least ``SPREAD_FROM`` cases to judge, fork available and two CPUs,
    a forked child judges the second half (split where half of the applicable cases lie on each side)
    and hands its results back through a pipe, with the secrets it learnt so that the reports redact
    them in every result. A child that fails for any reason leaves its half to be judged here: a result
    is never missing. The fork happens where the runner has no threads (it probes nothing).
    ``NIMWARDEN_JUDGE_PROCESSES=1`` never forks; ``=2`` forks whenever two cases apply (the tests)."""
    work = [i for i, case in enumerate(cases) if applies(case)]
    wanted = os.environ.get("NIMWARDEN_JUDGE_PROCESSES", "")  # 1: never fork; 2: fork whenever two cases apply
    spread = len(work) >= 2 if wanted == "2" else wanted != "1" and len(work) >= SPREAD_FROM and forked.cpus() >= 2
    if not spread:
        return [judge_case(*case) for case in cases], "one process"
    cut = work[len(work) // 2]
    before = redact.known()
    started = forked.fork_piped(force=wanted == "2")
    if started is None:
        return [judge_case(*case) for case in cases], "one process"
    pid, fd = started
    if pid == 0:  # the child: judge the second half, send it, leave without the parent's exit handlers
        code = 0
        try:
            theirs = [judge_case(*case) for case in cases[cut:]]
            with os.fdopen(fd, "wb") as out:  # streamed: the parent reads as it is written, never one bytes object
                pickle.dump((theirs, sorted(redact.known() - before)), out, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # noqa: BLE001 - any failure: the parent judges this half itself
            code = 1
        os._exit(code)
    mine = [judge_case(*case) for case in cases[:cut]]
    with os.fdopen(fd, "rb") as pipe:
        try:
            theirs, learnt = pickle.load(pipe)
        except Exception:  # noqa: BLE001 - a half that cannot be read (the child died) is judged again here
            theirs, learnt = None, ()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        theirs = None
    if theirs is None or len(theirs) != len(cases) - cut:
        return mine + [judge_case(*case) for case in cases[cut:]], "one process (the second failed)"
    for secret in learnt:
        redact.register(secret)
    return mine + theirs, "two processes"


def _totals(results: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        out[r["status"]] = out.get(r["status"], 0) + 1
    return out


def _write_allure(run_dir: Path, summary: dict) -> None:
    from nimwarden.report.junit import write_allure_results

    write_allure_results(run_dir, summary)


def _write_junit(run_dir: Path, summary: dict) -> None:
    from nimwarden.report.junit import write_junit

    write_junit(run_dir, summary)
