"""The target profile, declared once: these models are what loading checks, what every error
message names and what ``nimwarden schema`` publishes (JSON Schema, for editors).

The profile's own fields are declared here; families add the sections they own under
``options``, ``deployments[].options`` and ``kubernetes.options`` (``Family.schema``), and
:func:`profile_model` assembles the whole. Semantic rules are validators on the models: URL
schemes, endpoints inside the scope, secrets never inline, credentials that resolve, relative paths
against the profile's folder, ``${lab.x.y}`` from the lab's state.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from nimwarden.schema.base import (
    Labels,
    Namespace,
    Positive,
    ProfilePath,
    Section,
    Text,
    problem,
)
from nimwarden.schema.rules import (
    credential_problem,
    declared_names,
    parse_scope,
    reject_inline_secrets,
    scope_entry,
    scope_text,
    split_endpoint,
)

# Adding an endpoint name is one line: append it here (exposure, options.tls.require … follow).
ENDPOINT_NAMES = ("http", "grpc", "metrics", "sagemaker", "vertex", "openai", "gateway", "gateway_http", "nim", "dcgm",
                  "ray", "ray_gcs", "ray_client", "nim_grpc",
                  # NeMo: the NeMo Platform API, a gateway in front of it, a NeMo Guardrails server, and the legacy
                  # per-port microservices (nimwarden/families/nemo)
                  "nemo", "nemo_gateway", "guardrails", "nemo_datastore", "nemo_entitystore", "nemo_customizer",
                  "nemo_evaluator", "nemo_guardrails", "nemo_deployment", "nim_proxy")
KINDS = ("triton", "nim", "nemo")
EXPECTS = ("compliant", "noncompliant")
POSITIONS = ("external", "cluster-internal")
K8S_SOURCES = ("none", "manifests", "snapshot", "live")
# Where a family's section may live (Family.schema keys are "<container>.<section>").
CONTAINERS = ("options", "deployments[].options", "kubernetes.options")

EndpointName = Literal[ENDPOINT_NAMES]  # type: ignore[valid-type]


class _EndpointsBase(Section):
    @field_validator("*", mode="after")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        split_endpoint(info.field_name, value)
        return value.rstrip("/")


_URL = {"pattern": r"^(https?|grpcs?)://", "description": "a URL with a scheme: http://, https://, grpc:// or grpcs://"}
Endpoints = create_model("Endpoints", __base__=_EndpointsBase,
                         **{n: (Text, Field(None, json_schema_extra=_URL)) for n in ENDPOINT_NAMES})  # type: ignore[call-overload]


class Credential(Section):
    """A credential names where its value lives, never the value."""

    header: Text = None
    env: Text = None
    file: ProfilePath = None

    @classmethod
    def prepare(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, str):
            raise problem("secrets are never allowed inline; reference them with {env: VAR} or {file: PATH}")
        if isinstance(data, dict) and "value" in data:
            raise problem("secrets are never allowed inline; use env: or file:", ("value",))
        return data

    @model_validator(mode="after")
    def _one_source(self) -> Credential:
        if (self.env is None) == (self.file is None):
            raise problem("give exactly one of env: or file:")
        return self


class DeploymentKubernetes(Section):
    namespace: Text = None
    selector: Labels = {}
    unit: ProfilePath = None  # manifests: only the workloads read from this folder or file of the tree (an apply unit)

    @model_validator(mode="after")
    def _unit_exists(self) -> DeploymentKubernetes:
        if self.unit is not None and not os.path.exists(self.unit):
            raise problem(f"{self.unit} does not exist (a folder or file of kubernetes.paths)", ("unit",))
        return self


def _deployment_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", value):
        raise problem("use lower-case letters, digits and dashes")
    return value


class DeploymentBase(Section):
    name: Annotated[str, Field(min_length=1), AfterValidator(_deployment_name)]
    kind: Literal[KINDS]  # type: ignore[valid-type]
    expect: Literal[EXPECTS]  # type: ignore[valid-type]
    endpoints: Endpoints | None = None  # type: ignore[valid-type]  # none: judged from its Kubernetes objects only
    exposure: list[EndpointName] = ["http"]
    models: list[Text] = []
    credentials: dict[str, Credential] = {}
    must_fail: list[Text] = []
    kubernetes: DeploymentKubernetes = None
    options: dict[str, Any] = {}

    def declared_endpoints(self) -> dict[str, str]:
        return {k: v for k, v in (self.endpoints.model_dump() if self.endpoints else {}).items() if v is not None}


def _path_entry_schema(schema: dict) -> None:
    entry = dict(schema)
    schema.clear()
    schema["anyOf"] = [{"type": "string", "minLength": 1, "description": "a file or directory"}, entry]


class PathEntry(Section):
    """An entry of ``kubernetes.paths``: a path, or ``{path, namespace}`` (the ``-n`` it was rendered for)."""

    model_config = ConfigDict(json_schema_extra=_path_entry_schema)
    path: ProfilePath
    namespace: Namespace = None

    @classmethod
    def prepare(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, str):
            return {"path": data}
        if not isinstance(data, dict):
            from nimwarden.schema.messages import kind_of

            raise problem(f"must be a path or a {{path:, namespace:}} mapping, got {kind_of(data)}")
        return data


class KubernetesBase(Section):
    source: Literal[K8S_SOURCES]  # type: ignore[valid-type]
    paths: list[PathEntry] = []
    kubeconfig: ProfilePath = None
    context: Text = None
    namespaces: list[Text] = []
    pss_level: Literal["baseline", "restricted"] = "restricted"
    options: dict[str, Any] = {}
    default_namespace: Namespace = None  # what `helm install -n NS` gives objects without metadata.namespace

    @model_validator(mode="after")
    def _readable_source(self) -> KubernetesBase:
        if self.source in ("manifests", "snapshot"):
            if not self.paths:
                raise problem(f"source {self.source} needs at least one path", ("paths",))
            for i, entry in enumerate(self.paths):
                if not os.path.exists(entry.path):
                    raise problem(f"{entry.path} does not exist", ("paths", i))
        return self


class Timeouts(Section):
    connect_s: Annotated[Positive, Field(le=3600)] = 2.0
    read_s: Annotated[Positive, Field(le=3600)] = 5.0
    # after this many consecutive requests to one host:port without an answer in time, the next are not sent
    # (each an error at once, saying so; asked again every minute); 0: every request waits out its deadline
    give_up_after: Annotated[int, Field(ge=0, le=1000)] = 3


class Lab(Section):
    state_file: ProfilePath

    @model_validator(mode="after")
    def _read_state(self, info: ValidationInfo) -> Lab:
        """The running lab's state, for ``${lab.<deployment>.<key>}`` in the fields after this one."""
        if not isinstance(info.context, dict) or info.context.get("file") is None:
            return self
        try:
            info.context["lab_state"] = json.loads(Path(self.state_file).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise problem(f"{self.state_file} not found: the lab is not running (start it with `nimwarden lab up`)",
                          ("state_file",)) from None
        except (OSError, ValueError) as exc:
            raise problem(f"unreadable lab state: {exc}", ("state_file",)) from None
        return self


class RequestBudget(Section):
    """``options.request_budget``: a cap on every request and connection the audit sends."""

    max_requests: Annotated[int, Field(gt=0)] = None
    max_rate_per_s: Positive = None


class ProfileBase(Section):
    lab: Lab = None  # first: ${lab.…} in the fields below resolves from its state
    name: Text
    scope: Annotated[list[Annotated[Text, AfterValidator(scope_entry)]], Field(min_length=1)] = None
    probe_position: Literal[POSITIONS] = "external"  # type: ignore[valid-type]
    timeouts: Timeouts = Timeouts()
    deployments: Annotated[list[DeploymentBase], Field(min_length=1)]
    kubernetes: KubernetesBase | None = None
    waivers: ProfilePath = None  # accepted risks live in their own file, never in the target
    options: dict[str, Any] = {}

    @classmethod
    def prepare(cls, data: Any, info: ValidationInfo) -> Any:
        reject_inline_secrets(data, declared_names(cls))
        return data

    @model_validator(mode="after")
    def _whole_profile(self, info: ValidationInfo) -> ProfileBase:
        declared = [d.declared_endpoints() for d in self.deployments]
        # scope bounds what may be probed: a manifests-only profile (no endpoints) probes nothing and needs none
        if self.scope is None and any(declared):
            raise problem("required field missing (a deployment declares endpoints; scope bounds what may be probed)", ("scope",))
        nets, hosts = parse_scope(self.scope or [])
        for i, endpoints in enumerate(declared):
            for name, url in endpoints.items():
                host = split_endpoint(name, url)[1]
                try:
                    addr = ipaddress.ip_address(host)
                except ValueError:
                    continue  # a name is checked when it is resolved, just before the probe connects
                if not any(addr in n for n in nets):
                    names = " (a host name in scope matches only an endpoint written with that name)" if hosts else ""
                    raise problem(f"{host} lies outside the target's scope ({scope_text(nets, hosts)}){names}; "
                                  "add it to scope or fix the endpoint", ("deployments", i, "endpoints", name))
        seen: set[str] = set()
        for i, d in enumerate(self.deployments):
            if d.name in seen:
                raise problem(f"duplicate deployment name {d.name!r}", ("deployments", i, "name"))
            seen.add(d.name)
        if isinstance(info.context, dict) and info.context.get("resolve_credentials"):
            # last: what this machine lacks, once the profile itself is right
            for i, d in enumerate(self.deployments):
                for name, cred in d.credentials.items():
                    found = credential_problem(cred)
                    if found:
                        raise problem(found[1], ("deployments", i, "credentials", name, found[0]))
        return self


# --------------------------------------------------------------------------- assembling the whole


class _OpenSection(Section):
    model_config = ConfigDict(extra="allow")


def _section_field(typ: Any) -> tuple[Any, Any]:
    # A family's mapping may be written empty (`tls:` with nothing under it): null is "not set".
    nullable = isinstance(typ, type) and issubclass(typ, Section)
    return (typ | None if nullable else typ, None)


def _split(sections: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {c: {} for c in CONTAINERS}
    for where, typ in sections.items():
        container, _, name = where.rpartition(".")
        if container not in out or not name:
            raise ValueError(f"{where}: a family's section lives under one of {', '.join(CONTAINERS)}")
        out[container][name] = typ
    return out


@lru_cache(maxsize=8)
def _assemble(sections: tuple[tuple[str, Any], ...] | None) -> type[ProfileBase]:
    if sections is None:  # the profile's own shape only: options stay open (no family is known here)
        options = create_model("Options", __base__=_OpenSection, request_budget=(RequestBudget, None))
        return create_model("Profile", __base__=ProfileBase, options=(options, options()))
    parts = _split(dict(sections))

    def block(name: str, container: str, core: dict | None = None) -> Any:
        fields = {**(core or {}), **{k: _section_field(t) for k, t in parts[container].items()}}
        return create_model(name, __base__=Section, **fields)

    options = block("Options", "options", {"request_budget": (RequestBudget, None)})
    dep_options = block("DeploymentOptions", "deployments[].options")
    k8s_options = block("KubernetesOptions", "kubernetes.options")
    deployment = create_model("Deployment", __base__=DeploymentBase, options=(dep_options, dep_options()))
    kubernetes = create_model("Kubernetes", __base__=KubernetesBase, options=(k8s_options, k8s_options()))
    return create_model("Profile", __base__=ProfileBase, options=(options, options()),
                        deployments=(list[deployment], Field(..., min_length=1)),  # type: ignore[valid-type]
                        kubernetes=(kubernetes | None, None))


def profile_model(sections: Mapping[str, Any] | None = None) -> type[ProfileBase]:
    """The profile's model with the families' ``sections`` (``{"deployments[].options.tls": TlsSection, …}``);
    None: the profile's own fields only, every ``options`` mapping left open."""
    return _assemble(None if sections is None else tuple(sections.items()))


def json_schema(sections: Mapping[str, Any]) -> dict[str, Any]:
    """The published JSON Schema of a target profile (draft 2020-12)."""
    schema = _without_null_defaults(profile_model(sections).model_json_schema(by_alias=True))
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": "nimwarden target profile",
            "description": "What nimwarden may probe and what to expect (README: Target profiles). "
                           "Generated by `nimwarden schema`; do not edit."}


def _without_null_defaults(node: Any) -> Any:
    """``"default": null`` only says "not set" (the family applies its own default): editors need not show it."""
    if isinstance(node, dict):
        return {k: _without_null_defaults(v) for k, v in node.items() if not (k == "default" and v is None)}
    if isinstance(node, list):
        return [_without_null_defaults(v) for v in node]
    return node
