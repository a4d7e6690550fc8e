"""Known Triton vulnerabilities: the table (``cves.yaml``, data with its ``as_of`` date) and the two
CVE judges.

- TRITON-CVE-002 (version only) lists every CVE fixed after the disclosed server version, with its
  component. A version match is "likely vulnerable" (vendors backport fixes), so its severity is one
  step below the CVSS of the worst match.
- TRITON-CVE-001 (reachable) counts a CVE only when the component it abuses is in play and
  reachable from the probe position, over every protocol the deployment declares, and says which
  observation made it count. Severity follows the worst counted CVSS.

Updating the table is a data change only: add rows (and releases) to ``cves.yaml``, bump ``as_of``
and ``version`` (``docs/cve-table.md`` says how).
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

from nimwarden.outcome import Attempt, Outcome, errored, fail_closed, failed, passed

CVE_FILE = Path(__file__).resolve().parent / "cves.yaml"
STALE_AFTER_DAYS = 90

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
    as_of: dt.date
    releases: Mapping[str, str]  # container release → server version
    cves: tuple[Cve, ...]

    def stamp(self, today: dt.date | None = None) -> dict[str, Any]:
        """The table's identity for reports: version, as_of, age, and whether it is stale."""
        age = ((today or dt.date.today()) - self.as_of).days
        return {"name": "Triton CVE table", "version": self.version, "as_of": self.as_of.isoformat(),
                "rows": len(self.cves), "age_days": age, "stale": age > STALE_AFTER_DAYS,
                "source": "nimwarden/families/triton_api/cves.yaml"}


def parse_version(text: str) -> tuple[int, ...]:
    m = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.(\d+))?\S*\s*", str(text))
    if not m:
        raise ValueError(f"not a Triton server version: {text!r}")
    return tuple(int(x or 0) for x in m.groups())


def parse_table(data: Mapping[str, Any]) -> CveTable:
    """The table from its YAML; ValueError naming the row for anything a judge could not rely on."""
    releases = {str(k): str(v["server"]) for k, v in (data.get("releases") or {}).items()}
    rows = []
    for i, c in enumerate(data.get("cves") or ()):
        where = f"cves[{i}] ({c.get('id', '?')})"
        for key in ("id", "cvss", "component", "title", "fixed_release", "fixed_in", "bulletin", "url"):
            if c.get(key) in (None, ""):
                raise ValueError(f"{where}: {key} missing")
        if c["component"] not in ABUSED_VIA:
            raise ValueError(f"{where}: unknown component {c['component']!r} (known: {', '.join(ABUSED_VIA)})")
        if releases.get(str(c["fixed_release"])) != str(c["fixed_in"]):
            raise ValueError(f"{where}: fixed_in {c['fixed_in']} is not release {c['fixed_release']}'s server version "
                             f"({releases.get(str(c['fixed_release']), 'release not in releases')})")
        rows.append(Cve(str(c["id"]), float(c["cvss"]), str(c["component"]), str(c["title"]), str(c["fixed_release"]),
                        parse_version(str(c["fixed_in"])), str(c["bulletin"]), str(c["url"]),
                        tuple(c.get("abused_via") or ABUSED_VIA[c["component"]])))
    as_of = data.get("as_of")
    as_of = as_of if isinstance(as_of, dt.date) else dt.date.fromisoformat(str(as_of))
    return CveTable(str(data["version"]), as_of, releases, tuple(rows))


@lru_cache(maxsize=1)
def load_table() -> CveTable:
    return parse_table(yaml.load(CVE_FILE.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))  # libyaml: the same safe loader, ~10x faster


def severity_of(cvss: float) -> str:
    """CVSS v3 qualitative rating, in the catalog's words."""
    return "critical" if cvss >= 9.0 else "high" if cvss >= 7.0 else "medium" if cvss >= 4.0 else "low"


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


@fail_closed
def version_only(metadata: Attempt, table: CveTable | None = None) -> Outcome:
    """TRITON-CVE-002: every CVE fixed after the disclosed version, named with its component."""
    table = table or load_table()
    version, problem = server_version(metadata)
    if problem:
        return problem
    affected = _affected(version, table)
    evidence: dict[str, Any] = {"server_version": version, "cve_table": table.stamp(), **metadata.evidence()}
    if not affected:
        return passed(f"tritonserver {version}: no known vulnerability in CVE table {table.version} (as of {table.as_of})", **evidence)
    evidence["cves"] = [c.row() for c in affected]
    by_component: dict[str, list[str]] = {}
    for c in affected:
        by_component.setdefault(c.component, []).append(c.id)
    newest = max(affected, key=lambda c: c.fixed_in)
    parts = "; ".join(f"{comp}: {', '.join(ids)}" for comp, ids in by_component.items())
    return failed(f"tritonserver {version} is likely vulnerable to {len(affected)} CVE(s) (fixes up to release {newest.fixed_release}, "
                  f"server {'.'.join(map(str, newest.fixed_in))}) — {parts}; version match only, backports not detected",
                  severity=one_step_below(severity_of(affected[0].cvss)), **evidence)


@fail_closed
def reachable(metadata: Attempt, exposure: Mapping[str, tuple[bool | None, str]], table: CveTable | None = None) -> Outcome:
    """TRITON-CVE-001: the CVEs whose abused component is in play and reachable from the probe position.

    ``exposure`` maps each observable (``server``, ``server-http``, ``model-load``, ``backend:python`` …)
    to (True: observed open/in play, False: observed closed/absent, None: could not observe; the
    observation in words), as :func:`exposure_from` builds it from the probe's answers.
    """
    table = table or load_table()
    version, problem = server_version(metadata)
    if problem:
        return problem
    affected = _affected(version, table)
    evidence: dict[str, Any] = {"server_version": version, "cve_table": table.stamp(),
                                "exposure": {k: {"open": s, "seen": why} for k, (s, why) in exposure.items()}}
    if not affected:
        return passed(f"tritonserver {version}: no known vulnerability in CVE table {table.version} (as of {table.as_of})", **evidence)
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


# ----------------------------------------------------------------------------------- what is in play

BACKEND_OF = {"python": "python", "dali": "dali", "tensorrt": "tensorrt", "tensorrt_plan": "tensorrt"}


def _any(states: list[tuple[bool | None, str]], none_seen: str) -> tuple[bool | None, str]:
    """Open anywhere → open; closed everywhere → closed; else unknown (with what was seen)."""
    if not states:
        return False, none_seen
    for s, why in states:
        if s is True:
            return True, why
    if all(s is False for s, _ in states):
        return False, "; ".join(why for _, why in states)
    return None, "; ".join(why for s, why in states if s is None)


def _health(protocol: str, attempts: list[Attempt]) -> tuple[bool | None, str]:
    for a in attempts:
        if not a.completed:
            refused = "refused" in str(a.error).lower()
            return (False if refused else None), f"{protocol} health {a.request}: {a.error}"
        status = getattr(a.observation, "status", None)
        if status not in (200, "OK"):
            return None, f"{protocol} health {a.request} answered {status}"
    return True, f"the {protocol} API answers without credentials ({attempts[0].request})"


def _from_outcome(outcome: Outcome, what: str) -> tuple[bool | None, str]:
    state = {"fail": True, "pass": False}.get(outcome.status.value)
    return state, f"{what}: {outcome.reason}"


def exposure_from(observations: Mapping[str, Any]) -> dict[str, tuple[bool | None, str]]:
    """What the probe saw (``TritonProbe.exposure_observations()``) as in-play states, per observable."""
    from nimwarden.families.triton_api import judge

    out: dict[str, tuple[bool | None, str]] = {}
    health = observations.get("health", {})
    for protocol in ("http", "grpc"):
        out[f"server-{protocol}"] = _health(protocol, health[protocol]) if protocol in health else (False, f"no {protocol} endpoint declared")
    out["server"] = _any([out[f"server-{p}"] for p in health], "no API endpoint declared")
    out["model-load"] = _any([_from_outcome(judge.dynamic_loading_disabled(a), f"model load over {p}")
                              for p, a in observations.get("model-load", {}).items()], "no API endpoint declared")
    for category, by_protocol in observations.get("categories", {}).items():
        out[category] = _any([_from_outcome(judge.category_restricted(category, a), f"{category} API over {p}")
                              for p, a in by_protocol.items()], "no API endpoint declared")
    frontends = observations.get("frontends", {})
    for name in ("sagemaker", "vertex"):
        out[name] = (_from_outcome(judge.frontend_off(name, *frontends[name]), f"{name} front end") if name in frontends
                     else (False, f"the profile declares no {name} endpoint"))
    openai = observations.get("openai")
    if openai is None:
        out["openai"] = (False, "the profile declares no openai endpoint")
    elif openai.completed:
        out["openai"] = (openai.observation.status == 200, f"OpenAI-compatible frontend {openai.request} answered {openai.observation.status}")
    else:
        out["openai"] = (False if "refused" in str(openai.error).lower() else None, f"OpenAI-compatible frontend {openai.request}: {openai.error}")
    seen: dict[str, str] = {}
    unread = []
    for model, (attempt, with_credentials) in observations.get("model_configs", {}).items():
        if not attempt.completed or attempt.observation.status != 200:
            unread.append(f"{model} ({attempt.error or attempt.observation.status})")
            continue
        try:
            config = attempt.observation.json()
            names = {str(config.get("backend") or ""), str(config.get("platform") or "")}
        except (ValueError, AttributeError):
            unread.append(f"{model} (config not JSON)")
            continue
        how = "with the restricted-API credential" if with_credentials else "without credentials"
        for n in names:
            if n in BACKEND_OF:
                seen.setdefault(BACKEND_OF[n], f"model {model}'s config (read {how}) says {n}")
    for backend in ("python", "dali", "tensorrt"):
        if backend in seen:
            out[f"backend:{backend}"] = (True, seen[backend])
        elif unread or not observations.get("model_configs"):
            out[f"backend:{backend}"] = (None, "model configs not readable: " + (", ".join(unread) or "the profile declares no model"))
        else:
            out[f"backend:{backend}"] = (False, f"no declared model uses the {backend} backend")
    return out
