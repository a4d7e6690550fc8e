"""Target profiles: load a YAML profile, validate it, and build one frozen Target.

Every problem is reported as ``file: field.path: problem`` (a ConfigError),
so the CLI can print one line and exit 2.  Secrets are never accepted inline:
a credential names an environment variable or a file.

This module is longer than 400 lines on purpose: one concept, the profile, whose data types and
field-by-field validation read best side by side. It knows no family (their checkers are passed in).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from nimwarden.budget import RequestBudget, budget_from_options
from nimwarden.errors import ConfigError, OutOfScope

KINDS = ("triton", "nim")
EXPECTS = ("compliant", "noncompliant")
POSITIONS = ("external", "cluster-internal")
K8S_SOURCES = ("none", "manifests", "snapshot", "live")
ENDPOINT_NAMES = ("http", "grpc", "metrics", "sagemaker", "vertex", "openai", "gateway", "gateway_http", "nim", "dcgm", "ray", "ray_gcs", "ray_client")
SECRET_WORDS = re.compile(r"(token|secret|password|passwd|api[_-]?key|apikey|credential)", re.I)
# A family's checker of the profile sections it reads: raises ConfigError, or ValueError("field.path: why").
ProfileCheck = Callable[["Target"], None]
LAB_REF = re.compile(r"\$\{lab\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\}")


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
            raise OutOfScope(f"{host or '(no host)'} is outside the scope ({_scope_text(self.scope, self.scope_hosts)}) "
                             f"of target {self.name!r} ({self.path})")
        if self.budget is not None:
            self.budget.take(host)


# --------------------------------------------------------------------------- validation helpers


class _Ctx:
    def __init__(self, file: Path):
        self.file = file

    def err(self, where: str, problem: str) -> ConfigError:
        return ConfigError(self.file, _one_line_field(where), _one_line(problem))

    def mapping(self, value: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.err(where, f"must be a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                hint = _close(key, allowed)
                raise self.err(_join(where, str(key)), "unknown key" + (f" (did you mean {hint!r}?)" if hint else f" (allowed: {', '.join(allowed)})"))
        for key in required:
            if key not in value or value[key] is None:
                raise self.err(_join(where, key), "required field missing")
        return value

    def string(self, value: Any, where: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str) or not value:
            raise self.err(where, f"must be a non-empty string, got {type(value).__name__}")
        if choices and value not in choices:
            raise self.err(where, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.err(where, "must be a list of strings")
        return tuple(value)

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.err(where, "must be a positive number")
        return float(value)

    def path(self, value: Any, where: str) -> Path:
        p = Path(os.path.expanduser(self.string(value, where)))
        return p if p.is_absolute() else (self.file.parent / p).resolve()


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _one_line(problem: object) -> str:
    """A parser's message on one line (PyYAML's reader errors span two)."""
    return " ".join(str(problem).split())


def _one_line_field(where: str) -> str:
    """A field path as written, with line breaks and control characters escaped (a key may hold them)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in where)


def _close(word: str, options: tuple[str, ...]) -> str | None:
    import difflib

    found = difflib.get_close_matches(str(word), options, n=1, cutoff=0.7)
    return found[0] if found else None


def _reject_inline_secrets(ctx: _Ctx, value: Any, where: str) -> None:
    """Secrets are never allowed inline: refuse secret-named keys holding literal values."""
    if isinstance(value, dict):
        for k, v in value.items():
            sub = _join(where, str(k))
            if isinstance(v, (str, int)) and SECRET_WORDS.search(str(k)) and k not in ("env", "file", "header"):
                raise ctx.err(sub, "secrets are never allowed inline; reference them with {env: VAR} or {file: PATH}")
            _reject_inline_secrets(ctx, v, sub)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _reject_inline_secrets(ctx, v, f"{where}[{i}]")
    elif isinstance(value, str) and "://" in value:
        try:
            parts = urlsplit(value)
            password = parts.password
        except ValueError:
            return  # not a URL we can read; the field's own validation says what is wrong
        if password:
            raise ctx.err(where, "URL carries a password; secrets are never allowed inline")


def _substitute_lab(ctx: _Ctx, value: Any, where: str, state: Mapping[str, Any] | None) -> Any:
    if isinstance(value, dict):
        return {k: _substitute_lab(ctx, v, _join(where, str(k)), state) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_lab(ctx, v, f"{where}[{i}]", state) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        if state is None:
            raise ctx.err(where, "refers to ${lab.…} but the profile has no lab.state_file")

        def repl(m: re.Match) -> str:
            dep, key = m.group(1), m.group(2)
            try:
                return str(state["deployments"][dep][key])
            except (KeyError, TypeError):
                raise ctx.err(where, f"lab state has no {dep}.{key}; is the lab up with this deployment?") from None

        out = LAB_REF.sub(repl, value)
        if "${" in out:
            raise ctx.err(where, "unknown reference; only ${lab.<deployment>.<key>} is supported")
        return out
    return value


def _endpoint(ctx: _Ctx, name: str, raw: Any, where: str) -> Endpoint:
    url = ctx.string(raw, where)
    if "://" not in url:  # "127.0.0.1:8000" would parse as a scheme-less path: every probe would refuse it later
        suggested = "grpc" if name == "grpc" else "http"
        raise ctx.err(where, f"no scheme in {url!r}; write the URL with one, e.g. {suggested}://{url} "
                             "(schemes: http, https, grpc, grpcs)")
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - parses the host part; raises on a malformed one
    except ValueError as exc:
        raise ctx.err(where, f"not a valid URL ({exc}): {url!r}") from None
    scheme = parts.scheme
    if scheme not in ("http", "https", "grpc", "grpcs"):
        raise ctx.err(where, f"scheme must be http, https, grpc or grpcs, got {scheme!r}")
    try:
        port = parts.port
    except ValueError:
        raise ctx.err(where, f"invalid port in {url!r}") from None
    if not parts.hostname:
        raise ctx.err(where, f"no host in {url!r}")
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
        if port is None:
            raise ctx.err(where, f"a {scheme} endpoint needs an explicit port")
    return Endpoint(name, url.rstrip("/"), scheme, parts.hostname, port)


def _scope(ctx: _Ctx, raw: Any) -> tuple[tuple, tuple[str, ...]]:
    items = ctx.strings(raw, "scope")
    if not items:
        raise ctx.err("scope", "must list at least one address or CIDR")
    nets, hosts = [], []
    for i, item in enumerate(items):
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9.-]+", item):
                raise ctx.err(f"scope[{i}]", f"{item!r} is neither an address, a CIDR nor a host name") from None
            hosts.append(item)
    return tuple(nets), tuple(hosts)


def _check_credential_sources(ctx: _Ctx, deployments: Sequence[Deployment]) -> None:
    """Every credential the profile names must resolve on this machine: an unset variable or a
    missing, unreadable or empty file is a configuration error now, not "credential unavailable"
    in the middle of a run."""
    for i, dep in enumerate(deployments):
        for name, cred in dep.credentials.items():
            where = f"deployments[{i}].credentials.{name}"
            if cred.env:
                if not os.environ.get(cred.env):
                    raise ctx.err(f"{where}.env", f"environment variable {cred.env} is not set (or is empty)")
                continue
            assert cred.file is not None
            try:
                value = cred.file.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                raise ctx.err(f"{where}.file", f"{cred.file} does not exist") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ctx.err(f"{where}.file", f"{cred.file} cannot be read ({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc})") from None
            if not value:
                raise ctx.err(f"{where}.file", f"{cred.file} is empty")


# Paths inside options that several families read (the TLS clients of tls, triton-api, performance):
# resolved against the profile's directory at load time like every other path in a profile.
OPTION_PATHS = {"tls": ("ca_file", "client_cert", "client_key")}


def _resolve_option_paths(ctx: _Ctx, options: Any) -> Any:
    if not isinstance(options, dict):
        return options
    out = dict(options)
    for section, keys in OPTION_PATHS.items():
        if isinstance(out.get(section), dict):
            out[section] = {k: (str(ctx.path(v, f"options.{section}.{k}")) if k in keys and isinstance(v, str) and v else v)
                            for k, v in out[section].items()}
    return out


def _scope_text(nets: Sequence[Any], hosts: Sequence[str]) -> str:
    return ", ".join([*map(str, nets), *hosts])


def _credentials(ctx: _Ctx, raw: Any, where: str) -> dict[str, Credential]:
    ctx.mapping(raw, where, tuple(raw) if isinstance(raw, dict) else ())
    creds = {}
    for name, spec in raw.items():
        w = _join(where, name)
        if isinstance(spec, str):
            raise ctx.err(w, "secrets are never allowed inline; reference them with {env: VAR} or {file: PATH}")
        if isinstance(spec, dict) and "value" in spec:
            raise ctx.err(_join(w, "value"), "secrets are never allowed inline; use env: or file:")
        ctx.mapping(spec, w, ("header", "env", "file"))
        if ("env" in spec) == ("file" in spec):
            raise ctx.err(w, "give exactly one of env: or file:")
        creds[name] = Credential(
            name=name,
            header=ctx.string(spec["header"], _join(w, "header")) if "header" in spec else None,
            env=ctx.string(spec["env"], _join(w, "env")) if "env" in spec else None,
            file=ctx.path(spec["file"], _join(w, "file")) if "file" in spec else None,
        )
    return creds


DEPLOYMENT_KEYS = ("name", "kind", "expect", "endpoints", "exposure", "models", "credentials", "must_fail", "kubernetes", "options")


def _deployment(ctx: _Ctx, raw: Any, where: str, target_scope_check) -> Deployment:
    ctx.mapping(raw, where, DEPLOYMENT_KEYS, ("name", "kind", "expect"))
    name = ctx.string(raw["name"], _join(where, "name"))
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise ctx.err(_join(where, "name"), "use lower-case letters, digits and dashes")
    # a manifests-only deployment (judged from its Kubernetes objects) declares no endpoints
    eps_raw = ctx.mapping(raw.get("endpoints") or {}, _join(where, "endpoints"), ENDPOINT_NAMES)
    endpoints = {}
    for ep_name, ep in eps_raw.items():
        w = _join(where, f"endpoints.{ep_name}")
        endpoint = _endpoint(ctx, ep_name, ep, w)
        target_scope_check(endpoint.host, w)
        endpoints[ep_name] = endpoint
    exposure = ctx.strings(raw.get("exposure", ["http"]), _join(where, "exposure"))
    for i, e in enumerate(exposure):
        if e not in ENDPOINT_NAMES:
            raise ctx.err(_join(where, f"exposure[{i}]"), f"unknown endpoint name {e!r} (known: {', '.join(ENDPOINT_NAMES)})")
    k8s = KubernetesRef()
    if "kubernetes" in raw:
        kraw = ctx.mapping(raw["kubernetes"], _join(where, "kubernetes"), ("namespace", "selector", "unit"))
        sel = kraw.get("selector", {})
        if not isinstance(sel, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sel.items()):
            raise ctx.err(_join(where, "kubernetes.selector"), "must be a mapping of label to value")
        ns = ctx.string(kraw["namespace"], _join(where, "kubernetes.namespace")) if "namespace" in kraw else None
        unit = ctx.path(kraw["unit"], _join(where, "kubernetes.unit")) if "unit" in kraw else None
        if unit is not None and not unit.exists():
            raise ctx.err(_join(where, "kubernetes.unit"), f"{unit} does not exist (a folder or file of kubernetes.paths)")
        k8s = KubernetesRef(ns, dict(sel), unit)
    options = raw.get("options", {})
    if not isinstance(options, dict):
        raise ctx.err(_join(where, "options"), "must be a mapping")
    return Deployment(
        name=name,
        kind=ctx.string(raw["kind"], _join(where, "kind"), KINDS),
        expect=ctx.string(raw["expect"], _join(where, "expect"), EXPECTS),
        endpoints=endpoints,
        exposure=exposure,
        models=ctx.strings(raw.get("models", []), _join(where, "models")),
        credentials=_credentials(ctx, raw.get("credentials", {}), _join(where, "credentials")),
        must_fail=ctx.strings(raw.get("must_fail", []), _join(where, "must_fail")),
        kubernetes=k8s,
        options=_resolve_option_paths(ctx, options),
    )


def _kubernetes(ctx: _Ctx, raw: Any) -> KubernetesSource:
    if raw is None:
        return KubernetesSource()
    keys = ("source", "paths", "kubeconfig", "context", "namespaces", "pss_level", "options", "default_namespace")
    ctx.mapping(raw, "kubernetes", keys, ("source",))
    source = ctx.string(raw["source"], "kubernetes.source", K8S_SOURCES)
    paths, spaces = _k8s_paths(ctx, raw.get("paths", []))
    default_ns = _namespace(ctx, raw["default_namespace"], "kubernetes.default_namespace") if "default_namespace" in raw else None
    if source in ("manifests", "snapshot"):
        if not paths:
            raise ctx.err("kubernetes.paths", f"source {source} needs at least one path")
        for i, p in enumerate(paths):
            if not p.exists():
                raise ctx.err(f"kubernetes.paths[{i}]", f"{p} does not exist")
    return KubernetesSource(
        source=source,
        paths=paths,
        kubeconfig=ctx.path(raw["kubeconfig"], "kubernetes.kubeconfig") if "kubeconfig" in raw else None,
        context=ctx.string(raw["context"], "kubernetes.context") if "context" in raw else None,
        namespaces=ctx.strings(raw.get("namespaces", []), "kubernetes.namespaces"),
        pss_level=ctx.string(raw.get("pss_level", "restricted"), "kubernetes.pss_level", ("baseline", "restricted")),
        options=raw.get("options", {}) if isinstance(raw.get("options", {}), dict) else {},
        default_namespace=default_ns,
        path_namespaces=spaces,
    )


def _namespace(ctx: _Ctx, value: Any, where: str) -> str:
    ns = ctx.string(value, where)
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", ns):
        raise ctx.err(where, f"{ns!r} is not a Kubernetes namespace name (lower-case letters, digits and dashes)")
    return ns


def _k8s_paths(ctx: _Ctx, raw: Any) -> tuple[tuple[Path, ...], tuple[str | None, ...]]:
    """kubernetes.paths: each a path, or {path: P, namespace: NS} (the -n its rendered objects were meant for)."""
    if not isinstance(raw, list):
        raise ctx.err("kubernetes.paths", "must be a list of paths (or {path:, namespace:} entries)")
    paths, spaces = [], []
    for i, entry in enumerate(raw):
        where = f"kubernetes.paths[{i}]"
        if isinstance(entry, dict):
            ctx.mapping(entry, where, ("path", "namespace"), ("path",))
            paths.append(ctx.path(entry["path"], f"{where}.path"))
            spaces.append(_namespace(ctx, entry["namespace"], f"{where}.namespace") if "namespace" in entry else None)
        else:
            paths.append(ctx.path(entry, where))
            spaces.append(None)
    return tuple(paths), tuple(spaces)


TOP_KEYS = ("name", "scope", "probe_position", "timeouts", "deployments", "kubernetes", "waivers", "lab", "options")


def load_target(path: str | os.PathLike[str], checks: Sequence[ProfileCheck] = (), *, resolve_credentials: bool = False) -> Target:
    """Load and validate a profile. ``checks`` are the families' checkers of the sections they read
    (``nimwarden.families.profile_checks()``), run on the built Target: a section a family could not
    use is a ConfigError (exit 2) now, not an error in the middle of a run. Without them only the
    profile's own shape is checked; this module knows no family. ``resolve_credentials`` also
    requires every credential source to resolve here (``families.load_profile`` asks for it: audits
    and ``nimwarden validate`` without ``--skip-credentials``)."""
    file = Path(path)
    ctx = _Ctx(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "no such file; pass --target with the path of a target profile") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "", f"cannot read: {exc.__class__.__name__}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: the same safe loader, ~10x faster
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise ConfigError(file, where, f"not valid YAML: {_one_line(getattr(exc, 'problem', None) or exc)}") from None
    ctx.mapping(raw, "", TOP_KEYS, ("name", "deployments"))
    _reject_inline_secrets(ctx, raw, "")

    lab_state_path, lab_state = None, None
    if "lab" in raw:
        lab = ctx.mapping(raw["lab"], "lab", ("state_file",), ("state_file",))
        lab_state_path = ctx.path(lab["state_file"], "lab.state_file")
        try:
            lab_state = json.loads(lab_state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ctx.err("lab.state_file", f"{lab_state_path} not found: the lab is not running (start it with `nimwarden lab up`)") from None
        except (OSError, ValueError) as exc:
            raise ctx.err("lab.state_file", f"unreadable lab state: {exc}") from None
    raw = _substitute_lab(ctx, raw, "", lab_state)

    # scope bounds what may be probed: a manifests-only profile (no endpoints) probes nothing and needs none
    probes = any(isinstance(d, dict) and d.get("endpoints") for d in raw["deployments"] or ()) if isinstance(raw["deployments"], list) else True
    if "scope" not in raw and probes:
        raise ctx.err("scope", "required field missing (a deployment declares endpoints; scope bounds what may be probed)")
    scope, scope_hosts = _scope(ctx, raw["scope"]) if "scope" in raw else ((), ())

    def scope_check(host: str, where: str) -> None:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            if host in scope_hosts:
                return
            return  # a name is checked when it is resolved, just before the probe connects
        if not any(addr in n for n in scope):
            names = " (a host name in scope matches only an endpoint written with that name)" if scope_hosts else ""
            raise ctx.err(where, f"{host} lies outside the target's scope ({_scope_text(scope, scope_hosts)}){names}; "
                                 "add it to scope or fix the endpoint")

    deps_raw = raw["deployments"]
    if not isinstance(deps_raw, list) or not deps_raw:
        raise ctx.err("deployments", "must be a non-empty list")
    deployments = tuple(_deployment(ctx, d, f"deployments[{i}]", scope_check) for i, d in enumerate(deps_raw))
    names = [d.name for d in deployments]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise ctx.err(f"deployments[{i}].name", f"duplicate deployment name {n!r}")

    timeouts = Timeouts()
    if "timeouts" in raw:
        t = ctx.mapping(raw["timeouts"], "timeouts", ("connect_s", "read_s"))
        timeouts = Timeouts(
            connect_s=ctx.number(t.get("connect_s", timeouts.connect_s), "timeouts.connect_s"),
            read_s=ctx.number(t.get("read_s", timeouts.read_s), "timeouts.read_s"),
        )
    options = raw.get("options", {})
    if not isinstance(options, dict):
        raise ctx.err("options", "must be a mapping")
    built = Target(
        name=ctx.string(raw["name"], "name"),
        path=file.resolve(),
        scope=scope,
        scope_hosts=scope_hosts,
        probe_position=ctx.string(raw.get("probe_position", "external"), "probe_position", POSITIONS),
        timeouts=timeouts,
        deployments=deployments,
        kubernetes=_kubernetes(ctx, raw.get("kubernetes")),
        waivers=ctx.path(raw["waivers"], "waivers") if "waivers" in raw else None,
        lab_state=lab_state_path,
        options=_resolve_option_paths(ctx, options),
        budget=budget_from_options(options, ctx.err),
    )
    for check in checks:
        try:
            check(built)
        except ValueError as exc:  # "field.path: what is wrong", the field as written in the profile
            field, sep, why = str(exc).partition(": ")
            raise (ctx.err(field, why) if sep else ctx.err("", str(exc))) from None
    if resolve_credentials:  # last: what this machine lacks, once the profile itself is right
        _check_credential_sources(ctx, deployments)
    return built
