"""Verdicts per deployment and the exit status of an audit (docs/architecture.md, Contracts).

Exit status: 0 every deployment met its expectation; 1 a compliance failure on
a deployment expected to be compliant, or a canary that passed; 2 usage or
configuration error (raised by the CLI, never computed here); 3 a control could
not be evaluated (error) and no failure was found.

``--fail-on SEVERITY`` narrows what counts: with it, only failures and errors
at or above that severity count (critical > high > medium > low > info).
A failure below the threshold is still reported everywhere, it just does not
change the exit status. Canary checks are never narrowed: a canary that passes
means the harness is blind, whatever the severity.

A canary is a deployment with ``expect: noncompliant``. It "passed" when it
shows no failure at all, or when a control it is declared to break (the
deployment's ``must_fail`` list, or a result marked ``"expected": "fail"``)
came back ``pass``.

Waived results never count; an expired waiver does not apply, so its result
stays ``fail`` and counts.

Fail closed at every level: a deployment expected compliant (or the target-wide row, results
tied to no one deployment) where nothing was evaluated — every result not_applicable or skipped,
or no result at all — is "could not evaluate" (exit 3), never compliant; its verdict says why
(the reasons of its results). :func:`family_verdicts` says the same per family, for the report.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nimwarden.outcome import SEVERITIES

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_ERROR = 3

FAIL_ON_CHOICES = ("critical", "high", "medium", "low")

COMPLIANT = "compliant"
NONCOMPLIANT = "non-compliant"
UNEVALUATED = "could not evaluate"
CANARY_CAUGHT = "non-compliant as expected"
CANARY_PASSED = "canary passed: harness blind"


def severity_rank(severity: str | None) -> int:
    """Higher is worse; unknown severities rank lowest so they never gate by accident of typo."""
    order = list(reversed(SEVERITIES))  # info, low, medium, high, critical
    return order.index(severity) if severity in order else -1


def at_or_above(severity: str | None, threshold: str | None) -> bool:
    if threshold is None:
        return True
    if threshold not in SEVERITIES:
        raise ValueError(f"--fail-on must be one of {', '.join(FAIL_ON_CHOICES)}, not {threshold!r}")
    return severity_rank(severity) >= severity_rank(threshold)


@dataclass(frozen=True)
class DeploymentVerdict:
    name: str
    expect: str  # "compliant" | "noncompliant"
    verdict: str
    counts: Mapping[str, int]
    canaries_passed: tuple[Mapping[str, Any], ...] = ()
    failures: tuple[Mapping[str, Any], ...] = field(default=())
    errors: tuple[Mapping[str, Any], ...] = field(default=())
    why: str = ""  # for "could not evaluate": what kept every control from being evaluated

    @property
    def met_expectation(self) -> bool:
        return self.verdict in (COMPLIANT, CANARY_CAUGHT)

    @property
    def is_canary(self) -> bool:
        return self.expect == "noncompliant"


def _deployment_entries(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Declared deployments, plus any that only appear in results (expect: compliant, fail closed)."""
    declared = list(summary.get("deployments") or [])
    names = {d.get("name") for d in declared}
    for result in summary.get("results") or []:
        name = result.get("deployment")
        if name not in names:
            names.add(name)
            declared.append({"name": name, "expect": "compliant"})
    return declared


def _counts(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.get("status", "error")] = counts.get(r.get("status", "error"), 0) + 1
    return counts


# "baselined": a finding the --fail-on-new gate set aside as already known (nimwarden.report.baseline): judged all the same
EVALUATED = ("pass", "fail", "waived", "baselined")


def _why_unevaluated(mine: list[Mapping[str, Any]], errors: list[Mapping[str, Any]]) -> str:
    """What kept a deployment from being evaluated: its errors, else the reasons nothing applied."""
    if errors:
        first = str(errors[0].get("reason") or "")
        return f"{len(errors)} control(s) could not be evaluated: {first}" + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else "")
    if not mine:
        return "no control ran on it"
    reasons: dict[str, int] = {}
    for r in mine:
        reason = str(r.get("reason") or r.get("status"))
        reasons[reason] = reasons.get(reason, 0) + 1
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:3]
    return "nothing was evaluated (" + ", ".join(f"{n} {s}" for s, n in sorted(_counts(mine).items())) + "): " + \
        "; ".join(f"{reason} ×{n}" if n > 1 else reason for reason, n in top)


def family_verdicts(summary: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """(deployment, family) → "evaluated" or "not evaluated" (every result not_applicable/skipped): for the report."""
    seen: dict[tuple[str, str], bool] = {}
    for r in summary.get("results") or []:
        key = (str(r.get("deployment")), str(r.get("family")))
        seen[key] = seen.get(key, False) or r.get("status") in (*EVALUATED, "error")
    return {k: "evaluated" if v else "not evaluated" for k, v in seen.items()}


_last: list = []  # (results, key, verdicts) of the latest call: the report asks for the same verdicts many times


def deployment_verdicts(summary: Mapping[str, Any], fail_on: str | None = None) -> list[DeploymentVerdict]:
    """Each deployment's verdict, derived once for the same results: the exit status, the closing lines and
    every report ask for them. The same list of results (held here, so its identity cannot be reused) with
    the same statuses, severities, deployments and controls under the same gate is the same verdicts."""
    results = summary.get("results") or []
    try:
        content = tuple(map(_STATUS, results))  # in C: a fraction of what the verdicts cost
    except (KeyError, TypeError):
        content = tuple(map(_status, results))
    key = (id(results), len(results), fail_on, content,
           tuple((d.get("name"), d.get("expect"), tuple(d.get("must_fail") or ())) for d in summary.get("deployments") or []))
    if _last and _last[0][0] is results and _last[0][1] == key:
        return list(_last[0][2])
    verdicts = _deployment_verdicts(summary, fail_on)
    _last[:] = [(results, key, tuple(verdicts))]
    return verdicts


def _status(result: Mapping[str, Any]) -> Any:
    get = result.get
    return get("status"), get("severity"), get("deployment"), get("control")


_STATUS = operator.itemgetter("status", "severity", "deployment", "control")


def _deployment_verdicts(summary: Mapping[str, Any], fail_on: str | None = None) -> list[DeploymentVerdict]:
    verdicts = []
    by_deployment: dict[Any, list[Mapping[str, Any]]] = {}
    for r in summary.get("results") or []:  # one pass: never every result once per deployment
        by_deployment.setdefault(r.get("deployment"), []).append(r)
    for entry in _deployment_entries(summary):
        name = entry.get("name")
        expect = entry.get("expect", "compliant")
        mine = by_deployment.get(name, [])
        counts = _counts(mine)
        errors = [r for r in mine if r.get("status") == "error" and at_or_above(r.get("severity"), fail_on)]
        if expect == "noncompliant":
            caught = [r for r in mine if r.get("status") == "fail"]
            must_fail = set(entry.get("must_fail") or ())
            blind = [
                r for r in mine
                if r.get("status") == "pass" and (r.get("expected") == "fail" or r.get("control") in must_fail)
            ]
            if not caught and not blind and not mine:
                blind_all: list[Mapping[str, Any]] = []
                verdict = UNEVALUATED
            else:
                blind_all = blind
                errored = [r for r in mine if r.get("status") == "error"]
                if blind:
                    verdict = CANARY_PASSED
                elif caught:
                    verdict = CANARY_CAUGHT
                elif errored:
                    verdict = UNEVALUATED  # nothing caught because nothing could be looked at: not blind, unevaluated
                else:
                    verdict = CANARY_PASSED
            why = _why_unevaluated(mine, [r for r in mine if r.get("status") == "error"]) if verdict == UNEVALUATED else ""
            verdicts.append(
                DeploymentVerdict(name, expect, verdict, counts, tuple(blind_all), tuple(caught), tuple(errors), why)
            )
            continue
        failures = [r for r in mine if r.get("status") == "fail" and at_or_above(r.get("severity"), fail_on)]
        evaluated = [r for r in mine if r.get("status") in EVALUATED]
        why = ""
        if failures:
            verdict = NONCOMPLIANT
        elif errors or not evaluated:
            # nothing ran, or nothing that ran could be evaluated: never call an unexamined deployment compliant
            verdict, why = UNEVALUATED, _why_unevaluated(mine, errors)
        else:
            verdict = COMPLIANT
        verdicts.append(DeploymentVerdict(name, expect, verdict, counts, (), tuple(failures), tuple(errors), why))
    return verdicts


def exit_status(summary: Mapping[str, Any], fail_on: str | None = None) -> int:
    """The audit's exit status from its summary (see module docstring)."""
    if fail_on is not None and fail_on not in FAIL_ON_CHOICES:
        raise ValueError(f"--fail-on must be one of {', '.join(FAIL_ON_CHOICES)}, not {fail_on!r}")
    verdicts = deployment_verdicts(summary, fail_on)
    if any(v.verdict in (NONCOMPLIANT, CANARY_PASSED) for v in verdicts):
        return EXIT_FAILURE
    counted_errors = [
        r
        for r in summary.get("results") or []
        if r.get("status") == "error" and at_or_above(r.get("severity"), fail_on)
    ]
    if counted_errors or any(v.verdict == UNEVALUATED for v in verdicts) or summary.get("interrupted"):
        return EXIT_ERROR
    return EXIT_OK


EXPLAIN_UP_TO = 25  # deployments named one by one at the end of a run


def explain(summary: Mapping[str, Any], fail_on: str | None = None) -> str:
    """One line per deployment, for the end of a CI log; with more than :data:`EXPLAIN_UP_TO` deployments (a
    repository audit), the count per verdict and the deployments that missed their expectation, worst first."""
    lines = []
    verdicts = deployment_verdicts(summary, fail_on)
    shown = verdicts
    if len(verdicts) > EXPLAIN_UP_TO:
        per: dict[str, int] = {}
        for v in verdicts:
            per[v.verdict] = per.get(v.verdict, 0) + 1
        lines.append(f"{len(verdicts)} deployments: " + ", ".join(f"{n} {k}" for k, n in sorted(per.items(), key=lambda kv: -kv[1])))
        missed = [v for v in verdicts if not v.met_expectation]
        missed.sort(key=lambda v: (-v.counts.get("fail", 0), -v.counts.get("error", 0)))
        shown = missed[:EXPLAIN_UP_TO]
        if len(missed) > len(shown):
            lines.append(f"{len(missed)} missed their expectation; the {len(shown)} with most failures (all of them: report.html, summary.json):")
    for v in shown:
        detail = ", ".join(f"{k} {n}" for k, n in sorted(v.counts.items()))
        name = "target-wide" if v.name in ("-", "", None) else v.name  # results tied to no one deployment
        lines.append(f"{name} (expect {v.expect}): {v.verdict}" + (f" [{detail}]" if detail else "")
                     + (f" — {v.why}" if v.why else ""))
    lines += [f"warning: {w}" for w in summary.get("warnings") or ()]
    status = exit_status(summary, fail_on)
    gate = f" (--fail-on {fail_on})" if fail_on else ""
    lines.append(f"exit status {status}{gate}")
    return "\n".join(lines)
