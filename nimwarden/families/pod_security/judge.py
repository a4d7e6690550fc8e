"""Pod-level judges (family pod-security): PSS verdicts, namespace labels, and the NIM-specific
securityContext controls from the seeds (non-root with a non-zero UID, seccomp, no privilege
escalation, capabilities dropped, read-only root and model volumes, GPUs without privilege,
no hostPath model caches)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from nimwarden.families.pod_security.pss import LEVELS, POLICY_SOURCE, evaluate_pod_spec
from nimwarden.k8s.findings import Finding, container_name, effective, effective_path, verdict_from
from nimwarden.k8s.model import K8sObject
from nimwarden.k8s.workloads import PodTemplate
from nimwarden.outcome import Outcome, errored, not_applicable, passed

PSS_LABEL = "pod-security.kubernetes.io/"
CRITICAL_CAPABILITIES = frozenset({"SYS_ADMIN", "ALL", "SYS_MODULE", "SYS_PTRACE", "SYS_RAWIO", "DAC_READ_SEARCH", "BPF"})
MODEL_PATH_HINTS = ("model", "nim-cache", "/opt/nim/.cache", "hf-cache", "huggingface")


def _refs(templates: Sequence[PodTemplate]) -> list[str]:
    return [t.ref for t in templates]


def pss(templates: Sequence[PodTemplate], level: str = "restricted", version: str = "latest") -> Outcome:
    """Every pod template satisfies the Pod Security Standard at ``level`` (upstream semantics)."""
    findings = []
    resolved = None
    for tpl in templates:
        result = evaluate_pod_spec(dict(tpl.metadata), dict(tpl.spec), level, version, spec_path=tpl.spec_path)
        resolved = result.version
        containers = tpl.containers()
        for v in result.violations:
            for path in v.paths:
                name = next((str(c.get("name")) for cp, c in containers if path.startswith(cp + ".")), None)
                findings.append(Finding(tpl.ref, f"PSS {level} {v.check}: {v.reason}", tpl.source_path(path), name))
    return verdict_from(findings, what=f"violates PSS {level}", subjects=_refs(templates),
                        ok=f"all pod templates satisfy PSS {level} ({resolved})", level=level,
                        policy_version=resolved, policy=POLICY_SOURCE)


def namespace_labels(namespace: str, ns_obj: K8sObject | None, required: str = "restricted") -> Outcome:
    """enforce, audit and warn labels are present at (at least) the required level."""
    if ns_obj is None:
        return errored(f"Namespace {namespace} is not in the cluster state; its labels cannot be checked")
    rank = {lv: i for i, lv in enumerate(LEVELS)}
    findings = []
    for mode in ("enforce", "audit", "warn"):
        value = ns_obj.labels.get(PSS_LABEL + mode)
        path = f"metadata.labels[{PSS_LABEL}{mode}]"
        if value is None:
            findings.append(Finding(ns_obj.ref, f"missing (need {required})", path, severity="high" if mode == "enforce" else "medium"))
        elif value not in rank:
            findings.append(Finding(ns_obj.ref, f"unknown level {value!r}", path))
        elif rank[value] < rank[required]:
            findings.append(Finding(ns_obj.ref, f"{value} is weaker than {required}", path,
                                    severity="high" if mode == "enforce" else "medium"))
    return verdict_from(findings, what=f"namespace PSS labels below {required}", subjects=[ns_obj.ref],
                        ok=f"{ns_obj.ref} enforces, audits and warns at {required}",
                        labels={k: v for k, v in ns_obj.labels.items() if k.startswith(PSS_LABEL)})


def _each(templates: Sequence[PodTemplate]):
    for tpl in templates:
        for path, c in tpl.containers():
            yield tpl, path, c


def non_root(templates: Sequence[PodTemplate]) -> Outcome:
    """runAsNonRoot true and an explicit non-zero runAsUser for every container."""
    findings = []
    for tpl, path, c in _each(templates):
        name = container_name(tpl, path, c)
        uid = effective(tpl, c, "runAsUser")
        if effective(tpl, c, "runAsNonRoot") is not True:
            if isinstance(uid, int) and not isinstance(uid, bool) and uid > 0:
                # the UID is explicit and non-zero: the container does not run as root; only the guard is missing
                findings.append(Finding(tpl.ref, f"runAsUser {uid} is set (not root), only runAsNonRoot: true is missing",
                                        effective_path(tpl, path, c, "runAsNonRoot"), name, "medium"))
            else:
                findings.append(Finding(tpl.ref, "runAsNonRoot is not true", effective_path(tpl, path, c, "runAsNonRoot"), name))
        if uid is None:
            findings.append(Finding(tpl.ref, "runAsUser not set (image default user applies)", effective_path(tpl, path, c, "runAsUser"), name))
        elif uid == 0:
            findings.append(Finding(tpl.ref, "runAsUser is 0 (root)", effective_path(tpl, path, c, "runAsUser"), name, "critical"))
    only_guard = findings and all("only runAsNonRoot: true is missing" in f.problem for f in findings)
    what = "runAsNonRoot missing where a non-zero runAsUser is set" if only_guard else "container may run as root"
    return verdict_from(findings, what=what, subjects=_refs(templates),
                        ok="every container runs as a non-root, non-zero UID")


def seccomp(templates: Sequence[PodTemplate]) -> Outcome:
    findings = []
    for tpl, path, c in _each(templates):
        profile = effective(tpl, c, "seccompProfile") or {}
        if profile.get("type") not in ("RuntimeDefault", "Localhost"):
            findings.append(Finding(tpl.ref, f"seccomp profile is {profile.get('type') or 'unset (Unconfined on most runtimes)'}",
                                    effective_path(tpl, path, c, "seccompProfile") + ".type", container_name(tpl, path, c)))
    return verdict_from(findings, what="no RuntimeDefault/Localhost seccomp profile", subjects=_refs(templates),
                        ok="every container has a RuntimeDefault or Localhost seccomp profile")


def no_privilege_escalation(templates: Sequence[PodTemplate]) -> Outcome:
    findings = [Finding(tpl.ref, "allowPrivilegeEscalation is not false", tpl.source_path(f"{path}.securityContext.allowPrivilegeEscalation"),
                        container_name(tpl, path, c))
                for tpl, path, c in _each(templates)
                if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False]
    return verdict_from(findings, what="privilege escalation allowed", subjects=_refs(templates),
                        ok="every container sets allowPrivilegeEscalation: false")


def capabilities(templates: Sequence[PodTemplate]) -> Outcome:
    """Capabilities dropped to none; each added one reported (SYS_ADMIN and friends as critical)."""
    findings = []
    for tpl, path, c in _each(templates):
        name = container_name(tpl, path, c)
        caps = (c.get("securityContext") or {}).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or ()):
            findings.append(Finding(tpl.ref, "capabilities not dropped (need drop: [ALL])",
                                    tpl.source_path(f"{path}.securityContext.capabilities.drop"), name, "medium"))
        for i, cap in enumerate(caps.get("add") or ()):
            norm = str(cap).upper().removeprefix("CAP_")
            findings.append(Finding(tpl.ref, f"adds capability {cap}", tpl.source_path(f"{path}.securityContext.capabilities.add[{i}]"),
                                    name, "critical" if norm in CRITICAL_CAPABILITIES else "high"))
        if (c.get("securityContext") or {}).get("privileged") is True:
            findings.append(Finding(tpl.ref, "privileged container (all capabilities)", tpl.source_path(f"{path}.securityContext.privileged"),
                                    name, "critical"))
    return verdict_from(findings, what="capabilities not dropped to none", subjects=_refs(templates),
                        ok="every container drops ALL capabilities and adds none")


def read_only_root(templates: Sequence[PodTemplate]) -> Outcome:
    findings = [Finding(tpl.ref, "readOnlyRootFilesystem is not true", tpl.source_path(f"{path}.securityContext.readOnlyRootFilesystem"),
                        container_name(tpl, path, c))
                for tpl, path, c in _each(templates)
                if (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True]
    return verdict_from(findings, what="writable root filesystem", subjects=_refs(templates),
                        ok="every container has a read-only root filesystem")


def _model_paths(container: dict) -> set[str]:
    """Model directories a container names: --model-repository / --model-store arguments and NIM cache variables."""
    paths = set()
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    for i, w in enumerate(words):
        for flag in ("--model-repository", "--model-store"):
            if w.startswith(flag + "="):
                paths.add(w.split("=", 1)[1])
            elif w == flag and i + 1 < len(words):
                paths.add(words[i + 1])
    for e in container.get("env") or ():
        if e.get("name") in ("NIM_CACHE_PATH", "HF_HOME", "MODEL_REPOSITORY") and e.get("value"):
            paths.add(str(e["value"]))
    return paths


def _is_model_mount(mount: dict, model_paths: set[str]) -> bool:
    mp = str(mount.get("mountPath", "")).rstrip("/")
    if any(p.rstrip("/") == mp or p.startswith(mp + "/") for p in model_paths):
        return True
    text = f"{mount.get('name', '')} {mp}".lower()
    return any(h in text for h in MODEL_PATH_HINTS)


def model_volumes_read_only(templates: Sequence[PodTemplate]) -> Outcome:
    findings, seen = [], 0
    for tpl, path, c in _each(templates):
        model_paths = _model_paths(c)
        for i, m in enumerate(c.get("volumeMounts") or ()):
            if _is_model_mount(m, model_paths):
                seen += 1
                if m.get("readOnly") is not True:
                    findings.append(Finding(tpl.ref, f"model volume {m.get('name')} mounted read-write at {m.get('mountPath')}",
                                            tpl.source_path(f"{path}.volumeMounts[{i}].readOnly"), container_name(tpl, path, c)))
    if not findings and not seen:
        return passed("no model volume is mounted (models baked into a read-only image or fetched elsewhere)", objects=_refs(templates))
    return verdict_from(findings, what="model volume writable", subjects=_refs(templates), ok=f"all {seen} model volume mounts are read-only")


def _uses_gpu(tpl: PodTemplate, c: dict) -> bool:
    res = c.get("resources") or {}
    wants = any("nvidia.com/gpu" in str(k) for part in ("limits", "requests") for k in (res.get(part) or {}))
    return wants or tpl.spec.get("runtimeClassName") == "nvidia"


def gpu_without_privilege(templates: Sequence[PodTemplate]) -> Outcome:
    """GPUs come through the device plugin / runtimeClass, not a privileged container or /dev hostPath."""
    findings = []
    dev_volumes = {}
    for tpl in templates:
        for i, v in enumerate(tpl.spec.get("volumes") or ()):
            host = (v.get("hostPath") or {}).get("path", "")
            if host == "/dev" or host.startswith("/dev/"):
                dev_volumes[(tpl.ref, v.get("name"))] = (i, host)
    for tpl, path, c in _each(templates):
        name = container_name(tpl, path, c)
        mounts_dev = [(m, dev_volumes[(tpl.ref, m.get("name"))]) for m in c.get("volumeMounts") or () if (tpl.ref, m.get("name")) in dev_volumes]
        privileged = (c.get("securityContext") or {}).get("privileged") is True
        for _m, (i, host) in mounts_dev:
            findings.append(Finding(tpl.ref, f"mounts host devices {host} (bypasses the device plugin)",
                                    tpl.source_path(f"{tpl.spec_path}.volumes[{i}].hostPath"), name, "critical"))
        if privileged and (_uses_gpu(tpl, c) or mounts_dev):
            findings.append(Finding(tpl.ref, "privileged container used to reach GPUs",
                                    tpl.source_path(f"{path}.securityContext.privileged"), name, "critical"))
    return verdict_from(findings, what="GPU access through privilege", subjects=_refs(templates),
                        ok="GPU access (if any) goes through the device plugin / runtimeClass, without privilege")


def no_host_path(templates: Sequence[PodTemplate]) -> Outcome:
    findings = []
    for tpl in templates:
        for i, v in enumerate(tpl.spec.get("volumes") or ()):
            host = (v.get("hostPath") or {}).get("path")
            if host is not None:
                sev = "critical" if host in ("/", "/dev", "/proc", "/sys", "/var/run/docker.sock", "/run/containerd") else "high"
                findings.append(Finding(tpl.ref, f"hostPath volume {v.get('name')} -> {host}",
                                        tpl.source_path(f"{tpl.spec_path}.volumes[{i}].hostPath"), severity=sev))
    return verdict_from(findings, what="hostPath volume (e.g. a model cache on the node)", subjects=_refs(templates),
                        ok="no hostPath volumes: model caches live on PVCs or emptyDir")


def namespace_labels_of(state, templates: Sequence[PodTemplate], required: str = "restricted") -> Outcome:
    """POD-NSLABELS on the namespace of the deployment's workloads (the subject is that Namespace)."""
    namespace = templates[0].owner.namespace
    ns_obj = state.get("Namespace", None, namespace)
    if ns_obj is None and state.source.startswith("manifests"):
        # rendered charts carry no Namespace (`helm install -n NS --create-namespace` makes it): not a finding, not knowable here
        return dataclasses.replace(not_applicable(
            f"Namespace {namespace} is not part of these manifests (helm install -n / kubectl create namespace makes it): "
            "its Pod Security labels cannot be verified from manifests; audit a snapshot or live source to check them",
            source=state.source), subject=f"Namespace/{namespace}")
    outcome = namespace_labels(namespace, ns_obj, required)
    return dataclasses.replace(outcome, subject=f"Namespace/{namespace}")
