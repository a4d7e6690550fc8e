"""The Pod Security Standards checks, one function per upstream check revision.

Each function mirrors one ``CheckPod`` revision of ``k8s.io/pod-security-admission``
(``policy/check_<id>.go``) and takes the pod's metadata, spec, the list of
``(path, container)`` pairs (init, regular, ephemeral — upstream's visit order)
and the field path of the spec. It returns ``None`` when the pod is allowed,
else a :class:`Violation` naming the offending field paths.

Objects are the JSON/YAML form of the API (dicts). A key that is present with
a ``null`` value counts as unset, as a nil pointer does upstream.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    check: str  # upstream check ID, e.g. "runAsNonRoot"
    reason: str  # upstream ForbiddenReason, e.g. "runAsNonRoot != true"
    detail: str
    paths: tuple[str, ...]  # field paths that caused it, e.g. "spec.containers[0].securityContext.privileged"


def _sc(obj: dict) -> dict:
    return obj.get("securityContext") or {}


def _is_windows(spec: dict) -> bool:
    return ((spec.get("os") or {}).get("name")) == "windows"


def _user_namespaced(spec: dict) -> bool:
    return spec.get("hostUsers") is False


def _names(items: list[tuple[str, dict]]) -> str:
    return ", ".join(f'"{c.get("name", "")}"' for _, c in items)


# --- baseline -----------------------------------------------------------------


def host_process_1_0(meta, spec, containers, sp):
    paths = []
    if ((_sc(spec).get("windowsOptions") or {}).get("hostProcess")) is True:
        paths.append(f"{sp}.securityContext.windowsOptions.hostProcess")
    for path, c in containers:
        if ((_sc(c).get("windowsOptions") or {}).get("hostProcess")) is True:
            paths.append(f"{path}.securityContext.windowsOptions.hostProcess")
    if paths:
        return Violation("windowsHostProcess", "hostProcess", "pod or containers must not set securityContext.windowsOptions.hostProcess=true", tuple(paths))
    return None


def host_namespaces_1_0(meta, spec, containers, sp):
    bad = [k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    if bad:
        return Violation("hostNamespaces", "host namespaces", ", ".join(f"{k}=true" for k in bad), tuple(f"{sp}.{k}" for k in bad))
    return None


def privileged_1_0(meta, spec, containers, sp):
    bad = [(p, c) for p, c in containers if _sc(c).get("privileged") is True]
    if bad:
        return Violation("privileged", "privileged", f"containers {_names(bad)} must not set securityContext.privileged=true",
                         tuple(f"{p}.securityContext.privileged" for p, _ in bad))
    return None


# Upstream compares capability names exactly: "chown" is not "CHOWN".
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})


def capabilities_baseline_1_0(meta, spec, containers, sp):
    paths, caps = [], set()
    for p, c in containers:
        for i, cap in enumerate((_sc(c).get("capabilities") or {}).get("add") or ()):
            if cap not in BASELINE_CAPABILITIES:
                paths.append(f"{p}.securityContext.capabilities.add[{i}]")
                caps.add(str(cap))
    if paths:
        return Violation("capabilities_baseline", "non-default capabilities", f"forbidden capabilities {sorted(caps)}", tuple(paths))
    return None


def host_path_volumes_1_0(meta, spec, containers, sp):
    bad = [i for i, v in enumerate(spec.get("volumes") or ()) if v.get("hostPath") is not None]
    if bad:
        return Violation("hostPathVolumes", "hostPath volumes", "hostPath volumes are forbidden", tuple(f"{sp}.volumes[{i}].hostPath" for i in bad))
    return None


def host_ports_1_0(meta, spec, containers, sp):
    paths = []
    for p, c in containers:
        for i, port in enumerate(c.get("ports") or ()):
            if port.get("hostPort"):
                paths.append(f"{p}.ports[{i}].hostPort")
    if paths:
        return Violation("hostPorts", "hostPort", "hostPort must be unset or 0", tuple(paths))
    return None


APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _apparmor_annotation_ok(value) -> bool:
    return not value or value == "runtime/default" or str(value).startswith("localhost/")


def _apparmor_field_ok(profile: dict) -> bool:
    return profile.get("type") in ("RuntimeDefault", "Localhost")


def app_armor_profile_1_0(meta, spec, containers, sp):
    # The field check was patched into the 1.0 revision upstream (v1.30), so it applies at every version.
    paths = []
    profile = _sc(spec).get("appArmorProfile")
    if profile is not None and not _apparmor_field_ok(profile):
        paths.append(f"{sp}.securityContext.appArmorProfile.type")
    for p, c in containers:
        profile = _sc(c).get("appArmorProfile")
        if profile is not None and not _apparmor_field_ok(profile):
            paths.append(f"{p}.securityContext.appArmorProfile.type")
    for key, value in ((meta or {}).get("annotations") or {}).items():
        if key.startswith(APPARMOR_ANNOTATION_PREFIX) and not _apparmor_annotation_ok(value):
            paths.append(f"metadata.annotations[{key}]")
    if paths:
        return Violation("appArmorProfile", "forbidden AppArmor profile", "AppArmor profile must be RuntimeDefault or Localhost", tuple(paths))
    return None


SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}


def _selinux(allowed):
    def check(meta, spec, containers, sp):
        paths = []
        for base, obj in [(f"{sp}.securityContext", _sc(spec))] + [(f"{p}.securityContext", _sc(c)) for p, c in containers]:
            opts = obj.get("seLinuxOptions")
            if opts is None:
                continue
            if (opts.get("type") or "") not in allowed:
                paths.append(f"{base}.seLinuxOptions.type")
            for key in ("user", "role"):
                if opts.get(key):
                    paths.append(f"{base}.seLinuxOptions.{key}")
        if paths:
            return Violation("seLinuxOptions", "seLinuxOptions", "forbidden securityContext.seLinuxOptions", tuple(paths))
        return None
    return check


se_linux_options_1_0 = _selinux(SELINUX_TYPES_1_0)
se_linux_options_1_31 = _selinux(SELINUX_TYPES_1_31)


def proc_mount_restricted(meta, spec, containers, sp):
    paths = [f"{p}.securityContext.procMount" for p, c in containers
             if _sc(c).get("procMount") is not None and _sc(c).get("procMount") != "Default"]
    if paths:
        return Violation("procMount", "procMount", "containers must not set securityContext.procMount other than Default", tuple(paths))
    return None


def proc_mount_baseline_1_35(meta, spec, containers, sp):
    if _user_namespaced(spec):
        return None
    return proc_mount_restricted(meta, spec, containers, sp)


SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"


def _seccomp_annotation_ok(value) -> bool:
    # Present-but-empty is not allowed: only the key's absence is.
    return value in ("runtime/default", "docker/default") or str(value).startswith("localhost/")


def seccomp_baseline_1_0(meta, spec, containers, sp):
    annotations = (meta or {}).get("annotations") or {}
    keys = [SECCOMP_POD_ANNOTATION] + [SECCOMP_CONTAINER_ANNOTATION_PREFIX + str(c.get("name", "")) for _, c in containers]
    paths = [f"metadata.annotations[{k}]" for k in keys if k in annotations and not _seccomp_annotation_ok(annotations[k])]
    if paths:
        return Violation("seccompProfile_baseline", "seccompProfile", "forbidden seccomp annotations", tuple(paths))
    return None


def _seccomp_ok(profile: dict) -> bool:
    return profile.get("type") in ("RuntimeDefault", "Localhost")


def seccomp_baseline_1_19(meta, spec, containers, sp):
    paths = []
    profile = _sc(spec).get("seccompProfile")
    if profile is not None and not _seccomp_ok(profile):
        paths.append(f"{sp}.securityContext.seccompProfile.type")
    for p, c in containers:
        profile = _sc(c).get("seccompProfile")
        if profile is not None and not _seccomp_ok(profile):
            paths.append(f"{p}.securityContext.seccompProfile.type")
    if paths:
        return Violation("seccompProfile_baseline", "seccompProfile", "securityContext.seccompProfile.type must not be Unconfined", tuple(paths))
    return None


SYSCTLS_1_0 = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
})
SYSCTLS_1_27 = SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
SYSCTLS_1_29 = SYSCTLS_1_27 | {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                               "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
SYSCTLS_1_32 = SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
SYSCTLS_1_37 = SYSCTLS_1_32 | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}


def _sysctls(allowed):
    def check(meta, spec, containers, sp):
        bad = [(i, s.get("name")) for i, s in enumerate(_sc(spec).get("sysctls") or ()) if s.get("name") not in allowed]
        if bad:
            return Violation("sysctls", "forbidden sysctls", ", ".join(str(n) for _, n in bad),
                             tuple(f"{sp}.securityContext.sysctls[{i}].name" for i, _ in bad))
        return None
    return check


sysctls_1_0, sysctls_1_27, sysctls_1_29 = _sysctls(SYSCTLS_1_0), _sysctls(SYSCTLS_1_27), _sysctls(SYSCTLS_1_29)
sysctls_1_32, sysctls_1_37 = _sysctls(SYSCTLS_1_32), _sysctls(SYSCTLS_1_37)


def host_probes_and_lifecycle_1_34(meta, spec, containers, sp):
    paths = []
    for p, c in containers:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            for handler in ("httpGet", "tcpSocket"):
                if (((c.get(probe) or {}).get(handler) or {}).get("host")):
                    paths.append(f"{p}.{probe}.{handler}.host")
        lifecycle = c.get("lifecycle") or {}
        for hook in ("postStart", "preStop"):
            for handler in ("httpGet", "tcpSocket"):
                if (((lifecycle.get(hook) or {}).get(handler) or {}).get("host")):
                    paths.append(f"{p}.lifecycle.{hook}.{handler}.host")
    if paths:
        return Violation("hostProbesAndHostLifecycle", "probe or lifecycle host", "probes and lifecycle handlers must not set host", tuple(paths))
    return None


# --- restricted ----------------------------------------------------------------

RESTRICTED_VOLUME_TYPES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected", "secret",
})


def restricted_volumes_1_0(meta, spec, containers, sp):
    paths = []
    for i, v in enumerate(spec.get("volumes") or ()):
        sources = [k for k, val in v.items() if k != "name" and val is not None]
        # A volume with no source is defaulted to emptyDir by the API server before admission.
        if not sources or any(k in RESTRICTED_VOLUME_TYPES for k in sources):
            continue
        paths.append(f"{sp}.volumes[{i}].{sources[0]}")
    if paths:
        return Violation("restrictedVolumes", "restricted volume types", "volume types outside the restricted set", tuple(paths))
    return None


def allow_privilege_escalation_1_8(meta, spec, containers, sp):
    bad = [p for p, c in containers if _sc(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        return Violation("allowPrivilegeEscalation", "allowPrivilegeEscalation != false",
                         "containers must set securityContext.allowPrivilegeEscalation=false",
                         tuple(f"{p}.securityContext.allowPrivilegeEscalation" for p in bad))
    return None


def allow_privilege_escalation_1_25(meta, spec, containers, sp):
    return None if _is_windows(spec) else allow_privilege_escalation_1_8(meta, spec, containers, sp)


def run_as_non_root_1_0(meta, spec, containers, sp):
    paths = []
    pod_value = _sc(spec).get("runAsNonRoot")
    if pod_value is False:
        paths.append(f"{sp}.securityContext.runAsNonRoot")
    for p, c in containers:
        value = _sc(c).get("runAsNonRoot")
        if value is False or (value is None and pod_value is not True):
            paths.append(f"{p}.securityContext.runAsNonRoot")
    if paths:
        return Violation("runAsNonRoot", "runAsNonRoot != true", "pod or containers must set securityContext.runAsNonRoot=true", tuple(paths))
    return None


def run_as_non_root_1_35(meta, spec, containers, sp):
    return None if _user_namespaced(spec) else run_as_non_root_1_0(meta, spec, containers, sp)


def _is_root_uid(value) -> bool:
    return value == 0 and not isinstance(value, bool)  # False == 0 in Python


def run_as_user_1_23(meta, spec, containers, sp):
    paths = []
    if _is_root_uid(_sc(spec).get("runAsUser")):
        paths.append(f"{sp}.securityContext.runAsUser")
    for p, c in containers:
        if _is_root_uid(_sc(c).get("runAsUser")):
            paths.append(f"{p}.securityContext.runAsUser")
    if paths:
        return Violation("runAsUser", "runAsUser=0", "pod and containers must not set runAsUser=0", tuple(paths))
    return None


def run_as_user_1_35(meta, spec, containers, sp):
    return None if _user_namespaced(spec) else run_as_user_1_23(meta, spec, containers, sp)


def seccomp_restricted_1_19(meta, spec, containers, sp):
    paths = []
    profile = _sc(spec).get("seccompProfile")
    pod_ok = False
    if profile is not None:
        if _seccomp_ok(profile):
            pod_ok = True
        else:
            paths.append(f"{sp}.securityContext.seccompProfile.type")
    for p, c in containers:
        profile = _sc(c).get("seccompProfile")
        if (profile is not None and not _seccomp_ok(profile)) or (profile is None and not pod_ok):
            paths.append(f"{p}.securityContext.seccompProfile.type")
    if paths:
        return Violation("seccompProfile_restricted", "seccompProfile",
                         'pod or containers must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"', tuple(paths))
    return None


def seccomp_restricted_1_25(meta, spec, containers, sp):
    return None if _is_windows(spec) else seccomp_restricted_1_19(meta, spec, containers, sp)


def capabilities_restricted_1_22(meta, spec, containers, sp):
    paths = []
    for p, c in containers:
        caps = _sc(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or ()):
            paths.append(f"{p}.securityContext.capabilities.drop")
        for i, cap in enumerate(caps.get("add") or ()):
            if cap != "NET_BIND_SERVICE":
                paths.append(f"{p}.securityContext.capabilities.add[{i}]")
    if paths:
        return Violation("capabilities_restricted", "unrestricted capabilities",
                         'containers must set securityContext.capabilities.drop=["ALL"] and add at most NET_BIND_SERVICE', tuple(paths))
    return None


def capabilities_restricted_1_25(meta, spec, containers, sp):
    return None if _is_windows(spec) else capabilities_restricted_1_22(meta, spec, containers, sp)
