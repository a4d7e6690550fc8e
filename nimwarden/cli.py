"""`nimwarden audit|discover|lab|report|catalog|validate|snapshot|cleanup` — the command line.

Usage and configuration errors print one line naming the file, field or
option and exit 2; no traceback reaches the user.

This module is longer than 400 lines on purpose: every subcommand's arguments and its one-line
errors in one place, so the command line reads as one page.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

from nimwarden import __version__
from nimwarden.errors import DISK, UsageError, check_writable_dir, unwritable

STARTED = time.perf_counter()  # the start-up time the in-process runner reports begins here

EXIT_USAGE = 2
EXIT_BUG = 70  # an unexpected exception: a bug in nimwarden (sysexits.h EX_SOFTWARE), never 0-3 of the contract


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"nimwarden: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _say(message: str) -> None:
    print(f"nimwarden: {message}", file=sys.stderr, flush=True)


def repo_root() -> Path:
    """The checkout holding suites/ and targets/: the working directory if it has them, else the package's parent."""
    cwd = Path.cwd()
    if (cwd / "suites").is_dir():
        return cwd
    return Path(__file__).resolve().parent.parent


def suites_dir() -> Path:
    """The compliance suites: suites/ of the checkout nimwarden runs from (the working directory, or the
    package's parent in a clone), else the copy an installed wheel carries in the package (nimwarden/suites)."""
    package = Path(__file__).resolve().parent
    for candidate in (repo_root() / "suites", package / "suites"):
        if candidate.is_dir() and any(candidate.glob("test_*.py")):
            return candidate
    raise UsageError(f"{package / 'suites'}: the compliance suites are missing; reinstall nimwarden (its wheel carries them)")


def _parser() -> _Parser:
    p = _Parser(prog="nimwarden", description="Security compliance harness for NVIDIA NIM, NeMo microservices and Triton.")
    p.add_argument("--version", action="version", version=f"nimwarden {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    a = sub.add_parser(
        "audit", help="run the compliance suites against a target (the embedded lab when --target is absent)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Every other argument passes through to pytest (-k, -m, -x, -n 2, suite files and test ids), e.g.:\n"
               "  nimwarden audit --target targets/staging.yaml -k tls                  # tests whose names or files match 'tls'\n"
               "  nimwarden audit --target targets/staging.yaml suites/test_gateway.py  # one family's suite\n"
               "Each family's tests are in suites/test_<family>.py, dashes as underscores (suites/test_triton_api.py);\n"
               "`nimwarden catalog` lists the families and their controls.",
    )
    a.add_argument("--target", metavar="FILE", help="target profile; without it the lab is started, audited and stopped")
    a.add_argument("--reports-dir", metavar="DIR", default="reports",
                   help="where run directories (and performance baselines, DIR/baselines) are written (default: reports)")
    a.add_argument("--intrusive", action="store_true", help="allow probes that write to the target")
    a.add_argument("--fail-on", choices=("critical", "high", "medium", "low"))
    a.add_argument("--under-load", action="store_true", help="run the suites while a steady inference load runs (PERF-UNDERLOAD-001)")
    a.add_argument("--perf-update-baseline", action="store_true", help="record this run's performance measurements as baselines")
    a.add_argument("--lab-dir", metavar="DIR", help="lab state directory (default .nimwarden/lab)")
    a.add_argument("--compute-ms", type=_non_negative, default=0.0, help="lab model compute time per request")
    a.add_argument("--fail-on-new", action="store_true", help="exit 1 only for failures absent from the baseline")
    a.add_argument("--baseline", metavar="FILE", help="summary.json to compare with (default: the previous comparable run)")
    _discovery_options(a, for_audit=True)

    d = sub.add_parser("discover", help="find the Triton and NIM deployments of a cluster and write a target profile")
    _discovery_options(d, for_audit=False)
    d.add_argument("--out", metavar="FILE", default="discovered.yaml", help="where to write the profile (default discovered.yaml)")
    d.add_argument("--force", action="store_true", help="overwrite --out if it exists")

    lab = sub.add_parser("lab", help="start, stop or inspect the embedded lab")
    lab.add_argument("action", choices=("up", "down", "status"))
    lab.add_argument("--dir", metavar="DIR", help="lab state directory (default .nimwarden/lab or $NIMWARDEN_LAB_DIR)")
    lab.add_argument("--compute-ms", type=_non_negative, default=0.0, help="model compute time per request in ms")

    r = sub.add_parser("report", help="regenerate the artifacts of a run directory from its summary.json")
    r.add_argument("run_dir", nargs="?", default="reports/latest")
    r.add_argument("--sign-off", action="store_true", help="also write the release sign-off page")
    r.add_argument("--allure-html", action="store_true", help="also generate the Allure HTML report (needs node and java)")

    c = sub.add_parser("catalog", help="list the controls")
    c.add_argument("--family")
    c.add_argument("--json", action="store_true")

    sn = sub.add_parser("snapshot", help="read a live cluster (read-only) into a snapshot file for offline audits")
    sn.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default $KUBECONFIG, ~/.kube/config, or in-cluster)")
    sn.add_argument("--context", help="kubeconfig context")
    sn.add_argument("--namespace", "-n", action="append", default=[], help="limit to a namespace (repeatable)")
    sn.add_argument("--out", metavar="FILE", required=True, help="where to write the snapshot (JSON)")
    sn.add_argument("--timeout", type=_seconds, default=10.0, help="seconds per API call")

    cl = sub.add_parser("cleanup", help="delete the probe pods (and their anchor ConfigMaps) nimwarden left in a cluster")
    cl.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default $KUBECONFIG, ~/.kube/config, or in-cluster)")
    cl.add_argument("--context", help="kubeconfig context")
    cl.add_argument("--namespace", "-n", action="append", default=[], help="only in this namespace (repeatable; default: cluster-wide)")
    cl.add_argument("--timeout", type=_seconds, default=10.0, help="seconds per API call")

    v = sub.add_parser("validate", help="validate a target profile and exit",
                       description="Validate a target profile as an audit would load it: its fields, every family's "
                                   "options, and that each credential source resolves on this machine.")
    v.add_argument("--target", metavar="FILE", required=True)
    v.add_argument("--skip-credentials", action="store_true",
                   help="do not require the credentials' environment variables and files to exist "
                        "(a CI lint job without the secrets); an audit always requires them")

    sub.add_parser("schema", help="print the JSON Schema of a target profile (for editors and CI linters)",
                   description="Print the JSON Schema (draft 2020-12) of a target profile, with every family's sections. "
                               "Point a YAML language server at it: `# yaml-language-server: $schema=PATH` in a profile.")
    return p


def _discovery_options(p: argparse.ArgumentParser, for_audit: bool) -> None:
    g = p.add_argument_group("discovery" + (" (audit without --target: discover, write the profile into the run directory, audit)" if for_audit else ""))
    g.add_argument("--kubeconfig", metavar="FILE", help="discover from a live cluster (read-only: get and list)")
    g.add_argument("--context", help="kubeconfig context")
    if not for_audit:
        g.add_argument("--snapshot", metavar="FILE", action="append", default=[], help="discover from a snapshot file")
        g.add_argument("--manifests", metavar="PATH", nargs="+", default=[], help="discover from rendered manifests (files or directories)")
    # `audit` passes pytest's own arguments through, and pytest-xdist's `-n N` is one of them: no `-n` there.
    names = ("--namespace",) if for_audit else ("--namespace", "-n")
    g.add_argument(*names, action="append", default=[], help="only in this namespace (repeatable)")
    g.add_argument("--name", help="the target's name (default: the context name, else 'discovered')")
    g.add_argument("--position", choices=("external", "cluster-internal"),
                   help="where the audit will run (default: cluster-internal in a pod, else external)")
    g.add_argument("--no-probes", action="store_true", help="write endpoints commented out: judge cluster state only")
    g.add_argument("--api-timeout", type=_seconds, default=10.0, help="seconds per API call")


def _seconds(text: str) -> float:
    """A timeout: a finite number of seconds above zero (argparse makes a bad one a usage error, exit 2)."""
    value = _number(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a timeout is a finite number of seconds above 0")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _non_negative(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number, 0 or more")
    return value


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args, unknown = parser.parse_known_args(args_list)
    if unknown and args.command != "audit":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.pytest_args = unknown  # audit passes the rest to pytest (-k, -x, -n 2, …)
    args.program = argv is None
    if args.program:
        # pydantic looks for plugins in every installed distribution's entry points the first time a model is
        # built (~20 ms of each start); nimwarden's profile models want none. A user's own setting is kept.
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
        sys.unraisablehook = _unraisable
    try:
        handler = {"audit": cmd_audit, "discover": cmd_discover, "lab": cmd_lab, "report": cmd_report, "catalog": cmd_catalog, "validate": cmd_validate,
                   "snapshot": cmd_snapshot, "cleanup": cmd_cleanup, "schema": cmd_schema}[args.command]
        code = handler(args)
        if argv is None and getattr(args, "in_process", False):
            # a program run of the in-process runner: every artifact is written and closed; skip the interpreter's
            # teardown of the suites' modules (~0.4 s of a 3 s audit)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    except UsageError as exc:
        _say(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        for line in str(exc).splitlines()[1:]:
            print(f"  {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (`nimwarden schema | head`): nothing more to say, as a shell would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 - the last resort: one line and a file, never a bare traceback
        disk = unwritable(exc, "a file") if isinstance(exc, OSError) and exc.errno in DISK else None
        if disk is not None:  # a full or read-only disk wherever it was met: the machine's state, not a bug
            _say(str(disk))
            return EXIT_USAGE
        return _bug(exc)


def _unraisable(unraisable) -> None:
    """What Python can only ignore (an exception in a __del__, or in a plugin's generator closed after a Ctrl-C or
    SIGTERM: allure-pytest's setup wrapper, interrupted at the wrong moment, raises one at exit): one line, not the
    traceback Python prints by default. The run's status and reports are already decided."""
    import contextlib

    with contextlib.suppress(Exception):  # at interpreter shutdown anything may be gone; there is nothing left to say
        exc = unraisable.exc_value
        what = getattr(unraisable.object, "__qualname__", None) or type(unraisable.object).__name__
        text = " ".join(str(exc).split())[:200] if exc is not None else ""
        print(f"nimwarden: ignored, in {what} (Python cannot raise it): {type(exc).__name__}{': ' + text if text else ''}",
              file=sys.stderr)


def _bug(exc: BaseException) -> int:
    """An exception nothing expected: a bug in nimwarden. One line on the terminal; the traceback
    (redacted, like every artifact) goes to a file, named in that line. Exit status EXIT_BUG."""
    import tempfile
    import traceback

    from nimwarden.redact import redact_text

    text = redact_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    where = "not written"
    try:
        fd, name = tempfile.mkstemp(prefix="nimwarden-bug-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(f"nimwarden {__version__}, python {sys.version.split()[0]}, argv {sys.argv[1:]!r}\n{text}")
        where = name
    except OSError as err:
        where = f"not written ({err.strerror})"
    summary = " ".join(redact_text(str(exc)).split())[:200]
    _say(f"internal error, a bug in nimwarden (not in your input): {type(exc).__name__}"
         f"{': ' + summary if summary else ''}; traceback: {where}; please report it (exit {EXIT_BUG})")
    return EXIT_BUG


def cmd_schema(args) -> int:
    from nimwarden.families import profile_json_schema

    print(json.dumps(profile_json_schema(), indent=2, ensure_ascii=False))
    return 0


def cmd_validate(args) -> int:
    from nimwarden.families import load_profile as load_target

    target = load_target(args.target, resolve_credentials=not args.skip_credentials)
    unchecked = " (credential sources not checked)" if args.skip_credentials else ""
    held = _read_offline_state(target)
    print(f"{args.target}: valid target {target.name!r} with {len(target.deployments)} deployment(s){unchecked}" + (f"; {held}" if held else ""))
    return 0


def _read_offline_state(target) -> str:
    """Read the manifests / snapshot a profile names (a broken one is a one-line ConfigError, exit 2)
    and say what they hold; a live source is not contacted here. The state stays cached for the run."""
    if target.kubernetes.source not in ("manifests", "snapshot"):
        return ""
    from nimwarden.k8s import source as k8s

    read = k8s.cluster_state(target.kubernetes)
    if read.observation is None:
        raise UsageError(f"{target.path}: kubernetes: cannot read the {target.kubernetes.source}: {read.error}")
    inv = k8s.inventory(read.observation)
    not_judged = ", ".join(f"{k} {n}" for k, n in inv["not_judged"].items())
    return (f"{sum(inv['objects'].values())} Kubernetes object(s) read" + (f", not judged: {not_judged}" if not_judged else "")
            + (f", {len(inv['hooks'])} Helm hook object(s) judged apart" if inv["hooks"] else ""))


def _kube_configuration(args):
    """The API client configuration from --kubeconfig/--context (or in-cluster); a bad kubeconfig is a usage error."""
    from nimwarden.k8s.live import client_configuration

    try:
        return client_configuration(kubeconfig=args.kubeconfig, context=args.context)
    except Exception as exc:  # noqa: BLE001 - the kubernetes client raises many types for a bad kubeconfig
        raise UsageError(f"{args.kubeconfig or 'kubeconfig'}: cannot load ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None


def cmd_snapshot(args) -> int:
    from nimwarden.k8s import take_snapshot

    config = _kube_configuration(args)
    try:
        state = take_snapshot(config, args.out, namespaces=args.namespace, timeout_s=args.timeout)
    except Exception as exc:  # noqa: BLE001 - unreachable API server, 401: one line, exit 1
        _say(f"snapshot failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
        return 1
    denied = "; not readable: " + ", ".join(f"{kind} ({why})" for kind, why in sorted(state.denied.items())) if state.denied else ""
    print(f"{args.out}: {len(state.objects)} object(s){denied}")
    return 0


def cmd_cleanup(args) -> int:
    from nimwarden.k8s.probe_pods import CLEANUP_SELECTOR, PodRunner, ProbePodError, ProbePodOptions

    config = _kube_configuration(args)
    runner = PodRunner(config, ProbePodOptions(image="-"), api_timeout_s=args.timeout)
    try:
        removed = runner.cleanup(args.namespace or None)
    except ProbePodError as exc:
        _say(f"cleanup failed: {exc}")
        return 1
    finally:
        runner.close()
    for ref in removed:
        print(f"deleted {ref}")
    if runner.leftovers:
        _say(f"could not delete: {', '.join(runner.leftovers)}")
        return 1
    print(f"{len(removed)} object(s) labelled {CLEANUP_SELECTOR} deleted")
    return 0


def cmd_catalog(args) -> int:
    from nimwarden.catalog import load_catalog

    catalog = load_catalog()
    families = sorted({c.family for c in catalog.values()})
    if args.family and args.family not in families:
        raise UsageError(f"--family {args.family}: no such family; the families are {', '.join(families)}")
    controls = [c for c in catalog.values() if not args.family or c.family == args.family]
    if args.json:
        print(json.dumps([c.__dict__ for c in controls], indent=2, default=list))
    else:
        for c in controls:
            print(f"{c.id:28} {c.family:15} {c.severity:9} {c.title}")
    return 0


def cmd_lab(args) -> int:
    from nimwarden import lab

    directory = lab.lab_dir(args.dir)
    if args.action == "up":
        state = lab.up(directory, compute_ms=args.compute_ms, log=_say)
        _say(f"lab up: state in {directory / 'state.json'}")
        for name, dep in state["deployments"].items():
            print(f"{name}: http {dep['http']} grpc {dep['grpc']} metrics {dep['metrics']} (pid {dep['pid']}, runs as {dep['run_as']})")
        k = state.get("kube") or {}
        print(f"kubernetes: {k['server']} (v{k['version']}, kubeconfig {k['kubeconfig']})" if k.get("running")
              else f"kubernetes: none ({k.get('reason', 'not started')}); the lab profile reads its manifests")
        return 0
    if args.action == "down":
        n = lab.down(directory, log=_say)
        _say(f"lab down: {n} process(es) stopped")
        return 0
    status = lab.status(directory)
    print(json.dumps(status, indent=2))
    return 0 if status["running"] else 1


def cmd_report(args) -> int:
    from nimwarden.report import load_summary, write_all

    run_dir = Path(args.run_dir)
    if not (run_dir / "summary.json").exists():
        raise UsageError(f"{run_dir}: no summary.json there; pass a run directory such as reports/latest")
    try:
        summary = load_summary(run_dir)
    except ValueError as exc:
        raise UsageError(f"{run_dir / 'summary.json'}: not valid JSON ({exc})") from None
    from nimwarden.report.summary_shape import shape_problem

    problem = shape_problem(summary)
    if problem:
        raise UsageError(f"{run_dir / 'summary.json'}: {problem} (not a summary.json nimwarden wrote, or edited since)")
    try:
        written = write_all(run_dir.resolve(), summary, None)
    except OSError as exc:
        raise (unwritable(exc, run_dir, "the reports") or exc) from None
    for path in written:
        print(path)
    if args.sign_off:
        from nimwarden.report import sign_off

        print(sign_off.write_sign_off(run_dir, summary))
    if args.allure_html:
        from nimwarden.report import allure_html

        try:
            print(allure_html.generate(run_dir))
        except allure_html.AllureFailed as exc:
            _say(str(exc))
            return 1
    return 0


class _RunWatch:
    """A pytest plugin that keeps the run's config, to ask the audit plugin about its report afterwards."""

    config = None

    def pytest_configure(self, config) -> None:
        self.config = config


def _run_pytest(target_file: Path, args) -> int:
    import shlex

    import pytest

    addopts = os.environ.get("PYTEST_ADDOPTS", "").strip()  # pytest adds these to its arguments (shell-quoted)
    if addopts:
        try:
            shlex.split(addopts)
        except ValueError as exc:
            _say(f"PYTEST_ADDOPTS in the environment cannot be read as pytest options ({exc}): fix or unset it")
            return EXIT_USAGE
    suites = suites_dir()
    extra = [a for a in args.pytest_args if a != "--"]
    chosen = [a for a in extra if not a.startswith("-") and Path(a.split("::")[0]).exists()]
    pytest_args = ([] if chosen else [str(suites)]) + ["--target", str(target_file), "--reports-dir", args.reports_dir, "-p", "no:cacheprovider", "-rfE", *extra]
    if args.intrusive:
        pytest_args.append("--intrusive")
    if args.fail_on:
        pytest_args += ["--fail-on", args.fail_on]
    if args.under_load:
        pytest_args.append("--under-load")
    if args.perf_update_baseline:
        pytest_args.append("--perf-update-baseline")
    if args.fail_on_new:
        pytest_args.append("--fail-on-new")
    if args.baseline:
        pytest_args += ["--baseline", str(Path(args.baseline).resolve())]
    if getattr(args, "run_dir", None):
        pytest_args += ["--run-dir", str(args.run_dir)]
    watch = _RunWatch()
    try:
        code = int(pytest.main(pytest_args, plugins=[watch]))
    except Exception as exc:
        refused = unwritable(exc, os.environ.get("NIMWARDEN_RUN_DIR") or args.reports_dir, "the reports")
        if refused is not None:  # a disk that filled up (or went read-only) during the run: the run's files are incomplete
            raise refused from None
        # pytest itself failed after the audit's report was complete (its picture of a Ctrl-C can raise, a
        # pytest bug): the report stands, and so does its exit status. Before that point it is our bug.
        from nimwarden.plugin import report_status

        code = report_status(watch.config)
        if code is None:
            raise
        _say(f"pytest failed after the report was written ({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); "
             f"the exit status is the report's ({code})")
    # The run and its report are complete: a late Ctrl-C/SIGTERM must not turn the exit status
    # into 130 behind the report's back (the plugin defers them while writing; this covers the rest).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    if code == 4:  # pytest usage error (an unknown option, a bad -k expression)
        if addopts:
            _say(f"pytest's options also came from PYTEST_ADDOPTS in the environment: {addopts}")
        return EXIT_USAGE
    if code == 5:
        _say("no compliance test was selected (check -k / -m / paths)")
        return EXIT_USAGE
    return code


def argv_is_program(args) -> bool:
    """Whether this is the ``nimwarden`` program (not ``cli.main([...])`` called from a test or a library)."""
    return bool(getattr(args, "program", False))


def cmd_audit(args) -> int:
    if args.target:
        if args.kubeconfig or args.context or args.namespace:
            raise UsageError("--target and --kubeconfig/--context/--namespace exclude each other: a profile names its own cluster")
        target_file = Path(args.target)
        if argv_is_program(args):
            # start-up (imports, the profile's models, the cases) makes objects, not cycles: the cyclic GC walking
            # them again and again is ~10 % of it. Back on where the run goes to pytest (_audit_profile).
            gc.disable()
        from nimwarden.k8s import beside

        early = beside.start_early(target_file, no_gc=argv_is_program(args))  # reads while the profile loads
        try:
            return _audit_profile(target_file, args, early)
        finally:
            if early is not None:
                early.cancel()  # unless adopted: the run stopped before (a bad profile) or runs pytest
    if args.kubeconfig or args.context:
        return _audit_discovered(args)
    from nimwarden import lab
    from nimwarden.families import load_profile as load_target

    directory = lab.lab_dir(args.lab_dir)
    target_file = repo_root() / "targets" / "lab.yaml"
    if not target_file.is_file():  # an installed nimwarden audits profiles; the lab is a checkout feature
        raise UsageError("no --target: the embedded lab runs only from a checkout of nimwarden (./scripts/audit); "
                         "pass --target FILE, or --kubeconfig FILE to discover a cluster")
    default_state = (target_file.parent / "../.nimwarden/lab").resolve()
    if directory != default_state:
        raise UsageError(f"--lab-dir {directory}: targets/lab.yaml reads the lab state from {default_state}; use a profile of your own with --target")
    _check_reports_dir(args)
    _say(f"starting the lab in {directory}")
    try:
        state = lab.up(directory, compute_ms=args.compute_ms, log=_say)
        target_file = lab.profile_for(target_file, state)  # the manifests, where no API server could run
        load_target(target_file)
        return _run_pytest(target_file, args)
    finally:
        stopped = lab.down(directory, log=lambda *_: None)
        _say(f"lab stopped ({stopped} process(es))")


def _check_reports_dir(args) -> Path:
    """Before anything runs (a lab, probes, a cluster read), once the profile is known good: a --reports-dir that cannot
    take the run's files (read-only, full, a file) is one line now, not a traceback at the end of a long audit."""
    return check_writable_dir(args.reports_dir, "--reports-dir")


def _audit_profile(target_file: Path, args, early) -> int:
    """Audit the profile ``target_file``: in-process where it probes nothing, else through pytest. ``early``: the
    child reading its manifests since before it was loaded (:func:`nimwarden.k8s.beside.start_early`), or None."""
    from nimwarden import runner
    from nimwarden.families import load_profile as load_target
    from nimwarden.k8s import beside

    target = load_target(target_file)
    _check_reports_dir(args)
    in_process = runner.eligible(target, args) is None  # probes nothing: judge in-process, without pytest's machinery
    # A program run that only reads and judges keeps the cyclic GC off (cmd_audit turned it off for start-up): it
    # would walk every object read (millions for a repository) again and again, and the run makes few cycles; the
    # process ends when the reports are written. pytest's run (threads, probes, long-lived sessions) gets it back.
    if not in_process:
        gc.enable()
    if in_process:  # the manifests are read by a second process while the runner builds its cases
        suites = suites_dir()
        args.in_process = True
        joined = early.adopt(target.kubernetes) if early is not None else beside.start(target.kubernetes)

        def read() -> tuple[float, str]:  # the runner asks once it needs the objects
            t1 = time.perf_counter()
            seconds = joined() if joined is not None else None
            _read_offline_state(target)  # what the child did not read is read here: one-line error, exit 2
            if seconds is not None:
                return seconds, "manifests read by a second process"
            return time.perf_counter() - t1, ""

        try:
            return runner.run(target_file, target, args, suites, STARTED, read)
        finally:
            if joined is not None:
                joined.cancel()  # the run stopped before it needed the objects (a bad waiver file): stop the child
    if early is not None:
        early.cancel()  # pytest's run reads the manifests itself (in each xdist worker)
    _read_offline_state(target)  # one-line error and exit 2 before pytest starts
    return _run_pytest(target_file, args)


def _discovered(args, out: Path):
    """Read the source the options name, discover, write the profile to ``out``; (discovery, decisions)."""
    from nimwarden.k8s import load_manifests, load_snapshot
    from nimwarden.k8s.discovery import discover, read_live
    from nimwarden.k8s.profile_yaml import ProfileSource, render_profile
    from nimwarden.report.summary import iso, utc_now

    snapshots, manifests = getattr(args, "snapshot", []), getattr(args, "manifests", [])
    if sum(map(bool, (args.kubeconfig or args.context, snapshots, manifests))) > 1:
        raise UsageError("give one of --kubeconfig, --snapshot or --manifests")
    def rel(p: str) -> str:  # relative to the profile when it sits nearby (a repository), else absolute
        r = os.path.relpath(Path(p).resolve(), out.resolve().parent)
        return r if not r.startswith(os.pardir + os.sep + os.pardir) else str(Path(p).resolve())

    if snapshots:
        state, source = load_snapshot(snapshots), ProfileSource("snapshot", tuple(rel(p) for p in snapshots))
    elif manifests:
        state, source = load_manifests(manifests), ProfileSource("manifests", tuple(rel(p) for p in manifests))
    else:
        config = _kube_configuration(args)
        try:
            state, _ = read_live(config, args.namespace, args.api_timeout)
        except Exception as exc:  # noqa: BLE001 - unreachable API server, 401: one line
            raise UsageError(f"discovery could not read the cluster: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}") from None
        kubeconfig = str(Path(args.kubeconfig).resolve()) if args.kubeconfig else None
        source = ProfileSource("live", (), kubeconfig, args.context, tuple(args.namespace))
    # What was read is kept until the process ends and holds no cycles: the cyclic GC need not walk it again each
    # time discovery makes more objects (docs/benchmarks.md, discover at repository scale).
    gc.freeze()
    in_pod = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not args.kubeconfig
    position = args.position or ("cluster-internal" if in_pod else "external")
    probes = not args.no_probes and source.source != "manifests"
    found = discover(state, args.namespace)
    for f in found.found:
        if f.unit:  # written relative to the profile, like kubernetes.paths
            f.unit = rel(f.unit)
    name = args.name or _target_name(args.context or (_current_context(args.kubeconfig) if source.source == "live" else None))
    text, decisions = render_profile(found, name=name, position=position, source=source, probes=probes, written_at=iso(utc_now()))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise (unwritable(exc, out, "the profile") or exc) from None
    return found, decisions, position, probes


def _target_name(context: str | None) -> str:
    import re

    name = re.sub(r"[^a-z0-9-]+", "-", (context or "").lower()).strip("-")
    return name or "discovered"


def _current_context(kubeconfig: str | None) -> str | None:
    import yaml

    from nimwarden import yaml_bounded

    path = kubeconfig or (os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")).split(os.pathsep)[0]
    try:
        return (yaml_bounded.load(Path(path).read_text(encoding="utf-8")) or {}).get("current-context")
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None


def cmd_discover(args) -> int:
    from nimwarden.families import load_profile
    from nimwarden.k8s.profile_yaml import table

    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to overwrite it or --out another file")
    found, decisions, position, probes = _discovered(args, out)
    print(table(found, decisions, position, probes))
    load_profile(out)  # the written profile is one `nimwarden validate` accepts (else exit 2, naming the field)
    print(f"profile: {out} (check it with `nimwarden validate --target {out}`, audit with `nimwarden audit --target {out}`)")
    return 0


def _audit_discovered(args) -> int:
    """`audit --kubeconfig F`: discover, write the profile into the run directory, audit with it."""
    from nimwarden.families import load_profile
    from nimwarden.k8s.profile_yaml import table
    from nimwarden.report.summary import new_run_dir, utc_now

    run_dir = new_run_dir(_check_reports_dir(args), utc_now())
    profile = run_dir / "target.yaml"
    found, decisions, position, probes = _discovered(args, profile)
    print(table(found, decisions, position, probes), file=sys.stderr)
    load_profile(profile)
    _say(f"profile written to {profile} (edit it and reuse it with --target)")
    if not found.found:
        _say("no Triton or NIM deployment found: nothing to audit")
        return EXIT_USAGE
    args.run_dir = run_dir
    return _run_pytest(profile, args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
