"""Secrets judges (family secrets): literal secrets in pod specs and ConfigMaps, connection strings
with credentials, image pull secrets for private registries, and secret age against a rotation policy.

Every literal secret is reported through :func:`nimwarden.redact.fingerprint` (first and last two
characters and a sha256 prefix), never in full.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

from nimwarden.k8s.findings import Finding, needs, verdict_from
from nimwarden.k8s.model import ClusterState
from nimwarden.k8s.redaction import REDACTED_MARKER, RESTRICTED_KEY, SECRET_NAME, literal, plainly_public
from nimwarden.k8s.workloads import PodTemplate
from nimwarden.outcome import Outcome, not_applicable, passed
from nimwarden.redact import fingerprint, redact_text

CONNECTION_STRING = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://(?:[^/\s:@]+:[^/\s@]+|[^/\s@]*\[sha256:[0-9a-f]{8}\])@")
# Private repositories, by prefix (an entry without "/" is a whole registry host). On nvcr.io the NIM
# images (nvcr.io/nim/…) and NeMo microservices need an NGC key; nvcr.io/nvidia/tritonserver and most of
# nvcr.io/nvidia/… are public (docs/facts.md).
DEFAULT_PRIVATE_REGISTRIES = ("nvcr.io/nim/", "nvcr.io/nvidia/nemo-microservices/", "nvcr.io/nvstaging/")
# Shapes of secret values, whatever the variable is called.
SECRET_VALUES = (
    re.compile(r"nvapi-[A-Za-z0-9_\-]{8,}"),  # NGC API key
    re.compile(r"hf_[A-Za-z0-9]{10,}"),  # Hugging Face token
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub token
    re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),  # JWT
    REDACTED_MARKER,  # a secret fingerprinted when the snapshot was written
)


def _show(value: str) -> str:
    """How a secret appears in a finding: its fingerprint (or as is, when a snapshot already redacted it)."""
    return value if REDACTED_MARKER.search(value) else fingerprint(value)


def _show_url(value: str) -> str:
    """A connection string with its credentials fingerprinted; host and database stay readable."""
    if REDACTED_MARKER.search(value):
        return value
    shown = redact_text(value)
    return shown if shown != value else fingerprint(value)


def _looks_secret(value: str) -> bool:
    return any(p.search(value) for p in SECRET_VALUES)


def _templates_ref(templates: Sequence[PodTemplate]) -> list[str]:
    return [t.ref for t in templates]


def literal_secrets(templates: Sequence[PodTemplate]) -> Outcome:
    """NGC_API_KEY, HF_TOKEN and other secret-looking values come from secretKeyRef, never literals."""
    findings = []
    for tpl in templates:
        for path, c in tpl.containers():
            name = str(c.get("name") or path)
            for i, e in enumerate(c.get("env") or ()):
                value = literal(e.get("value"))
                if value is None or plainly_public(value):
                    continue
                if CONNECTION_STRING.search(value):
                    continue  # judged by the connection-string control
                if SECRET_NAME.search(str(e.get("name", ""))) or _looks_secret(value):
                    findings.append(Finding(tpl.ref, f"literal {e.get('name')}={_show(value)} (use valueFrom.secretKeyRef)",
                                            tpl.source_path(f"{path}.env[{i}].value"), name, "critical"))
            joined = " ".join(str(w) for w in (c.get("command") or []) + (c.get("args") or []))
            for m in RESTRICTED_KEY.finditer(joined):
                key = literal(m.group(1))
                if key:
                    findings.append(Finding(tpl.ref, f"restricted-API key given literally: {_show(key)} (use $(ENV) from a secret)",
                                            tpl.source_path(f"{path}.args"), name, "high"))
            rest = RESTRICTED_KEY.sub(" ", joined)  # reported above; scan the remaining words for secret shapes
            for p in SECRET_VALUES:
                for m in p.finditer(rest):
                    findings.append(Finding(tpl.ref, f"secret-looking literal {_show(m.group(0))} in command/args",
                                            tpl.source_path(f"{path}.args"), name, "critical"))
    return verdict_from(findings, what="literal secret in the pod spec", subjects=_templates_ref(templates),
                        ok="secret-looking variables come from secretKeyRef / secretRef")


def _referenced_configmaps(templates: Sequence[PodTemplate]) -> set[tuple[str | None, str]]:
    refs = set()
    for tpl in templates:
        ns = tpl.owner.namespace
        for _, c in tpl.containers():
            for e in c.get("envFrom") or ():
                if (e.get("configMapRef") or {}).get("name"):
                    refs.add((ns, e["configMapRef"]["name"]))
            for e in c.get("env") or ():
                ref = ((e.get("valueFrom") or {}).get("configMapKeyRef") or {}).get("name")
                if ref:
                    refs.add((ns, ref))
        for v in tpl.spec.get("volumes") or ():
            if (v.get("configMap") or {}).get("name"):
                refs.add((ns, v["configMap"]["name"]))
    return refs


def configmap_secrets(state: ClusterState, templates: Sequence[PodTemplate]) -> Outcome:
    """No secret in the ConfigMaps the workloads read, nor in any ConfigMap of their namespaces."""
    blocked = needs(state, "ConfigMap")
    if blocked:
        return blocked
    namespaces = {t.owner.namespace for t in templates}
    referenced = _referenced_configmaps(templates)
    findings, checked = [], []
    # a pod reads ConfigMaps of its own namespace only: those namespaces' ConfigMaps are every candidate
    for cm in state.in_namespaces("ConfigMap", sorted(namespaces | {ns for ns, _ in referenced}, key=str)):
        if cm.namespace not in namespaces and (cm.namespace, cm.name) not in referenced:
            continue
        checked.append(cm.ref)
        for key, raw in (cm.body.get("data") or {}).items():
            value = literal(raw)
            if value is None:
                continue
            if CONNECTION_STRING.search(value):
                findings.append(Finding(cm.ref, f"connection string with credentials in {key}: {_show_url(value)}", f"data.{key}", severity="high"))
            elif SECRET_NAME.search(key) or _looks_secret(value):
                findings.append(Finding(cm.ref, f"secret-looking {key}={_show(value)} (ConfigMaps are not secret)", f"data.{key}", severity="critical"))
    return verdict_from(findings, what="secret in a ConfigMap", subjects=checked or _templates_ref(templates),
                        ok=f"no secret in {len(checked)} ConfigMap(s)")


def connection_strings(templates: Sequence[PodTemplate]) -> Outcome:
    findings = []
    for tpl in templates:
        for path, c in tpl.containers():
            for i, e in enumerate(c.get("env") or ()):
                value = literal(e.get("value"))
                if value and CONNECTION_STRING.search(value):
                    findings.append(Finding(tpl.ref, f"{e.get('name')} holds a connection string with a password ({_show_url(value)})",
                                            tpl.source_path(f"{path}.env[{i}].value"), str(c.get("name") or path), "high"))
    return verdict_from(findings, what="credentials in a plain env connection string", subjects=_templates_ref(templates),
                        ok="no connection string with credentials in plain env")


def registry_of(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def private_prefix(image: str, private: Iterable[str]) -> str | None:
    """The entry of ``private`` an image falls under: a repository prefix (``nvcr.io/nim/``) or a host (``nvcr.io``)."""
    registry = registry_of(image)
    path = image if image.startswith(registry + "/") else f"{registry}/{image}"
    for entry in private:
        entry = str(entry)
        if "/" in entry:
            prefix = entry if entry.endswith("/") else entry + "/"
            if path.startswith(prefix):
                return entry
        elif registry == entry:
            return entry
    return None


def _secret_exists(state: ClusterState, namespace: str | None, name: str) -> tuple[bool, list[str]]:
    secret = state.get("Secret", namespace, name)
    if secret is not None:
        return True, list(secret.body.get("registries") or [])
    for es in state.of_kind("ExternalSecret", namespace):
        target = ((es.spec.get("target") or {}).get("name")) or es.name
        if target == name:
            return True, []
    return False, []


def pull_secrets(state: ClusterState, templates: Sequence[PodTemplate],
                 private_registries: Iterable[str] = DEFAULT_PRIVATE_REGISTRIES) -> Outcome:
    """Images from private registries are pulled with a pull secret that exists."""
    blocked = needs(state, "Secret", "ServiceAccount")
    if blocked:
        return blocked
    private = tuple(private_registries)
    from_manifests = state.source.startswith("manifests")
    findings, private_images, unverified, public = [], 0, set(), set()
    for tpl in templates:
        ns = tpl.owner.namespace
        names = [s.get("name") for s in tpl.spec.get("imagePullSecrets") or () if s.get("name")]
        sa = state.get("ServiceAccount", ns, tpl.spec.get("serviceAccountName") or "default")
        if sa is not None:
            names += [s.get("name") for s in sa.body.get("imagePullSecrets") or () if s.get("name")]
        for _path, c in tpl.containers():
            image = str(c.get("image", ""))
            registry = registry_of(image)
            if private_prefix(image, private) is None:
                public.add(image)
                continue
            private_images += 1
            if not names:
                findings.append(Finding(tpl.ref, f"image {c.get('image')} from private registry {registry} without imagePullSecrets",
                                        tpl.source_path(f"{tpl.spec_path}.imagePullSecrets"), str(c.get("name")), "medium"))
                continue
            usable = False
            for n in names:
                exists, registries = _secret_exists(state, ns, n)
                if exists and (not registries or any(registry in r for r in registries)):
                    usable = True
                elif not exists and from_manifests:
                    # created outside the manifests (kubectl create secret docker-registry, as NVIDIA's docs say)
                    unverified.add(f"Secret/{ns}/{n}")
                    usable = True
            if not usable:
                findings.append(Finding(tpl.ref, f"pull secret(s) {', '.join(names)} missing or not for {registry}",
                                        tpl.source_path(f"{tpl.spec_path}.imagePullSecrets"), str(c.get("name")), "medium"))
    if not private_images and not findings:
        return passed(f"every image is public ({', '.join(sorted(public)) or 'none'}): no pull secret needed "
                      f"(private: {', '.join(private)})", objects=_templates_ref(templates), public_images=sorted(public))
    caveat = ""
    if unverified:
        caveat = (f"; {', '.join(sorted(unverified))} is created outside the manifests and cannot be verified from manifests "
                  "(a snapshot or live source checks it exists)")
    return verdict_from(findings, what="private image without a usable pull secret", subjects=_templates_ref(templates),
                        ok=f"{private_images} private image(s) pulled with {'named' if unverified else 'existing'} pull secrets{caveat}",
                        unverified=sorted(unverified), public_images=sorted(public))


def _referenced_secrets(templates: Sequence[PodTemplate]) -> set[tuple[str | None, str]]:
    refs = set()
    for tpl in templates:
        ns = tpl.owner.namespace
        for s in tpl.spec.get("imagePullSecrets") or ():
            refs.add((ns, s.get("name")))
        for _, c in tpl.containers():
            for e in c.get("env") or ():
                ref = ((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
                if ref:
                    refs.add((ns, ref))
            for e in c.get("envFrom") or ():
                if (e.get("secretRef") or {}).get("name"):
                    refs.add((ns, e["secretRef"]["name"]))
        for v in tpl.spec.get("volumes") or ():
            if (v.get("secret") or {}).get("secretName"):
                refs.add((ns, v["secret"]["secretName"]))
    return {r for r in refs if r[1]}


def _parse_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except (TypeError, ValueError):
        return None


def _last_data_change(meta) -> dt.datetime | None:
    """When the Secret's values last changed: the newest managedFields entry touching data, else its creation."""
    times = [_parse_time(str(mf.get("time") or "")) for mf in meta.get("managedFields") or ()
             if any(k in (mf.get("fieldsV1") or {}) for k in ("f:data", "f:stringData"))]
    times = [t for t in times if t is not None]
    return max(times) if times else _parse_time(str(meta.get("creationTimestamp") or ""))


def secret_age(state: ClusterState, templates: Sequence[PodTemplate], max_age_days: float = 90,
               now: dt.datetime | None = None) -> Outcome:
    """Secrets the workloads use are younger than the rotation policy, or rotated by an external store."""
    blocked = needs(state, "Secret")
    if blocked:
        return blocked
    now = now or dt.datetime.now(dt.timezone.utc)
    findings, managed, unknown, fresh = [], [], [], []
    for ns, name in sorted(_referenced_secrets(templates), key=lambda r: (r[0] or "", r[1])):
        es = next((e for e in state.of_kind("ExternalSecret", ns) if ((e.spec.get("target") or {}).get("name") or e.name) == name), None)
        if es is not None and es.spec.get("refreshInterval") not in (None, "", "0", "0s"):
            managed.append(f"Secret/{ns}/{name} (ExternalSecret refresh {es.spec.get('refreshInterval')})")
            continue
        secret = state.get("Secret", ns, name)
        created = _last_data_change(secret.metadata) if secret else None
        if created is None:
            unknown.append(f"Secret/{ns}/{name}")
            continue
        age = (now - created).total_seconds() / 86400
        if age > max_age_days:
            findings.append(Finding(f"Secret/{ns}/{name}", f"{age:.0f} days old (policy {max_age_days:g})", "metadata.creationTimestamp", severity="medium"))
        else:
            fresh.append(f"Secret/{ns}/{name}")
    if findings:
        return verdict_from(findings, what="secret older than the rotation policy", subjects=[f.ref for f in findings], ok="")
    if unknown and not (managed or fresh):
        return not_applicable(f"the source shows no age for {', '.join(unknown)}", source=state.source, max_age_days=max_age_days)
    if not (managed or fresh or unknown):
        return not_applicable("the workloads use no secrets", objects=_templates_ref(templates))
    return passed(f"{len(fresh) + len(managed)} secret(s) within {max_age_days:g} days or rotated by an external store",
                  fresh=fresh, managed=managed, age_unknown=unknown)
