"""NIM-ENGINECVE-001: the engines inside a NIM. A NIM for LLMs release bundles a vLLM (or SGLang,
TensorRT-LLM) version; that engine's advisories apply to the NIM. The release is read from the NIM
itself (``GET /v1/version``: ``release``) or, when it does not answer, from its image tag in cluster
state; the table (``engines.yaml``, dated data) maps it to engine versions and those to advisories, and
every finding names the chain: NIM 2.1.5 → vLLM 0.31.0 → CVE-2026-115911 (fixed in vLLM 0.32.0).

A release the table does not know is an **error**, not "not applicable": which engine it bundles is
unknown, so the NIM cannot be judged, and "not applicable" would let an unjudged NIM read compliant.
A version match is "likely vulnerable" (NVIDIA may patch the engine inside a NIM); say so, like the
Triton tables.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from nimwarden.catalog import SAFE_LOADER
from nimwarden.dated import Dates, parse_dates, severity_of
from nimwarden.dated import rows as dated_rows
from nimwarden.outcome import Attempt, Outcome, errored, fail_closed, failed, passed

TABLE_FILE = Path(__file__).resolve().parent / "engines.yaml"
ENGINES = {"vllm": "vLLM", "sglang": "SGLang", "tensorrt-llm": "TensorRT-LLM"}
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:\.?(rc|post|dev)(\d+))?")


def engine_version(text: str) -> tuple[int, ...] | None:
    """``0.31.0`` → (0, 31, 0, 0, 0); ``1.3.0rc24`` → (1, 3, 0, -1, 24) (a release candidate sorts before its
    release); ``0.6.1.post1`` → (0, 6, 1, 1, 1). None when it is not a version."""
    m = _VERSION.match(str(text).strip())
    if not m:
        return None
    major, minor, patch, tag, n = m.groups()
    rank = {"rc": -1, "dev": -2, "post": 1}.get(tag or "", 0)
    return (int(major), int(minor), int(patch or 0), rank, int(n or 0))


@dataclass(frozen=True)
class Advisory:
    id: str
    engine: str
    cvss: float
    title: str
    url: str
    introduced: tuple[int, ...] | None
    fixed: tuple[int, ...] | None  # None: no fix named, judged through ``affected_through``
    fixed_text: str | None
    affected_through: tuple[int, ...] | None
    aliases: tuple[str, ...] = ()

    def affects(self, v: tuple[int, ...]) -> bool:
        if self.introduced is not None and v < self.introduced:
            return False
        if self.fixed is not None:
            return v < self.fixed
        return self.affected_through is not None and v <= self.affected_through


@dataclass(frozen=True)
class EngineTable:
    version: str
    dates: Dates
    releases: Mapping[str, Mapping[str, str]]  # NIM release → {engine: version}
    sources: Mapping[str, str]  # NIM release → the release notes it was read from
    advisories: tuple[Advisory, ...]

    def stamp(self, today: dt.date | None = None) -> dict[str, Any]:
        return self.dates.stamp("NIM engine table", self.version, "nimwarden/families/nim_api/engines.yaml", len(self.advisories),
                                today, nim_releases=sorted(self.releases, key=engine_version))


def parse_table(data: Mapping[str, Any], where: str = "engines.yaml") -> EngineTable:
    releases, sources = {}, {}
    for release, row in (data.get("nim_releases") or {}).items():
        at = f"{where}: nim_releases.{release}"
        engines = {str(k): str(v) for k, v in (row or {}).items() if k in ENGINES}
        if not engines or not row.get("source"):
            raise ValueError(f"{at}: needs at least one engine version ({', '.join(ENGINES)}) and its source")
        if engine_version(str(release)) is None or any(engine_version(v) is None for v in engines.values()):
            raise ValueError(f"{at}: a version is not x.y.z")
        releases[str(release)], sources[str(release)] = engines, str(row["source"])
    rows = []
    for at, a in dated_rows(data, "advisories", where, ("id", "engine", "cvss", "title", "url")):
        if a["engine"] not in ENGINES:
            raise ValueError(f"{at}: unknown engine {a['engine']!r} (known: {', '.join(ENGINES)})")
        if bool(a.get("fixed")) == bool(a.get("affected_through")):
            raise ValueError(f"{at}: give exactly one of fixed and affected_through")
        parsed = {k: engine_version(str(a[k])) if a.get(k) else None for k in ("introduced", "fixed", "affected_through")}
        if any(a.get(k) and v is None for k, v in parsed.items()):
            raise ValueError(f"{at}: a version is not x.y.z")
        rows.append(Advisory(str(a["id"]), str(a["engine"]), float(a["cvss"]), str(a["title"]), str(a["url"]), parsed["introduced"],
                             parsed["fixed"], str(a["fixed"]) if a.get("fixed") else None, parsed["affected_through"],
                             tuple(str(x) for x in a.get("aliases") or ())))
    return EngineTable(str(data["version"]), parse_dates(data, where), releases, sources, tuple(rows))


@lru_cache(maxsize=1)
def load_table() -> EngineTable:
    return parse_table(yaml.load(TABLE_FILE.read_text(encoding="utf-8"), Loader=SAFE_LOADER), "nimwarden/families/nim_api/engines.yaml")


@dataclass(frozen=True)
class NimRelease:
    """What a NIM says it is: its release and where that was read (``GET /v1/version`` or an image tag)."""

    release: str
    read_from: str
    seen: Mapping[str, Any]  # the answers and images consulted (redacted summaries)


@fail_closed
def engine_cves(nim: Attempt[NimRelease], table: EngineTable | None = None) -> Outcome:
    """NIM-ENGINECVE-001: no engine the NIM release bundles is in range of a known advisory."""
    table = table or load_table()
    o = nim.observation
    evidence: dict[str, Any] = {"nim_release": o.release, "read_from": o.read_from, "seen": dict(o.seen),
                                "engine_table": table.stamp()}
    engines = table.releases.get(o.release)
    if engines is None:
        known = sorted(table.releases, key=engine_version)
        v, newest = engine_version(o.release), known[-1]
        where = (f"newer than the newest release it maps ({newest})" if v is not None and v > engine_version(newest)
                 else f"it maps {', '.join(known)}")
        return errored(f"NIM release {o.release} ({o.read_from}) is not in the NIM engine table {table.version} ({where}): which "
                       "vLLM / TensorRT-LLM it bundles is unknown, so its engine advisories cannot be judged; add the release "
                       "from NVIDIA's NIM for LLMs release notes (docs/cve-table.md)", **evidence)
    evidence["engines"] = dict(engines)
    evidence["release_notes"] = table.sources[o.release]
    chains = []
    for engine, version in engines.items():
        v = engine_version(version)
        for a in table.advisories:
            if a.engine == engine and v is not None and a.affects(v):
                fix = f"fixed in {ENGINES[engine]} {a.fixed_text}" if a.fixed_text else "no fixed version named by the source"
                chains.append((a, f"NIM {o.release} → {ENGINES[engine]} {version} → {a.id} "
                                  f"({', '.join(a.aliases) + ', ' if a.aliases else ''}CVSS {a.cvss:g}), {fix}"))
    if not chains:
        inside = ", ".join(f"{ENGINES[e]} {v}" for e, v in engines.items())
        return passed(f"NIM {o.release} ({o.read_from}) bundles {inside}: past every advisory in the NIM engine table "
                      f"{table.version} ({table.dates.words()})", **evidence)
    chains.sort(key=lambda c: (-c[0].cvss, c[0].id))
    evidence["chains"] = [{"chain": text, "id": a.id, "engine": a.engine, "cvss": a.cvss, "url": a.url} for a, text in chains]
    return failed(f"NIM {o.release} ({o.read_from}) is likely vulnerable through the engine it bundles (version match; NVIDIA may "
                  f"patch the engine inside a NIM): " + "; ".join(text for _, text in chains),
                  severity=severity_of(chains[0][0].cvss), **evidence)
