"""Apply units: how a manifest tree that defines the same object more than once is read.

A user applies a repository folder by folder (``kubectl apply -f envs/prod``), or one file of several
alternatives (``kubectl apply -f llm.yaml`` or ``-f multi-llm.yaml``, as NVIDIA's operator samples are
laid out). :func:`split_units` cuts a tree into those units only where it must: where two files define
the same object (kind, namespace, name). :func:`merge_units` makes one Outcome of a control judged in
several units (the same workload in two environments, judged in each).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from nimwarden.outcome import SEVERITIES, Outcome


def _clash(files: Iterable[Path], keys: Mapping[Path, frozenset]) -> bool:
    """Whether two of these files define the same object."""
    seen: set = set()
    for f in files:
        k = keys[f]
        if not seen.isdisjoint(k):
            return True
        seen |= k
    return False


def split_units(entries: list[tuple[Path, list[Path]]], keys: Mapping[Path, frozenset]) -> list[tuple[Path, list[Path], tuple[Path, ...]]]:
    """(unit path, its files, the paths of its enclosing units) for the files of every path entry.

    One unit while no two files define the same object (what ``kubectl apply`` of everything gives);
    otherwise each path entry apart, and an entry whose files clash is split along its folders: a folder
    whose whole subtree applies without a clash is one unit; in a folder that clashes, its own files are
    one unit and each sub-folder is split the same way; own files that clash with each other are
    alternatives (`kubectl apply -f llm.yaml` or `-f multi-llm.yaml`): each such file is a unit of its own,
    enclosed by the unit of the folder's other files."""
    every = [f for _, files in entries for f in files]
    if not _clash(every, keys):
        return [(Path(""), every, ())]
    out: list[tuple[Path, list[Path], tuple[Path, ...]]] = []

    def split(folder: Path, files: list[Path], enclosing: tuple[Path, ...]) -> None:
        if not _clash(files, keys):
            out.append((folder, files, enclosing))
            return
        own = [f for f in files if f.parent == folder]
        below: dict[Path, list[Path]] = {}
        for f in files:
            if f.parent != folder:
                below.setdefault(folder / f.relative_to(folder).parts[0], []).append(f)
        inner = enclosing
        if own:
            counts: dict[tuple, int] = {}
            for f in own:
                for k in keys[f]:
                    counts[k] = counts.get(k, 0) + 1
            alternatives = [f for f in own if any(counts[k] > 1 for k in keys[f])]
            common = [f for f in own if f not in alternatives]
            if common:
                out.append((folder, common, enclosing))
                inner = (folder, *enclosing)
            out.extend((f, [f], inner) for f in alternatives)
        for sub in sorted(below):
            split(sub, below[sub], inner)

    for path, files in entries:
        if path.is_dir():
            split(path, files, ())
        else:
            out.append((path, files, ()))
    return out


_RANK = {"fail": 0, "error": 1, "pass": 2, "waived": 3, "skip": 4, "not_applicable": 5}


def merge_units(outcomes: list[tuple[str, Outcome]]) -> Outcome:
    """One Outcome from the same control judged in several apply units: fail if any unit fails, else error
    if any could not be evaluated, else pass if any passed; the findings, locations and objects of every
    unit (a shared object's finding once), and each unit's status and reason under ``units``."""
    if len(outcomes) == 1:
        unit, only = outcomes[0]
        return replace(only, evidence={**only.evidence, "unit": unit})
    _unit, first = min(outcomes, key=lambda uo: _RANK.get(uo[1].status.value, 9))
    same = [o for _, o in outcomes if o.status == first.status]
    evidence: dict[str, Any] = dict(first.evidence)
    for key in ("findings", "locations", "objects"):
        merged: list = []
        marks: set = set()
        for _, o in outcomes:
            for item in o.evidence.get(key) or ():
                mark = repr(item)
                if mark not in marks:
                    marks.add(mark)
                    merged.append(item)
        if merged:
            evidence[key] = merged
    evidence["units"] = {u: {"status": o.status.value, "reason": o.reason} for u, o in outcomes}
    more = f" (so in {len(same) - 1} more apply unit(s))" if len(same) > 1 else ""
    severities = [o.severity for o in same if o.severity]
    return replace(first, reason=f"{first.reason}{more}" if first.status.value in ("fail", "error") else first.reason,
                   evidence=evidence, severity=min(severities, key=SEVERITIES.index) if severities else first.severity,
                   subject=first.subject)
