"""Declared versus observed reachability: the probe plan's flows, what the network did, and the verdict.

Per flow:

| declared (model) | observed | verdict |
|---|---|---|
| allowed | allowed | consistent |
| blocked | blocked | consistent — only when the destination was seen alive |
| allowed | blocked | mismatch: declared allowed, observed blocked (broken service) |
| blocked | allowed | mismatch, critical: declared blocked, observed reachable (policy not enforced) |
| any | error | error |

A blocked observation (no answer) cannot tell a dropping firewall from a dead
service, so it only counts when some position reached that destination port
in the same run (a sampled allowed flow, or the liveness probe from the
destination's own position); otherwise the flow is an error (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

ALLOWED, BLOCKED, ERROR = "allowed", "blocked", "error"
CONSISTENT, NOT_ENFORCED, BROKEN, UNJUDGED = "consistent", "not-enforced", "broken", "error"
LIVENESS = "liveness"  # the expected-allowed flow from a destination to itself


@dataclass(frozen=True)
class Flow:
    """One probe: from a source position to a destination address and port, with the model's expectation."""

    source: str  # model pod key of the source position, e.g. "tenant-a/client"
    destination: str  # model pod key, e.g. "nim/hardened"
    address: str  # where the destination listens, e.g. "10.213.0.101"
    port: int
    protocol: str
    expected: bool  # the model allows it
    why: str = ""  # the model's explanation (policy and rule)
    purpose: str = "policy"  # "policy" or LIVENESS

    @property
    def label(self) -> str:
        return f"{self.source} -> {self.destination} {self.port}/{self.protocol}"

    @property
    def target(self) -> tuple[str, int, str]:
        return (self.address, self.port, self.protocol)


@dataclass(frozen=True)
class Observation:
    flow: Flow
    result: str  # ALLOWED, BLOCKED or ERROR
    detail: str  # "connected in 1.2 ms", "no answer within 0.8 s", "connection refused"
    elapsed_s: float = 0.0

    def evidence(self) -> dict:
        return {"flow": self.flow.label, "address": f"{self.flow.address}:{self.flow.port}/{self.flow.protocol}", "result": self.result, "detail": self.detail}


@dataclass
class LiveProbe:
    """A finished live probe as the suite judges it: the attempt, what declared the policy, the subject, extra evidence."""

    attempt: Any  # Attempt[list[Observation]]
    declared_by: str
    subject: str
    evidence: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Judged:
    observation: Observation
    verdict: str  # CONSISTENT, NOT_ENFORCED, BROKEN, UNJUDGED
    reason: str

    @property
    def flow(self) -> Flow:
        return self.observation.flow


def judge_observations(observations: Sequence[Observation]) -> list[Judged]:
    alive = {o.flow.target for o in observations if o.result == ALLOWED}
    out: list[Judged] = []
    for o in observations:
        f = o.flow
        declared = "declared allowed" if f.expected else "declared blocked"
        if o.result == ERROR:
            out.append(Judged(o, UNJUDGED, f"{f.label}: probe error: {o.detail}"))
        elif o.result == ALLOWED and not f.expected:
            out.append(Judged(o, NOT_ENFORCED, f"{f.label}: declared blocked, observed reachable ({o.detail})"))
        elif o.result == BLOCKED and f.target not in alive:
            out.append(Judged(o, UNJUDGED, f"{f.label}: no answer ({o.detail}) and no position reached {f.address}:{f.port}/{f.protocol}, so a block cannot be told from a dead service"))
        elif o.result == BLOCKED and f.expected:
            out.append(Judged(o, BROKEN, f"{f.label}: declared allowed, observed blocked ({o.detail})"))
        else:
            out.append(Judged(o, CONSISTENT, f"{f.label}: {declared}, observed {o.result}"))
    return out


@dataclass(frozen=True)
class Cell:
    source: str
    column: str  # "nim/hardened 8000/TCP"
    expected: bool
    observed: str
    verdict: str
    reason: str


@dataclass(frozen=True)
class MatrixData:
    """Expected versus observed, shaped for the HTML report's table and picture."""

    sources: tuple[str, ...]
    columns: tuple[str, ...]
    cells: tuple[Cell, ...]

    def cell(self, source: str, column: str) -> Cell | None:
        for c in self.cells:
            if c.source == source and c.column == column:
                return c
        return None

    @classmethod
    def from_dict(cls, raw: dict) -> MatrixData:
        """Back from :meth:`as_dict` (the form kept in an outcome's evidence)."""
        cells = tuple(Cell(c["source"], c["column"], c["expected"] == ALLOWED, c["observed"], c["verdict"], c["reason"]) for c in raw["cells"])
        return cls(tuple(raw["sources"]), tuple(raw["columns"]), cells)

    def as_grid(self) -> dict:
        """The report's matrix shape (nimwarden.report.charts): rows, cols, observed and expected booleans.

        A cell that was not probed, or whose probe erred, is None ("unknown").
        """
        observed, expected = [], []
        for src in self.sources:
            o_row, e_row = [], []
            for col in self.columns:
                c = self.cell(src, col)
                o_row.append(None if c is None or c.observed == ERROR else c.observed == ALLOWED)
                e_row.append(None if c is None else c.expected)
            observed.append(o_row)
            expected.append(e_row)
        return {"rows": list(self.sources), "cols": list(self.columns), "cells": observed, "expected": expected}

    def as_dict(self) -> dict:
        return {
            "sources": list(self.sources),
            "columns": list(self.columns),
            "cells": [
                {"source": c.source, "column": c.column, "expected": ALLOWED if c.expected else BLOCKED, "observed": c.observed, "verdict": c.verdict, "reason": c.reason}
                for c in self.cells
            ],
        }


def matrix_data(judged: Iterable[Judged]) -> MatrixData:
    cells = []
    sources: list[str] = []
    columns: list[str] = []
    for j in judged:
        if j.flow.purpose == LIVENESS:
            continue
        col = f"{j.flow.destination} {j.flow.port}/{j.flow.protocol}"
        if j.flow.source not in sources:
            sources.append(j.flow.source)
        if col not in columns:
            columns.append(col)
        cells.append(Cell(j.flow.source, col, j.flow.expected, j.observation.result, j.verdict, j.reason))
    return MatrixData(tuple(sources), tuple(columns), tuple(cells))
