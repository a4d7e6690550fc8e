"""Target profiles: load a YAML profile, validate it against the profile's schema, and build one
frozen Target.

The shape of a profile and every rule about it are declared once, in :mod:`nimwarden.schema`
(pydantic models, which ``nimwarden schema`` publishes as JSON Schema); families add the sections
they own. Every problem is reported as ``file: field.path: problem`` (a ConfigError), so the CLI
prints one line and exits 2. This module knows no family: their sections and checkers are passed in.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nimwarden import yaml_bounded
from nimwarden.budget import RequestBudget, budget_from_options
from nimwarden.errors import ConfigError, OutOfScope
from nimwarden.schema.messages import first_problem
from nimwarden.schema.profile import profile_model
from nimwarden.schema.rules import parse_scope, scope_text, split_endpoint

# A family's checker of what its sections mean for the whole target (a performance credential
# naming one of the deployment's credentials …): raises ConfigError, or ValueError("field.path: why").
ProfileCheck = Callable[["Target"], None]


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str  # as written after lab substitution, e.g. http://127.0.0.1:8000, grpc://127.0.0.1:8001
    scheme: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def tls(self) -> bool:
        return self.scheme in ("https", "grpcs")


@dataclass(frozen=True)
class Credential:
    name: str
    header: str | None
    env: str | None
    file: Path | None

    def resolve(self) -> str | None:
        """The secret's value, or None when the variable/file is absent. Never logged."""
        if self.env:
            return os.environ.get(self.env) or None
        if self.file:
            try:
                return self.file.read_text(encoding="utf-8").strip() or None
            except OSError:
                return None
        return None

    def describe(self) -> str:
        return f"env:{self.env}" if self.env else f"file:{self.file}"


@dataclass(frozen=True)
class KubernetesRef:
    namespace: str | None = None
    selector: Mapping[str, str] = field(default_factory=dict)
    unit: Path | None = None  # manifests: only the workloads read from this folder or file of the tree (an apply unit)


@dataclass(frozen=True)
class Deployment:
    name: str
    kind: str
    expect: str
    endpoints: Mapping[str, Endpoint]
    exposure: tuple[str, ...]  # endpoint names that may be reachable from the probe position
    models: tuple[str, ...]
    credentials: Mapping[str, Credential]
    must_fail: tuple[str, ...]  # canary: controls this deployment is known to break
    kubernetes: KubernetesRef
    options: Mapping[str, Any]  # free-form per-suite settings (performance, gateway, tls …)

    @property
    def canary(self) -> bool:
        return self.expect == "noncompliant"

    def endpoint(self, name: str) -> Endpoint | None:
        return self.endpoints.get(name)



def reachable_http(deployment: Deployment, position: str, names: Sequence[str]) -> dict[str, Endpoint]:
    """The deployment's HTTP(S) endpoints among ``names`` that a caller at ``position`` can address: from outside,
    those on a host that carries an endpoint named in ``exposure`` (a service published on the gateway's address
    is reachable whether the profile meant it or not); from inside the cluster, all of them."""
    eps = {n: e for n, e in dict(deployment.endpoints).items() if n in names and e.scheme in ("http", "https")}
    if position != "external":
        return eps
    edge = {e.host for n, e in dict(deployment.endpoints).items() if n in set(deployment.exposure)}
    return {n: e for n, e in eps.items() if e.host in edge}


@dataclass(frozen=True)
class KubernetesSource:
    source: str = "none"
    paths: tuple[Path, ...] = ()
    kubeconfig: Path | None = None
    context: str | None = None
    namespaces: tuple[str, ...] = ()
    pss_level: str = "restricted"
    options: Mapping[str, Any] = field(default_factory=dict)
    default_namespace: str | None = None  # what `helm install -n NS` gives objects without metadata.namespace
    path_namespaces: tuple[str | None, ...] = ()  # per entry of paths: its own -n (None: default_namespace)

    def manifest_entries(self) -> tuple[tuple[Path, str | None], ...]:
        """(path, namespace) per entry of ``paths``: the namespace its objects get when they carry none."""
        spaces = self.path_namespaces or (None,) * len(self.paths)
        return tuple((p, ns or self.default_namespace) for p, ns in zip(self.paths, spaces))


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 2.0
    read_s: float = 5.0
    give_up_after: int = 3  # consecutive hangs of one host:port before it is not asked (nimwarden.net.hangs); 0: off


@dataclass(frozen=True)
class Target:
    name: str
    path: Path
    scope: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    scope_hosts: tuple[str, ...]
    probe_position: str
    timeouts: Timeouts
    deployments: tuple[Deployment, ...]
    kubernetes: KubernetesSource
    waivers: Path | None
    lab_state: Path | None
    options: Mapping[str, Any]
    budget: RequestBudget | None = None  # options.request_budget: cap and rate behind guard()

    def deployment(self, name: str) -> Deployment:
        for d in self.deployments:
            if d.name == name:
                return d
        raise KeyError(name)

    def in_scope(self, host: str) -> bool:
        """True when every address ``host`` resolves to lies inside the declared scope."""
        try:
            addrs = {ipaddress.ip_address(host)}
        except ValueError:
            if host in self.scope_hosts:
                return True
            try:
                infos = socket.getaddrinfo(host, None)
            except OSError:
                return False
            addrs = {ipaddress.ip_address(i[4][0].split("%")[0]) for i in infos}
        return bool(addrs) and all(any(a in net for net in self.scope) for a in addrs)

    def guard(self, host: str) -> None:
        """Refuse, before any packet is sent, a host outside the target's scope."""
        if not self.in_scope(host):
            raise OutOfScope(f"{host or '(no host)'} is outside the scope ({scope_text(self.scope, self.scope_hosts)}) "
                             f"of target {self.name!r} ({self.path})")
        if self.budget is not None:
            self.budget.take(host)


# --------------------------------------------------------------------------- loading


def _one_line(problem: object) -> str:
    """A parser's message on one line (PyYAML's reader errors span two)."""
    return " ".join(str(problem).split())


def _read_yaml(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "no such file; pass --target with the path of a target profile") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "", f"cannot read: {exc.__class__.__name__}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return yaml_bounded.load(text)  # libyaml's safe loader (~10x PyYAML's), aliases bounded
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        # libyaml marks a problem at the end of the input one line past a last line without a newline
        where = f"line {min(mark.line + 1, text.count(chr(10)) + 1)}" if mark else ""
        raise ConfigError(file, where, f"not valid YAML: {_one_line(getattr(exc, 'problem', None) or exc)}") from None
    except RecursionError:  # thousands of nested brackets
        raise ConfigError(file, "", "not valid YAML: nested too deeply") from None


MAX_DEPTH, MAX_NODES = 64, 200_000


def _bounded(file: Path, raw: Any) -> Any:
    """Refuse a document no profile needs and no validator should walk: nested deeper than MAX_DEPTH
    (a YAML alias can make a structure contain itself) or, with aliases expanded, over MAX_NODES values."""
    count = 0

    def walk(value: Any, depth: int) -> None:
        nonlocal count
        count += 1
        if depth > MAX_DEPTH:
            raise ConfigError(file, "", f"nested deeper than {MAX_DEPTH} levels (or a YAML alias that contains itself)")
        if count > MAX_NODES:
            raise ConfigError(file, "", f"more than {MAX_NODES} values once YAML aliases are expanded")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            walk(child, depth + 1)

    walk(raw, 0)
    return raw


def _dump(section: Any) -> dict:
    """A validated options mapping as the families read it: only what the profile wrote (no defaults),
    values normalised (paths resolved, ${lab.…} substituted)."""
    return section.model_dump(exclude_unset=True) if hasattr(section, "model_dump") else dict(section)


def _deployment(raw: Any) -> Deployment:
    endpoints = {}
    for name, url in raw.declared_endpoints().items():
        scheme, host, port = split_endpoint(name, url)
        endpoints[name] = Endpoint(name, url, scheme, host, port)
    creds = {name: Credential(name, c.header, c.env, Path(c.file) if c.file else None) for name, c in raw.credentials.items()}
    k8s = raw.kubernetes
    return Deployment(
        name=raw.name, kind=raw.kind, expect=raw.expect, endpoints=endpoints, exposure=tuple(raw.exposure),
        models=tuple(raw.models), credentials=creds, must_fail=tuple(raw.must_fail),
        kubernetes=(KubernetesRef(k8s.namespace, dict(k8s.selector), Path(k8s.unit) if k8s.unit else None)
                    if k8s is not None else KubernetesRef()),
        options=_dump(raw.options),
    )


def _kubernetes(raw: Any) -> KubernetesSource:
    if raw is None:
        return KubernetesSource()
    return KubernetesSource(
        source=raw.source,
        paths=tuple(Path(e.path) for e in raw.paths),
        kubeconfig=Path(raw.kubeconfig) if raw.kubeconfig else None,
        context=raw.context,
        namespaces=tuple(raw.namespaces),
        pss_level=raw.pss_level,
        options=_dump(raw.options),
        default_namespace=raw.default_namespace,
        path_namespaces=tuple(e.namespace for e in raw.paths),
    )


def load_target(path: str | os.PathLike[str], checks: Sequence[ProfileCheck] = (), *, resolve_credentials: bool = False,
                sections: Mapping[str, Any] | None = None) -> Target:
    """Load and validate a profile. ``sections`` are the families' models of the sections they own
    (``nimwarden.families.profile_sections()``) and ``checks`` their checkers of what those mean for
    the built Target: a section a family could not use is a ConfigError (exit 2) now, not an error in
    the middle of a run. Without them only the profile's own fields are checked and every ``options``
    mapping is left open. ``resolve_credentials`` also requires every credential source to resolve
    here (``families.load_profile`` asks for it: audits and ``nimwarden validate`` without
    ``--skip-credentials``)."""
    file = Path(path)
    if "\0" in str(path):
        raise ConfigError(str(path).replace("\0", "\\0"), "", "a path cannot hold a NUL byte")
    raw = _bounded(file, _read_yaml(file))
    context = {"file": file, "lab_state": None, "resolve_credentials": resolve_credentials}
    try:
        profile = profile_model(sections).model_validate(raw, context=context)
    except ValidationError as exc:
        where, problem = first_problem(exc)
        raise ConfigError(file, where, problem) from None
    options = _dump(profile.options)
    nets, hosts = parse_scope(profile.scope or [])
    built = Target(
        name=profile.name,
        path=file.resolve(),
        scope=nets,
        scope_hosts=hosts,
        probe_position=profile.probe_position,
        timeouts=Timeouts(float(profile.timeouts.connect_s), float(profile.timeouts.read_s), int(profile.timeouts.give_up_after)),
        deployments=tuple(_deployment(d) for d in profile.deployments),
        kubernetes=_kubernetes(profile.kubernetes),
        waivers=Path(profile.waivers) if profile.waivers else None,
        lab_state=Path(profile.lab.state_file) if profile.lab else None,
        options=options,
        budget=budget_from_options(options, lambda where, why: ConfigError(file, where, why)),
    )
    for check in checks:
        try:
            check(built)
        except ValueError as exc:  # "field.path: what is wrong", the field as written in the profile
            where, sep, why = str(exc).partition(": ")
            raise ConfigError(file, where if sep else "", _one_line(why if sep else exc)) from None
    return built
