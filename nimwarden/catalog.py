"""The control catalog: one YAML file per control, named by its stable ID, kept in its family's folder
(``nimwarden/families/<family>/controls/<ID>.yaml``).

IDs are permanent: a retired control keeps its file with ``retired: true``
and its ID is never reused. The catalog reads the files as data; it imports no family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from nimwarden.errors import ConfigError
from nimwarden.outcome import SEVERITIES

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: same safe semantics

CATALOG_DIR = Path(__file__).parent / "families"  # one controls/ folder per family
CATALOG_VERSION = "2026.11.1"

# The summary.json contract lists these names: add a family here and its folder together.
FAMILIES = (
    "ports",
    "tls",
    "gateway",
    "triton-api",
    "nim-api",
    "pod-security",
    "secrets",
    "rbac",
    "network-policy",
    "host",
    "performance",
    "gpu-platform",
    "nemo",
)

ID_PATTERN = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*-\d{3}$")
REQUIRED = ("id", "title", "family", "severity", "rationale", "remediation", "sources")
OPTIONAL = ("mitre", "references", "retired", "notes")


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    family: str
    severity: str
    rationale: str
    remediation: str
    sources: tuple[str, ...]
    mitre: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    retired: bool = False


def _load_one(path: Path) -> Control:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(path, "", f"cannot read control: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "", "a control is a mapping")
    for key in REQUIRED:
        if key not in data:
            raise ConfigError(path, key, "required field missing")
    unknown = set(data) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        raise ConfigError(path, sorted(unknown)[0], "unknown field")
    if data["id"] != path.stem:
        raise ConfigError(path, "id", f"must equal the file name {path.stem!r}")
    if not ID_PATTERN.match(data["id"]):
        raise ConfigError(path, "id", "must look like FAMILY-TOPIC-001")
    if data["family"] not in FAMILIES:
        raise ConfigError(path, "family", f"unknown family {data['family']!r} (known: {', '.join(FAMILIES)})")
    if package_of(data["family"]) != path.parent.parent.name:
        raise ConfigError(path, "family", f"{data['family']!r} controls live in families/{package_of(data['family'])}/controls/")
    if data["severity"] not in SEVERITIES:
        raise ConfigError(path, "severity", f"must be one of {', '.join(SEVERITIES)}")
    sources = data["sources"]
    if not isinstance(sources, list) or not sources or not all(isinstance(s, str) and s for s in sources):
        raise ConfigError(path, "sources", "a non-empty list of public document titles and sections")
    return Control(
        id=data["id"],
        title=str(data["title"]).strip(),
        family=data["family"],
        severity=data["severity"],
        rationale=str(data["rationale"]).strip(),
        remediation=str(data["remediation"]).strip(),
        sources=tuple(sources),
        mitre=tuple(data.get("mitre") or ()),
        references=tuple(data.get("references") or ()),
        retired=bool(data.get("retired", False)),
    )


@lru_cache(maxsize=1)
def load_catalog() -> dict[str, Control]:
    controls = {}
    for path in sorted(CATALOG_DIR.glob("*/controls/*.yaml"), key=lambda p: p.name):
        control = _load_one(path)
        controls[control.id] = control
    return controls


def package_of(family: str) -> str:
    """The folder (Python package) of a family: ``triton-api`` lives in ``families/triton_api``."""
    return family.replace("-", "_")


def get(control_id: str) -> Control:
    catalog = load_catalog()
    if control_id not in catalog:
        raise KeyError(f"control {control_id!r} is not in the catalog ({CATALOG_DIR})")
    return catalog[control_id]
