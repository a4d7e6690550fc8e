"""Data that must be kept current carries two dates (the CVE tables, the release maps, the port tables).

- ``as_of``: the newest entry the table holds (the newest bulletin, advisory or release it records);
- ``checked``: the day its sources were last read, and the newest date those sources showed then
  (``checked: {date: 2026-12-06, newest_seen: 2026-11-17, sources: [...]}``).

A table whose newest bulletin is three months old is not stale when its sources were read last week
and held nothing newer: staleness counts from ``checked``, never from ``as_of``. Re-checking the
sources moves ``checked`` even when no row changes (docs/cve-table.md says how). Every report prints
both dates for every table (summary.json ``data``, the HTML header).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STALE_AFTER_DAYS = 90


def to_date(value: Any, where: str) -> dt.date:
    """A YAML date (or ISO string) as a date; ValueError naming ``where`` otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class Dates:
    as_of: dt.date  # the newest entry the table holds
    checked: dt.date  # the day the sources were last read
    newest_seen: dt.date  # the newest date those sources showed when they were read
    sources: tuple[str, ...] = ()  # what was read (titles / URLs)

    def stamp(self, name: str, version: str, source: str, rows: int | None = None, today: dt.date | None = None,
              **extra: Any) -> dict[str, Any]:
        """The table's identity for reports. ``age_days`` counts from ``checked`` (the staleness clock);
        ``as_of_age_days`` is how old the newest entry is."""
        today = today or dt.date.today()
        age = (today - self.checked).days
        out: dict[str, Any] = {"name": name, "version": version, "as_of": self.as_of.isoformat(),
                               "checked": self.checked.isoformat(), "checked_newest_seen": self.newest_seen.isoformat(),
                               "age_days": age, "as_of_age_days": (today - self.as_of).days,
                               "stale": age > STALE_AFTER_DAYS, "stale_after_days": STALE_AFTER_DAYS, "source": source}
        if rows is not None:
            out["rows"] = rows
        out.update(extra)
        return out

    def words(self) -> str:
        """``as of 2026-09-08, sources checked 2026-12-06 (newest seen 2026-11-17)`` for reasons and notes."""
        return f"as of {self.as_of}, sources checked {self.checked} (newest seen {self.newest_seen})"


def parse_dates(data: Mapping[str, Any], where: str) -> Dates:
    """``as_of`` and ``checked`` of a dated table; ValueError naming the file and field when one is missing."""
    if data.get("as_of") in (None, ""):
        raise ValueError(f"{where}: as_of missing (the newest entry the table holds)")
    as_of = to_date(data["as_of"], f"{where}: as_of")
    checked = data.get("checked")
    if not isinstance(checked, Mapping) or checked.get("date") in (None, ""):
        raise ValueError(f"{where}: checked.date missing (the day the sources were last read)")
    on = to_date(checked["date"], f"{where}: checked.date")
    newest = to_date(checked.get("newest_seen") or on, f"{where}: checked.newest_seen")
    if newest > on:
        raise ValueError(f"{where}: checked.newest_seen {newest} is after checked.date {on}")
    if as_of > on:
        raise ValueError(f"{where}: as_of {as_of} is after checked.date {on}: the sources were read after the newest entry")
    return Dates(as_of, on, newest, tuple(str(s) for s in checked.get("sources") or ()))


def rows(data: Mapping[str, Any], key: str, where: str, required: tuple[str, ...]):
    """``(where-of-row, row)`` for each row of a dated table's list ``key``, after checking the fields every
    row must give; ValueError naming the file, the row and the missing field otherwise."""
    for i, row in enumerate(data.get(key) or ()):
        at = f"{where}: {key}[{i}] ({row.get('id', '?')})"
        for field in required:
            if row.get(field) in (None, "", {}):
                raise ValueError(f"{at}: {field} missing")
        yield at, row


def severity_of(cvss: float) -> str:
    """CVSS v3 qualitative rating, in the catalog's words (every dated advisory table rates its rows so)."""
    return "critical" if cvss >= 9.0 else "high" if cvss >= 7.0 else "medium" if cvss >= 4.0 else "low"
