"""Typed results: what a probe saw (Attempt) and what a judge concluded (Outcome).

Keep the attempt apart from the result (sslyze's ScanCommandAttempt): a probe
returns an :class:`Attempt` that either completed with an observation or
failed with a reason; a judge turns completed attempts into an
:class:`Outcome` and refuses to judge incomplete ones (fail closed).
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    NOT_APPLICABLE = "not_applicable"
    WAIVED = "waived"

    def __str__(self) -> str:  # "pass", not "Status.PASS", in messages
        return self.value


STATUSES = tuple(s.value for s in Status)
SEVERITIES = ("critical", "high", "medium", "low", "info")


@dataclass(frozen=True)
class Outcome:
    """A judge's verdict on one control for one subject.

    ``severity`` overrides the control's default (e.g. a version-only CVE
    match is reported below a confirmed one); ``subject`` overrides the
    subject the suite parametrized with (e.g. ``Deployment/ns/name``).
    """

    status: Status
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    severity: str | None = None
    subject: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.status, Status):
            object.__setattr__(self, "status", Status(self.status))
        if self.severity is not None and self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        if not self.reason:
            raise ValueError("an outcome needs a reason")


def passed(reason: str, **evidence: Any) -> Outcome:
    return Outcome(Status.PASS, reason, evidence)


def failed(reason: str, *, severity: str | None = None, **evidence: Any) -> Outcome:
    return Outcome(Status.FAIL, reason, evidence, severity=severity)


def errored(reason: str, **evidence: Any) -> Outcome:
    return Outcome(Status.ERROR, reason, evidence)


def not_applicable(reason: str, **evidence: Any) -> Outcome:
    return Outcome(Status.NOT_APPLICABLE, reason, evidence)


def combine_urls(outcomes: Sequence[Outcome], evidence_key: str, *, single_pass_as_is: bool = True) -> Outcome | None:
    """One verdict over the same question asked at several URLs: any fail fails (with the worst severity among
    them), else any error errors, else pass; each part's evidence under ``evidence_key``. None when nothing was
    asked (the caller says what was missing). A single fail or error is returned as it is; so is a single pass
    unless ``single_pass_as_is`` is False."""
    if not outcomes:
        return None
    for status in (Status.FAIL, Status.ERROR):
        hit = [o for o in outcomes if o.status == status]
        if len(hit) == 1:
            return hit[0]
        if hit:
            severity = max((o.severity for o in hit if o.severity), default=None, key=lambda s: -SEVERITIES.index(s))
            return Outcome(status, " | ".join(o.reason for o in hit), {evidence_key: [dict(o.evidence) for o in hit]}, severity=severity)
    if len(outcomes) == 1 and single_pass_as_is:
        return outcomes[0]
    return passed(" | ".join(o.reason for o in outcomes), **{evidence_key: [dict(o.evidence) for o in outcomes]})


@dataclass(frozen=True)
class Attempt(Generic[T]):
    """One probe call: what was asked, and either what came back or why nothing usable did."""

    probe: str  # which probe asked, e.g. "triton.http"
    request: str  # what was asked, e.g. "GET http://127.0.0.1:8000/v2/logging"
    observation: T | None = None
    error: str | None = None
    elapsed_s: float = 0.0

    @property
    def completed(self) -> bool:
        return self.error is None and self.observation is not None

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"probe": self.probe, "request": self.request, "elapsed_s": round(self.elapsed_s, 3)}
        if self.error is not None:
            out["error"] = self.error
        elif hasattr(self.observation, "evidence"):
            out.update(self.observation.evidence())  # type: ignore[union-attr]
        elif self.observation is not None:
            out["observation"] = self.observation
        return out


def attempt(probe: str, request: str, fn: Callable[[], T], describe: Callable[[BaseException], str] | None = None) -> Attempt[T]:
    """Run ``fn`` and wrap its result or its exception into an Attempt.

    Every exception becomes an incomplete attempt with a reason; nothing is
    swallowed into a pass.
    """
    t0 = time.monotonic()
    try:
        obs = fn()
    except Exception as exc:  # noqa: BLE001 - turned into an error outcome, never a pass
        reason = describe(exc) if describe else f"{type(exc).__name__}: {exc}"
        return Attempt(probe, request, None, reason or type(exc).__name__, time.monotonic() - t0)
    if obs is None:
        return Attempt(probe, request, None, "probe returned no observation", time.monotonic() - t0)
    return Attempt(probe, request, obs, None, time.monotonic() - t0)


def incomplete(*attempts: Attempt[Any]) -> Outcome | None:
    """The error outcome for the first incomplete attempt, or None when all completed.

    Attempts may come nested in lists, tuples or dict values (a judge that takes several)."""
    for a in _attempts_in(attempts):
        if not a.completed:
            return errored(f"{a.request}: {a.error}", **a.evidence())
    return None


def _attempts_in(values: Any):
    for v in values:
        if isinstance(v, Attempt):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from _attempts_in(v)
        elif isinstance(v, Mapping):
            yield from _attempts_in(v.values())


F = TypeVar("F", bound=Callable[..., Outcome])


def fail_closed(judge: F) -> F:
    """The one way a judge says "incomplete means error" (sslyze's checker refuses incomplete scans).

    Before the judge runs, every :class:`Attempt` among its arguments (also inside lists, tuples
    and dict values) must have completed; the first one that did not becomes the error outcome,
    naming what was asked and why nothing usable came back. An :class:`Outcome` passed where an
    observation was expected (a probe that already decided: the cluster could not be read) is
    returned as it is. The judge's body therefore only ever sees completed observations.
    """

    @functools.wraps(judge)
    def guarded(*args: Any, **kwargs: Any) -> Outcome:
        values = (*args, *kwargs.values())
        for v in values:
            if isinstance(v, Outcome):
                return v
        bad = incomplete(*values)
        if bad is not None:
            return bad
        return judge(*args, **kwargs)

    return guarded  # type: ignore[return-value]
