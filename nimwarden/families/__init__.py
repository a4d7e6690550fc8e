"""The family registry: every family is one folder (``nimwarden/families/<family>/``) that holds its
control YAMLs (``controls/<ID>.yaml``), its probes, its judges and, in its ``__init__.py``, one
:class:`Family` declaration. The plugin and the CLI know families only through :func:`registry`.

A family declares
- ``schema``: the profile sections it owns, each a pydantic model (or type) by its place
  (``"deployments[].options.performance"``); :func:`load_profile` validates the profile against the
  profile's own schema with these sections in it, so a bad section exits 2 before anything is probed,
  ``nimwarden schema`` publishes them and ``target.py`` never imports a feature. ``options`` lists
  the sections it reads (its own and others'), and ``check`` what a section means for the whole
  target (a performance credential must name one of the deployment's credentials);
- ``applies``: per control ID, the applicability predicate (InSpec's ``only_if``): given the
  target, the deployment and the test's parameters it returns the reason the control does not
  apply, or None. The plugin evaluates it before the test runs and records ``not_applicable``
  with that reason, so each reason is written once, next to its family.

Families never import each other (an import-linter contract says so); what two families share
lives in a floor below them (``nimwarden.k8s``, ``nimwarden.net``, ``nimwarden.netpol``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from nimwarden.catalog import FAMILIES, package_of
from nimwarden.schema import json_schema
from nimwarden.target import ProfileCheck, Target, load_target


@dataclass(frozen=True)
class Applicability:
    """What an applicability predicate sees: the frozen target, the deployment (None for a
    target-wide control), the test's other parameters (``protocol``, ``endpoint`` …) and the run's
    switches (``under_load``, ``intrusive``)."""

    target: Any
    deployment: Any
    params: Mapping[str, Any] = field(default_factory=dict)
    run: Mapping[str, Any] = field(default_factory=dict)


Predicate = Callable[[Applicability], "str | None"]


@dataclass(frozen=True)
class Family:
    name: str  # as in the catalog and summary.json: "triton-api"
    # The profile sections it owns, by place ("options.<s>", "deployments[].options.<s>", "kubernetes.options.<s>"):
    # a pydantic model (nimwarden.schema.Section) or a type; loading, errors and `nimwarden schema` come from them.
    schema: Mapping[str, Any] = field(default_factory=dict)
    options: tuple[str, ...] = ()  # profile sections read: "deployments[].options.tls", "kubernetes.options.network_policy" …
    check: ProfileCheck | None = None  # raises ConfigError / ValueError("field.path: why") for what the schema cannot say
    applies: Mapping[str, Predicate] = field(default_factory=dict)  # control ID → predicate
    # The dated data the family judges against (a CVE table, a port table), for the report's header:
    # {key: {"name", "version", "as_of"?, "age_days"?, "stale"?, "source"}}.
    data: Callable[[Target], Mapping[str, Mapping[str, Any]]] | None = None


@lru_cache(maxsize=1)
def registry() -> dict[str, Family]:
    """Every family, by name, from its folder's ``FAMILY`` declaration."""
    out = {}
    for name in FAMILIES:
        module = importlib.import_module(f"{__name__}.{package_of(name)}")
        family = module.FAMILY
        if family.name != name:
            raise RuntimeError(f"{module.__name__} declares family {family.name!r}, expected {name!r}")
        out[name] = family
    return out


def profile_checks() -> list[ProfileCheck]:
    return [f.check for f in registry().values() if f.check is not None]


def profile_sections() -> dict[str, Any]:
    """Every family's sections of the profile, by place; a place has one owner."""
    out: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for family in registry().values():
        for where, model in family.schema.items():
            if where in out:
                raise RuntimeError(f"profile section {where} is declared by both {owner[where]} and {family.name}")
            out[where], owner[where] = model, family.name
    return out


def profile_json_schema() -> dict[str, Any]:
    """The JSON Schema of a target profile with every family's sections (``nimwarden schema``)."""
    return json_schema(profile_sections())


def data_stamps(target: Target) -> dict[str, dict[str, Any]]:
    """Every family's dated data for this target (the summary's ``data`` and its staleness warnings)."""
    out: dict[str, dict[str, Any]] = {}
    for family in registry().values():
        if family.data is not None:
            out.update({k: dict(v) for k, v in family.data(target).items()})
    return out


def load_profile(path: Any, *, resolve_credentials: bool = True) -> Target:
    """A target profile, validated by its schema (with every family's sections) and every family's
    checker; every credential source must resolve unless ``resolve_credentials`` is False
    (``nimwarden validate --skip-credentials``)."""
    return load_target(path, profile_checks(), resolve_credentials=resolve_credentials, sections=profile_sections())


def not_applicable_reason(family: str, control_id: str, ctx: Applicability) -> str | None:
    predicate = registry()[family].applies.get(control_id)
    return predicate(ctx) if predicate is not None else None


# ----------------------------------------------------------------------------------- predicate builders


def needs_endpoint(name: str | Callable[[Applicability], str]) -> Predicate:
    """The deployment declares the endpoint (a fixed name, or one taken from the test's parameters)."""

    def predicate(ctx: Applicability) -> str | None:
        wanted = name(ctx) if callable(name) else name
        if ctx.deployment.endpoint(wanted) is None:
            return f"deployment {ctx.deployment.name} declares no {wanted} endpoint"
        return None

    return predicate


def probes_something(ctx: Applicability) -> str | None:
    """The deployment declares endpoints: a manifests-only deployment (judged from its Kubernetes
    objects) has nothing for a probe to reach."""
    if ctx.deployment is not None and not ctx.deployment.endpoints:
        return f"deployment {ctx.deployment.name} declares no endpoints (judged from its Kubernetes objects only)"
    return None


def param(key: str) -> Callable[[Applicability], str]:
    return lambda ctx: ctx.params[key]


def all_of(*predicates: Predicate) -> Predicate:
    def predicate(ctx: Applicability) -> str | None:
        for p in predicates:
            reason = p(ctx)
            if reason:
                return reason
        return None

    return predicate


def for_controls(ids: str, predicate: Predicate) -> dict[str, Predicate]:
    """The same predicate for several controls: ``for_controls("A-001 B-001", p)``."""
    return {i: predicate for i in ids.split()}
