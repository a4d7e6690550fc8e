"""Known Triton vulnerabilities: the table (``cves.yaml``, data with its ``as_of`` date) and the two
CVE judges.

- TRITON-CVE-002 (version only) lists every CVE fixed after the disclosed server version, with its
  component. A version match is "likely vulnerable" (vendors backport fixes), so its severity is one
  step below the CVSS of the worst match.
- TRITON-CVE-001 (reachable) counts a CVE only when the component it abuses is in play and
  reachable from the probe position, over every protocol the deployment declares, and says which
  observation made it count. Severity follows the worst counted CVSS.

Updating the table is a data change only: add rows (and releases) to ``cves.yaml``, bump ``as_of``
(the newest bulletin held), ``checked`` (the day the sources were read) and ``version``
(``docs/cve-table.md`` says how). A server newer than the newest release the table maps is judged
against what is known and the verdict says where the table ends.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from nimwarden.catalog import SAFE_LOADER
from nimwarden.dated import Dates, parse_dates, severity_of
from nimwarden.outcome import Attempt, Outcome, errored, fail_closed, failed, passed

CVE_FILE = Path(__file__).resolve().parent / "cves.yaml"

# What a safe probe must observe for a CVE of each component to count as reachable (TRITON-CVE-001).
# "server": the API answers on some declared protocol; "backend:<b>": a loaded model uses backend b.
# An empty tuple: not observable over the network (a local or client-side issue): CVE-002 only.
ABUSED_VIA: Mapping[str, tuple[str, ...]] = {
    "core": ("server",),
    "core-http": ("server-http",),
    "core-grpc": ("server-grpc",),
    "compression": ("server-http",),
    "model-load": ("model-load",),
    "model-config": ("model-config",),
    "logging": ("logging",),
    "trace": ("trace",),
    "shared-memory": ("shared-memory",),
    "python-backend": ("backend:python", "server"),
    "dali-backend": ("backend:dali", "server"),
    "tensorrt-backend": ("backend:tensorrt", "server"),
    "sagemaker": ("sagemaker",),
    "vertex-ai": ("vertex",),
    "openai-frontend": ("openai",),
    "mlflow-plugin": (),
    "other": (),
}


@dataclass(frozen=True)
class Cve:
    id: str
    cvss: float
    component: str
    title: str
    fixed_release: str
    fixed_in: tuple[int, ...]
    bulletin: str
    url: str
    abused_via: tuple[str, ...]

    def row(self, **extra: Any) -> dict[str, Any]:
        return {"id": self.id, "cvss": self.cvss, "component": self.component, "title": self.title,
                "fixed_release": self.fixed_release, "fixed_in": ".".join(map(str, self.fixed_in)),
                "bulletin": self.bulletin, "url": self.url, **extra}


@dataclass(frozen=True)
class CveTable:
    version: str
    dates: Dates
    releases: Mapping[str, str]  # container release → server version
    cves: tuple[Cve, ...]
    inferred: Mapping[str, str] = field(default_factory=dict)  # release → why its server version is not confirmed

    @property
    def as_of(self) -> dt.date:
        return self.dates.as_of

    def newest_release(self) -> tuple[str, str]:
        """(container release, server version) of the newest release the map holds."""
        release = max(self.releases, key=lambda r: parse_version(self.releases[r]))
        return release, self.releases[release]

    def ends_before(self, version: str) -> str | None:
        """Why the table cannot speak for ``version`` when it is newer than every release it maps, else None."""
        release, server = self.newest_release()
        if parse_version(version) <= parse_version(server):
            return None
        return (f"tritonserver {version} is newer than the newest release this table maps ({release} = {server}): it is judged "
                f"against what is known — the bulletins read through {self.dates.newest_seen} (checked {self.dates.checked}) — "
                "and a bulletin published since may name it")

    def stamp(self, today: dt.date | None = None) -> dict[str, Any]:
        """The table's identity for reports: version, both dates, age since checked, and whether it is stale."""
        release, server = self.newest_release()
        return self.dates.stamp("Triton CVE table", self.version, "nimwarden/families/triton_api/cves.yaml", len(self.cves), today,
                                newest_release=f"{release} = {server}", inferred_releases=sorted(self.inferred))


def parse_version(text: str) -> tuple[int, ...]:
    m = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.(\d+))?\S*\s*", str(text))
    if not m:
        raise ValueError(f"not a Triton server version: {text!r}")
    return tuple(int(x or 0) for x in m.groups())


def parse_table(data: Mapping[str, Any], where: str = "cves.yaml") -> CveTable:
    """The table from its YAML; ValueError naming the row for anything a judge could not rely on."""
    raw_releases = data.get("releases") or {}
    releases = {str(k): str(v["server"]) for k, v in raw_releases.items()}
    inferred = {str(k): str(v.get("source") or "not confirmed") for k, v in raw_releases.items() if v.get("confirmed") is False}
    rows = []
    for i, c in enumerate(data.get("cves") or ()):
        row = f"{where}: cves[{i}] ({c.get('id', '?')})"
        for key in ("id", "cvss", "component", "title", "fixed_release", "fixed_in", "bulletin", "url"):
            if c.get(key) in (None, ""):
                raise ValueError(f"{row}: {key} missing")
        if c["component"] not in ABUSED_VIA:
            raise ValueError(f"{row}: unknown component {c['component']!r} (known: {', '.join(ABUSED_VIA)})")
        if releases.get(str(c["fixed_release"])) != str(c["fixed_in"]):
            raise ValueError(f"{row}: fixed_in {c['fixed_in']} is not release {c['fixed_release']}'s server version "
                             f"({releases.get(str(c['fixed_release']), 'release not in releases')})")
        if str(c["fixed_release"]) in inferred:
            raise ValueError(f"{row}: fixed_release {c['fixed_release']} has an unconfirmed server version: confirm it first")
        rows.append(Cve(str(c["id"]), float(c["cvss"]), str(c["component"]), str(c["title"]), str(c["fixed_release"]),
                        parse_version(str(c["fixed_in"])), str(c["bulletin"]), str(c["url"]),
                        tuple(c.get("abused_via") or ABUSED_VIA[c["component"]])))
    return CveTable(str(data["version"]), parse_dates(data, where), releases, tuple(rows), inferred)


RELEASE_TAG = re.compile(r"(?:^|/)tritonserver:(\d{2}\.\d{2})(?:[-.][\w.-]*)?$")


@dataclass(frozen=True)
class ImageVersion:
    """What an image tag says about the server inside: ``nvcr.io/nvidia/tritonserver:26.11-py3`` → 26.11 = 2.75.0."""

    image: str
    release: str
    server: str | None  # None when the release is not in the map
    note: str
    newer: bool = False  # the release is past the newest one the map holds

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "release": self.release, "server": self.server, "note": self.note}


def version_from_image(image: str, table: CveTable | None = None) -> ImageVersion | None:
    """The server version a ``tritonserver:<YY.MM>…`` image runs, from the release map; None for another image."""
    table = table or load_table()
    name = image.split("@", 1)[0]
    m = RELEASE_TAG.search(name)
    if not m:
        return None
    release = m.group(1)
    if release in table.releases:
        server = table.releases[release]
        how = f" ({table.inferred[release]})" if release in table.inferred else ""
        return ImageVersion(image, release, server, f"image tag {release} = tritonserver {server}{how}")
    newest, server = table.newest_release()
    if (int(release[:2]), int(release[3:])) > (int(newest[:2]), int(newest[3:])):
        return ImageVersion(image, release, None, f"release {release} is newer than the newest release the table maps "
                                                  f"({newest} = {server})", newer=True)
    return ImageVersion(image, release, None, f"release {release} is not in the table's release map")


@lru_cache(maxsize=1)
def load_table() -> CveTable:
    return parse_table(yaml.load(CVE_FILE.read_text(encoding="utf-8"), Loader=SAFE_LOADER), "nimwarden/families/triton_api/cves.yaml")


def one_step_below(severity: str) -> str:
    order = ("critical", "high", "medium", "low", "info")
    return order[min(order.index(severity) + 1, len(order) - 1)]


def server_version(attempt: Attempt) -> tuple[str | None, Outcome | None]:
    """The version from ``GET /v2``, or the error outcome saying why it is not known."""
    if not attempt.completed:
        return None, errored(f"{attempt.request}: {attempt.error}", **attempt.evidence())
    resp = attempt.observation
    if resp.status != 200:
        return None, errored(f"server metadata not readable (HTTP {resp.status}); give the restricted_api credential to read it",
                             **attempt.evidence())
    try:
        version = str(resp.json()["version"])
        parse_version(version)
    except (ValueError, KeyError, TypeError):
        return None, errored("server metadata does not carry a parsable version", **attempt.evidence())
    return version, None


def _affected(version: str, table: CveTable) -> list[Cve]:
    v = parse_version(version)
    return sorted((c for c in table.cves if v < c.fixed_in), key=lambda c: (-c.cvss, c.id))


def _known(version: str, table: CveTable, evidence: dict[str, Any]) -> str:
    """`` in CVE table … (as of …, checked …)``, and where the table ends when ``version`` lies past it."""
    beyond = table.ends_before(version)
    if beyond:
        evidence["table_ends_before"] = beyond
        return f" in CVE table {table.version} ({table.dates.words()}); note: {beyond}"
    return f" in CVE table {table.version} ({table.dates.words()})"


@fail_closed
def version_only(metadata: Attempt, table: CveTable | None = None, image: ImageVersion | None = None) -> Outcome:
    """TRITON-CVE-002: every CVE fixed after the disclosed version, named with its component. When the server
    does not disclose its version, the deployment's ``tritonserver:<YY.MM>`` image tag (from cluster state)
    stands in for it, and the verdict says so."""
    table = table or load_table()
    version, problem = server_version(metadata)
    evidence: dict[str, Any] = {"cve_table": table.stamp(), **metadata.evidence()}
    read_from = ""
    if problem and image is not None:
        evidence["image"] = image.as_dict()
        if image.server is None and image.newer:
            return passed(f"{image.image}: {image.note}; the server did not disclose its version ({problem.reason}); no known "
                          f"vulnerability in CVE table {table.version} ({table.dates.words()}) names a release after it",
                          **evidence)
        if image.server is None:
            return errored(f"{problem.reason}; and {image.image}: {image.note}", **evidence)
        version, problem, read_from = image.server, None, f" (read from the image tag {image.image}: {image.note})"
    if problem:
        return problem
    affected = _affected(version, table)
    evidence["server_version"] = version
    known = _known(version, table, evidence)
    if not affected:
        return passed(f"tritonserver {version}{read_from}: no known vulnerability{known}", **evidence)
    evidence["cves"] = [c.row() for c in affected]
    by_component: dict[str, list[str]] = {}
    for c in affected:
        by_component.setdefault(c.component, []).append(c.id)
    newest = max(affected, key=lambda c: c.fixed_in)
    parts = "; ".join(f"{comp}: {', '.join(ids)}" for comp, ids in by_component.items())
    return failed(f"tritonserver {version}{read_from} is likely vulnerable to {len(affected)} CVE(s) (fixes up to release "
                  f"{newest.fixed_release}, server {'.'.join(map(str, newest.fixed_in))}) — {parts}; version match only, "
                  "backports not detected", severity=one_step_below(severity_of(affected[0].cvss)), **evidence)


@fail_closed
def reachable(metadata: Attempt, exposure: Mapping[str, tuple[bool | None, str]], table: CveTable | None = None) -> Outcome:
    """TRITON-CVE-001: the CVEs whose abused component is in play and reachable from the probe position.

    ``exposure`` maps each observable (``server``, ``server-http``, ``model-load``, ``backend:python`` …)
    to (True: observed open/in play, False: observed closed/absent, None: could not observe; the
    observation in words), as :func:`nimwarden.families.triton_api.exposure.exposure_from` builds it from
    the probe's answers.
    """
    table = table or load_table()
    version, problem = server_version(metadata)
    if problem:
        return problem
    affected = _affected(version, table)
    evidence: dict[str, Any] = {"server_version": version, "cve_table": table.stamp(),
                                "exposure": {k: {"open": s, "seen": why} for k, (s, why) in exposure.items()}}
    if not affected:
        return passed(f"tritonserver {version}: no known vulnerability{_known(version, table, evidence)}", **evidence)
    counted, unknown, closed, unobservable = [], [], [], []
    for c in affected:
        if not c.abused_via:
            unobservable.append(c)
            continue
        states = [exposure.get(k, (None, "not probed"))[0] for k in c.abused_via]
        if all(s is True for s in states):
            counted.append(c)
        elif any(s is False for s in states):
            closed.append(c)
        else:
            unknown.append(c)
    evidence["cves"] = ([c.row(counted=True, because=[exposure[k][1] for k in c.abused_via]) for c in counted]
                        + [c.row(counted=False, because="abused component not in play or not reachable") for c in closed]
                        + [c.row(counted=False, because="could not observe: " + ", ".join(k for k in c.abused_via if exposure.get(k, (None,))[0] is None))
                           for c in unknown]
                        + [c.row(counted=False, because="not observable over the network (see TRITON-CVE-002)") for c in unobservable])
    if counted:
        worst = counted[0]
        ids = ", ".join(f"{c.id} ({c.component}, CVSS {c.cvss:g})" for c in counted[:8]) + (f" and {len(counted) - 8} more" if len(counted) > 8 else "")
        return failed(f"tritonserver {version}: {len(counted)} known CVE(s) whose component is reachable from the probe position: {ids}; "
                      f"e.g. {worst.id} counts because {'; '.join(exposure[k][1] for k in worst.abused_via)}",
                      severity=severity_of(worst.cvss), **evidence)
    if unknown:
        return errored(f"tritonserver {version} is in the affected range of {', '.join(c.id for c in unknown)}, but whether their "
                       f"component is in play could not be observed", **evidence)
    return passed(f"tritonserver {version} is in the affected range of {len(affected)} CVE(s), but none of their components is "
                  f"reachable from the probe position", **evidence)


def image_version_in(templates: Any, table: CveTable | None = None) -> ImageVersion | None:
    """The ``tritonserver`` image of a deployment's pod templates (the oldest when several differ), or None."""
    table = table or load_table()
    found = [v for t in templates for _, c in t.containers() if (v := version_from_image(str(c.get("image") or ""), table))]
    if not found:
        return None
    return min(found, key=lambda v: parse_version(v.server) if v.server else (10**6,))


def image_of(target: Any, deployment: Any) -> ImageVersion | None:
    """The deployment's tritonserver image from cluster state, when the target has one (else None)."""
    from nimwarden.k8s import source as k8s

    if k8s.unavailable(target, deployment):
        return None
    w = k8s.for_deployment(target, deployment)
    return None if isinstance(w, Outcome) else image_version_in(w.templates)
