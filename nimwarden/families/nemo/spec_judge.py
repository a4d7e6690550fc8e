"""NeMo workloads judged from cluster state (family nemo): the NeMo Platform's authentication as its pods
are configured, and — for every NeMo workload, above all the legacy per-port microservices, which have no
authentication at all — that nothing publishes it outside the cluster and that a NetworkPolicy admits no
stranger. NeMo workloads are the NIM Operator's NeMo resources (through the pod and Service the operator
renders, :mod:`nimwarden.k8s.nemo_operator`) and any workload :mod:`nimwarden.k8s.nemo` recognises.

The platform reads ``auth`` from its config file (``NMP_CONFIG_FILE_PATH``, default ``/etc/nmp/config.yaml``;
the Helm chart renders ``platformConfig`` into the ConfigMap ``<release>-config``, key ``config.yaml``,
mounted there) and lets environment variables win over the file (``EnvironmentFirstSettings``; prefix
``NMP_AUTH_``: ``NMP_AUTH_ENABLED``, ``NMP_AUTH_ALLOW_UNSIGNED_JWT``) — nemo-platform 0.6.0,
``nmp/common/config/base.py`` and ``nemo_platform_plugin/config.py``. ``auth.enabled`` defaults to false.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nimwarden import yaml_bounded
from nimwarden.k8s.exposure import routes, workload_services
from nimwarden.k8s.findings import Finding, needs, verdict_from
from nimwarden.k8s.model import ClusterState
from nimwarden.k8s.nemo import api_ports, service_of
from nimwarden.k8s.redaction import REDACTED_MARKER
from nimwarden.k8s.workloads import PodTemplate
from nimwarden.outcome import Outcome, errored, not_applicable

CONFIG_PATH_ENV, DEFAULT_CONFIG_PATH = "NMP_CONFIG_FILE_PATH", "/etc/nmp/config.yaml"
AUTH_ENV = {"enabled": "NMP_AUTH_ENABLED", "allow_unsigned_jwt": "NMP_AUTH_ALLOW_UNSIGNED_JWT"}
TRUE, FALSE = ("1", "true", "t", "yes", "y", "on"), ("0", "false", "f", "no", "n", "off")  # pydantic's bool strings
# An Ingress the ingress-nginx controller authenticates before it forwards (external auth or basic auth).
AUTH_ANNOTATIONS = ("nginx.ingress.kubernetes.io/auth-url", "nginx.ingress.kubernetes.io/auth-type")


class Unreadable(Exception):
    """The setting exists but its value is not in the cluster state (a Secret, a volume, a redaction)."""


def nemo_templates(templates: Sequence[PodTemplate], *, skip: tuple[str, ...] = ()):
    """(template, service, why) for each NeMo workload among ``templates``."""
    out = []
    for t in templates:
        hit = service_of(t)
        if hit and hit[0].key not in skip:
            out.append((t, hit[0], hit[1]))
    return out


# ----------------------------------------------------------------------------------- NEMO-SPEC-AUTH-001


@dataclass
class Setting:
    value: bool | None = None  # None: not set anywhere (the platform's default applies)
    where: str = "(default)"  # ConfigMap/ns/name config.yaml, or the env variable
    ref: str = ""  # the object that sets it
    path: str = ""  # its field path there


@dataclass
class AuthConfig:
    source: str  # where the config file came from
    enabled: Setting = field(default_factory=Setting)
    allow_unsigned_jwt: Setting = field(default_factory=Setting)
    notes: list[str] = field(default_factory=list)


def _bool(text: Any, where: str) -> bool:
    if isinstance(text, bool):
        return text
    word = str(text).strip().lower()
    if REDACTED_MARKER.search(str(text)):
        raise Unreadable(f"{where} was redacted when the snapshot was written")
    if word in TRUE or word in FALSE:
        return word in TRUE
    raise Unreadable(f"{where} = {text!r} is not a boolean the platform accepts (it would refuse to start)")


def _main_container(tpl: PodTemplate) -> tuple[str, Mapping[str, Any]]:
    return next(((p, c) for p, c in tpl.containers() if ".initContainers[" not in p), ("", {}))


def _config_file(state: ClusterState, tpl: PodTemplate, container: Mapping[str, Any]) -> tuple[str, Any, str, str]:
    """(where, parsed config or None when no file is mounted, ConfigMap ref, its data key path)."""
    import yaml

    path = DEFAULT_CONFIG_PATH
    for e in container.get("env") or ():
        if e.get("name") == CONFIG_PATH_ENV:
            if "value" not in e:
                raise Unreadable(f"{CONFIG_PATH_ENV} comes from {list(e.get('valueFrom') or {})[:1]}: the config file cannot be found")
            path = str(e["value"])
    volumes = {v.get("name"): v for v in tpl.spec.get("volumes") or ()}
    for m in container.get("volumeMounts") or ():
        mount = str(m.get("mountPath") or "").rstrip("/")
        if m.get("subPath"):
            key = str(m["subPath"]) if mount == path else None
        else:
            key = posixpath.relpath(path, mount) if path.startswith(mount + "/") else None
        if key is None:
            continue
        vol = volumes.get(m.get("name")) or {}
        cm = vol.get("configMap")
        if not isinstance(cm, Mapping):
            kind = next((k for k in vol if k != "name"), "an unknown volume")
            raise Unreadable(f"the config file {path} is on a {kind} volume ({m.get('name')}): its content is not in the cluster state")
        key = next((i.get("key") for i in cm.get("items") or () if i.get("path") == key), key if not cm.get("items") else None)
        obj = state.get("ConfigMap", tpl.owner.namespace, cm.get("name"))
        if obj is None:
            blocked = state.unreadable("ConfigMap")
            raise Unreadable(blocked or f"ConfigMap/{tpl.owner.namespace}/{cm.get('name')} (the config file {path}) is not in the cluster state")
        text = (obj.body.get("data") or {}).get(key)
        if text is None:
            raise Unreadable(f"{obj.ref} has no key {key} (the config file {path})")
        try:
            parsed = yaml_bounded.load(str(text), yaml.SafeLoader)
        except yaml.YAMLError as exc:
            raise Unreadable(f"{obj.ref} key {key} is not YAML: {str(exc).splitlines()[0]}") from None
        if parsed is not None and not isinstance(parsed, Mapping):
            raise Unreadable(f"{obj.ref} key {key} is not a YAML mapping")
        return f"{obj.ref} key {key}", parsed or {}, obj.ref, f"data[{key}]"
    return f"no file mounted at {path}", None, "", ""


def _env_value(state: ClusterState, tpl: PodTemplate, cpath: str, container: Mapping[str, Any], name: str) -> tuple[Any, str, str] | None:
    """(value, where, field path) of an environment variable the container sets, case-insensitive as pydantic reads it."""
    for i, e in enumerate(container.get("env") or ()):
        if str(e.get("name", "")).upper() != name:
            continue
        path = tpl.source_path(f"{cpath}.env[{i}]")
        if "value" in e:
            return e["value"], f"env {e['name']}", path
        ref = (e.get("valueFrom") or {}).get("configMapKeyRef") or {}
        cm = state.get("ConfigMap", tpl.owner.namespace, ref.get("name")) if ref else None
        if cm is not None and ref.get("key") in (cm.body.get("data") or {}):
            return cm.body["data"][ref["key"]], f"env {e['name']} from {cm.ref}", path
        raise Unreadable(f"env {e['name']} comes from {next(iter(e.get('valueFrom') or {'?': 0}))}: its value is not in the cluster state")
    for e in container.get("envFrom") or ():
        prefix = str(e.get("prefix") or "")
        if (e.get("configMapRef") or {}).get("name"):
            cm = state.get("ConfigMap", tpl.owner.namespace, e["configMapRef"]["name"])
            for k, v in ((cm.body.get("data") or {}).items() if cm else ()):
                if (prefix + k).upper() == name:
                    return v, f"env {prefix + k} from {cm.ref} (envFrom)", f"{cm.ref} data.{k}"
        if (e.get("secretRef") or {}).get("name"):
            secret = state.get("Secret", tpl.owner.namespace, e["secretRef"]["name"])
            if secret is not None and any((prefix + k).upper() == name for k in secret.body.get("dataKeys") or ()):
                raise Unreadable(f"{name} comes from {secret.ref} (envFrom): its value is not readable")
    return None


def platform_config(state: ClusterState, tpl: PodTemplate) -> AuthConfig:
    """The auth settings one NeMo Platform pod runs with: its config file, then the env variables that win."""
    cpath, container = _main_container(tpl)
    where, parsed, ref, path = _config_file(state, tpl, container)
    cfg = AuthConfig(where)
    auth = (parsed or {}).get("auth") if isinstance(parsed, Mapping) else None
    if auth is not None and not isinstance(auth, Mapping):
        raise Unreadable(f"{where}: auth is not a mapping")
    for key, env in AUTH_ENV.items():
        setting = getattr(cfg, key)
        if auth and key in auth:
            setting.value, setting.where, setting.ref = _bool(auth[key], f"{where} auth.{key}"), f"{where} auth.{key}", ref
            setting.path = f"{path}.auth.{key}"
        found = _env_value(state, tpl, cpath, container, env)
        if found is not None:
            value, env_where, env_path = found
            overridden = f" (overrides {setting.where})" if setting.value is not None else ""
            setting.value, setting.where, setting.ref, setting.path = _bool(value, env_where), env_where + overridden, tpl.ref, env_path
    for e in container.get("envFrom") or ():
        name = (e.get("secretRef") or {}).get("name")
        if name and state.get("Secret", tpl.owner.namespace, name) is None:
            cfg.notes.append(f"envFrom Secret/{tpl.owner.namespace}/{name} is not in the cluster state: it is expected to hold the "
                             "encryption key only (an NMP_AUTH_* variable there would override the file)")
    return cfg


def platform_auth(state: ClusterState, templates: Sequence[PodTemplate]) -> Outcome:
    """NEMO-SPEC-AUTH: every NeMo Platform API pod runs with ``auth.enabled: true`` and without unsigned JWTs."""
    nemo = nemo_templates(templates)
    platforms = [hit for hit in nemo if hit[1].key == "platform"]
    if not platforms:
        legacy = [t.ref for t, s, _ in nemo if s.legacy]
        why = (f"the selected NeMo workloads ({', '.join(legacy)}) are legacy microservices with no authentication of their own: "
               "NEMO-SPEC-EXPOSE-001 and NEMO-SPEC-NETPOL-001 judge what stands in for it") if legacy else \
            "no NeMo Platform API among the selected workloads"
        return not_applicable(why, objects=[t.ref for t in templates])
    findings, seen = [], []
    for tpl, _, _ in platforms:
        try:
            cfg = platform_config(state, tpl)
        except Unreadable as exc:
            return errored(f"cannot tell whether {tpl.ref} runs with authentication: {exc}", source=state.source)
        seen.append({"workload": tpl.ref, "config": cfg.source, "auth.enabled": cfg.enabled.value, "set_by": cfg.enabled.where,
                     "auth.allow_unsigned_jwt": cfg.allow_unsigned_jwt.value, "notes": cfg.notes})
        _, container = _main_container(tpl)
        name = str(container.get("name") or "")
        if cfg.enabled.value is not True:
            shown = "not set (the NeMo Platform's default is false)" if cfg.enabled.value is None else f"false ({cfg.enabled.where})"
            findings.append(Finding(cfg.enabled.ref or tpl.ref, f"authentication is off: auth.enabled {shown}; every route answers "
                                    "anonymously and the secrets service returns stored values", cfg.enabled.path or
                                    tpl.source_path(f"{tpl.spec_path}.containers"), name if cfg.enabled.ref in ("", tpl.ref) else None,
                                    "critical"))
        if cfg.allow_unsigned_jwt.value is True:
            findings.append(Finding(cfg.allow_unsigned_jwt.ref, f"auth.allow_unsigned_jwt is true ({cfg.allow_unsigned_jwt.where}): "
                                    "a token signed with alg=none is accepted, so anyone can claim any identity",
                                    cfg.allow_unsigned_jwt.path, name if cfg.allow_unsigned_jwt.ref == tpl.ref else None, "critical"))
    return verdict_from(findings, what="NeMo Platform authentication not enforced", subjects=[t.ref for t, _, _ in platforms],
                        ok=f"{len(platforms)} NeMo Platform API workload(s) run with auth.enabled true and unsigned JWTs refused",
                        platforms=seen)


# ----------------------------------------------------------------------------------- NEMO-SPEC-EXPOSE-001


def _route_field(obj, r: int, p: int) -> str:
    if obj.kind == "Ingress":
        return "spec.defaultBackend" if r < 0 else f"spec.rules[{r}].http.paths[{p}]"
    return {"HTTPRoute": f"spec.rules[{r}]", "IngressRoute": f"spec.routes[{r}]"}.get(obj.kind, "spec.to")


def not_published(state: ClusterState, templates: Sequence[PodTemplate]) -> Outcome:
    """NEMO-SPEC-EXPOSE: no Service of type LoadBalancer/NodePort (or with externalIPs) and no Ingress, HTTPRoute or
    Route publishes a NeMo workload itself. The legacy services have no authentication, so an Ingress that
    ingress-nginx authenticates (auth-url / auth-type) is accepted for them; the NeMo Platform API must be
    reached through a gateway that strips its identity headers (the chart's Envoy proxy), never directly."""
    nemo = nemo_templates(templates, skip=("gateway",))
    if not nemo:
        return not_applicable("no NeMo workload among the selected workloads", objects=[t.ref for t in templates])
    blocked = needs(state, "Service", "Ingress")
    if blocked:
        return blocked
    findings, accepted, done = [], [], set()
    for tpl, service, _ in nemo:
        for svc in workload_services(state, [tpl]):
            kind = svc.spec.get("type") or "ClusterIP"
            if (kind in ("LoadBalancer", "NodePort") or svc.spec.get("externalIPs")) and svc.ref not in done:
                done.add(svc.ref)
                how = kind if kind != "ClusterIP" else "externalIPs"
                field_path = "spec.externalIPs" if how == "externalIPs" else "spec.type"
                findings.append(Finding(svc.ref, f"{how} publishes the {service.title} outside the cluster: NeMo microservices are not "
                                        "meant to be internet-facing and this one has no gateway in front", field_path, severity="critical"))
        for obj, hits in routes(state, [tpl]):
            for r, p, path in hits:
                if (obj.ref, r, p) in done:
                    continue
                done.add((obj.ref, r, p))
                authenticated = obj.kind == "Ingress" and any(a in obj.annotations for a in AUTH_ANNOTATIONS)
                if authenticated and service.legacy:
                    accepted.append(f"{obj.ref} ({', '.join(a for a in AUTH_ANNOTATIONS if a in obj.annotations)})")
                    continue
                what = ("routes straight to the NeMo Platform API, past the gateway that must strip the X-NMP-* identity headers"
                        if not service.legacy else f"publishes the {service.title} (no authentication of its own) without an "
                        "authenticating gateway")
                findings.append(Finding(obj.ref, f"{what} (path {path.get('path') or '/'})", _route_field(obj, r, p), severity="critical"))
    return verdict_from(findings, what="NeMo workload published outside the cluster", subjects=sorted({t.ref for t, _, _ in nemo}),
                        ok=f"{len(nemo)} NeMo workload(s) are reachable inside the cluster only"
                           + (f" or through an authenticating ingress: {', '.join(accepted)}" if accepted else ""),
                        authenticated_routes=accepted)


# ----------------------------------------------------------------------------------- NEMO-SPEC-NETPOL-001


def isolated(state: ClusterState, templates: Sequence[PodTemplate]) -> Outcome:
    """NEMO-SPEC-NETPOL: the network-policy model admits no stranger (a pod in another namespace, an unlabelled pod
    of the same namespace) to any API port of a NeMo workload. The platform chart's Envoy proxy is the way in
    and is left out."""
    from nimwarden.k8s.network import reachability_model, strangers_admitted

    nemo = nemo_templates(templates, skip=("gateway",))
    if not nemo:
        return not_applicable("no NeMo workload among the selected workloads", objects=[t.ref for t in templates])
    blocked = needs(state, "NetworkPolicy")
    if blocked:
        return blocked
    model = reachability_model(state)
    findings, flows = [], []
    for tpl, service, _ in nemo:
        ports = sorted({port for port, _ in api_ports(tpl, service)})
        seen = strangers_admitted(model, tpl, ports)
        if seen is None:
            findings.append(Finding(tpl.ref, f"the {service.title} runs with hostNetwork: no NetworkPolicy can isolate it",
                                    tpl.source_path(f"{tpl.spec_path}.hostNetwork"), severity="critical"))
            continue
        admitted, judged = seen
        flows += judged
        for port in sorted({a.port for a in admitted}):
            sources = " and ".join(dict.fromkeys(a.source for a in admitted if a.port == port))
            why = next(a.why for a in admitted if a.port == port)
            findings.append(Finding(tpl.ref, f"{service.title} port {port}/TCP admits {sources}: {why}", severity="high"))
    return verdict_from(findings, what="NeMo workload not isolated by a NetworkPolicy", subjects=sorted({t.ref for t, _, _ in nemo}),
                        ok=f"the API ports of {len(nemo)} NeMo workload(s) admit no pod outside their callers", flows=flows)
