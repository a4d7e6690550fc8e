"""Waivers: a person accepts the risk of one failing control on one subject, until a date.

A waivers file is YAML written by the people who own the risk::

    waivers:
      - control: TRITON-METRICS-001
        deployment: exposed
        subject: "http://127.0.0.1:*"   # optional glob, default "*"
        owner: alice@example.com
        reason: metrics stay open until the gateway lands
        ticket: SEC-1234
        expires: 2026-12-31

Waivers only ever come from this file, never from the target: an annotation
or label on a Kubernetes object cannot waive anything, because whoever can
edit the target would otherwise grant themselves an exemption.

Only ``fail`` results are waived. An ``error`` means nobody knows what the
risk is, so there is nothing to accept. A waiver past its expiry date does not
apply and is itself reported (kind ``expired``); a waiver that matches no
failure is reported as ``stale`` so that it gets removed.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nimwarden import yaml_bounded
from nimwarden.errors import ConfigError

REQUIRED = ("control", "deployment", "owner", "reason", "ticket", "expires")
OPTIONAL = ("subject",)


@dataclass(frozen=True)
class Waiver:
    control: str
    deployment: str
    subject: str  # fnmatch glob
    owner: str
    reason: str
    ticket: str
    expires: dt.date
    source: str = ""  # "file:index", so a report can point at the line a reader must edit

    def matches(self, result: Mapping[str, Any]) -> bool:
        return (
            result.get("control") == self.control
            and result.get("deployment") == self.deployment
            and fnmatch.fnmatchcase(str(result.get("subject", "")), self.subject)
        )

    def expired(self, today: dt.date) -> bool:
        return today > self.expires  # valid through its expiry day

    def record(self) -> dict[str, Any]:
        return {
            "control": self.control,
            "deployment": self.deployment,
            "subject": self.subject,
            "owner": self.owner,
            "reason": self.reason,
            "ticket": self.ticket,
            "expires": self.expires.isoformat(),
            "source": self.source,
        }


def _parse_date(value: Any, file: str, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(file, where, f"expires must be a date like 2026-12-31, not {value!r}")


def _field(key: str) -> str:
    """A key as written, with line breaks and control characters escaped: the message stays one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in key)


def parse_waivers(data: Any, file: str, known_controls: Iterable[str] | None = None) -> list[Waiver]:
    """Validate already-loaded YAML; every problem is one ``file: field: problem`` line."""
    if isinstance(data, Mapping):
        unknown = set(data) - {"waivers"}
        if unknown:
            raise ConfigError(file, _field(sorted(map(str, unknown))[0]), "unknown top-level key (expected 'waivers')")
        data = data.get("waivers")
    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigError(file, "waivers", "must be a list of waivers")
    known = set(known_controls) if known_controls is not None else None
    waivers = []
    for i, entry in enumerate(data):
        where = f"waivers[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(file, where, "a waiver is a mapping")
        for key in REQUIRED:
            if key not in entry or entry[key] in (None, ""):
                raise ConfigError(file, f"{where}.{key}", "required field missing")
        unknown = set(entry) - set(REQUIRED) - set(OPTIONAL)
        if unknown:
            raise ConfigError(file, f"{where}.{_field(sorted(map(str, unknown))[0])}", "unknown field")
        for key in ("control", "deployment", "owner", "reason", "ticket", "subject"):
            if key in entry and not isinstance(entry[key], str | int):
                raise ConfigError(file, f"{where}.{key}", "must be a string")
        control = str(entry["control"])
        if known is not None and control not in known:
            raise ConfigError(file, f"{where}.control", f"unknown control {control!r}")
        waivers.append(
            Waiver(
                control=control,
                deployment=str(entry["deployment"]),
                subject=str(entry.get("subject") or "*"),
                owner=str(entry["owner"]),
                reason=str(entry["reason"]).strip(),
                ticket=str(entry["ticket"]),
                expires=_parse_date(entry["expires"], file, f"{where}.expires"),
                source=f"{Path(file).name}:{where}",
            )
        )
    return waivers


def load_waivers(path: str | Path, known_controls: Iterable[str] | None = None) -> list[Waiver]:
    path = Path(path)
    try:
        data = yaml_bounded.load(path.read_text(encoding="utf-8"), yaml.SafeLoader)
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read waivers: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(path, where, f"not valid YAML: {' '.join(str(getattr(exc, 'problem', None) or exc).split())}") from None
    return parse_waivers(data, str(path), known_controls)


def apply_waivers(
    results: Iterable[Mapping[str, Any]], waivers: Iterable[Waiver], today: dt.date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (results with waived ones marked, waiver findings: expired and stale waivers).

    A waived result keeps its original reason and evidence, gains ``"waiver"``
    (the record) and ``"waived_status": "fail"`` so nothing is lost. The input is not changed: a waived
    result is a copy, every other result is the caller's own (a repository audit has 200,000 of them, and
    a copy of each was a tenth of the run's memory).
    """
    waivers = list(waivers)
    used: set[int] = set()
    expired_hits: dict[int, list[Mapping[str, Any]]] = {}
    out = []
    for result in results:
        if result.get("status") == "fail":
            for i, waiver in enumerate(waivers):
                if not waiver.matches(result):
                    continue
                if waiver.expired(today):
                    expired_hits.setdefault(i, []).append(result)
                    continue
                used.add(i)
                result = dict(result)
                result["status"] = "waived"
                result["waived_status"] = "fail"
                result["waiver"] = waiver.record()
                break
        out.append(result)
    findings = []
    for i, waiver in enumerate(waivers):
        if waiver.expired(today):
            hits = expired_hits.get(i, [])
            findings.append(
                {
                    "kind": "expired",
                    "waiver": waiver.record(),
                    "reason": f"waiver for {waiver.control} on {waiver.deployment} expired on "
                    f"{waiver.expires.isoformat()} (owner {waiver.owner}, ticket {waiver.ticket}); "
                    f"{len(hits)} failure(s) it covered now count",
                    "subjects": sorted({str(r.get("subject", "")) for r in hits}),
                }
            )
        elif i not in used:
            findings.append(
                {
                    "kind": "stale",
                    "waiver": waiver.record(),
                    "reason": f"waiver for {waiver.control} on {waiver.deployment} subject {waiver.subject!r} "
                    "matches no failure in this run: remove it or correct it",
                    "subjects": [],
                }
            )
    return out, findings


def recount(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Totals after waivers changed statuses (same keys as summary.json's totals)."""
    totals = {s: 0 for s in ("pass", "fail", "error", "skip", "not_applicable", "waived")}
    for r in results:
        totals[r.get("status", "error")] = totals.get(r.get("status", "error"), 0) + 1
    return totals
