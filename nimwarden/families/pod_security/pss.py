"""Pod Security Standards evaluator (baseline and restricted), versioned like upstream.

Mirrors the registry of ``k8s.io/pod-security-admission``: every check has
revisions keyed by the minimum policy version they apply from; a policy
version selects, per check, the newest revision at or below it; restricted is
every baseline check, minus those a restricted revision overrides, plus the
restricted checks. ``latest`` and any version newer than the newest revision
resolve to :data:`MAX_VERSION` (upstream clamps the same way).

Reference: kubernetes/kubernetes ``staging/src/k8s.io/pod-security-admission/policy``
(checks up to the v1.37 sysctl revision). The check functions live in
:mod:`nimwarden.families.pod_security.pss_checks`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache

from nimwarden.families.pod_security import pss_checks as c
from nimwarden.families.pod_security.pss_checks import Violation
from nimwarden.k8s.workloads import containers_of

LEVELS = ("privileged", "baseline", "restricted")
MAX_VERSION = (1, 37)
POLICY_SOURCE = "k8s.io/pod-security-admission policy (kubernetes/kubernetes), revisions through v1.37"

# check id -> (level, [(minimum version, function, overridden baseline check ids)])
REGISTRY: dict[str, tuple[str, list[tuple[tuple[int, int], object, tuple[str, ...]]]]] = {
    "windowsHostProcess": ("baseline", [((1, 0), c.host_process_1_0, ())]),
    "hostNamespaces": ("baseline", [((1, 0), c.host_namespaces_1_0, ())]),
    "privileged": ("baseline", [((1, 0), c.privileged_1_0, ())]),
    "capabilities_baseline": ("baseline", [((1, 0), c.capabilities_baseline_1_0, ())]),
    "hostPathVolumes": ("baseline", [((1, 0), c.host_path_volumes_1_0, ())]),
    "hostPorts": ("baseline", [((1, 0), c.host_ports_1_0, ())]),
    "appArmorProfile": ("baseline", [((1, 0), c.app_armor_profile_1_0, ())]),
    "seLinuxOptions": ("baseline", [((1, 0), c.se_linux_options_1_0, ()), ((1, 31), c.se_linux_options_1_31, ())]),
    "procMount": ("baseline", [((1, 0), c.proc_mount_restricted, ()), ((1, 35), c.proc_mount_baseline_1_35, ())]),
    "seccompProfile_baseline": ("baseline", [((1, 0), c.seccomp_baseline_1_0, ()), ((1, 19), c.seccomp_baseline_1_19, ())]),
    "sysctls": ("baseline", [((1, 0), c.sysctls_1_0, ()), ((1, 27), c.sysctls_1_27, ()), ((1, 29), c.sysctls_1_29, ()),
                             ((1, 32), c.sysctls_1_32, ()), ((1, 37), c.sysctls_1_37, ())]),
    "hostProbesAndHostLifecycle": ("baseline", [((1, 34), c.host_probes_and_lifecycle_1_34, ())]),
    "restrictedVolumes": ("restricted", [((1, 0), c.restricted_volumes_1_0, ("hostPathVolumes",))]),
    "allowPrivilegeEscalation": ("restricted", [((1, 8), c.allow_privilege_escalation_1_8, ()),
                                                ((1, 25), c.allow_privilege_escalation_1_25, ())]),
    "runAsNonRoot": ("restricted", [((1, 0), c.run_as_non_root_1_0, ()), ((1, 35), c.run_as_non_root_1_35, ())]),
    "runAsUser": ("restricted", [((1, 23), c.run_as_user_1_23, ()), ((1, 35), c.run_as_user_1_35, ())]),
    "seccompProfile_restricted": ("restricted", [((1, 19), c.seccomp_restricted_1_19, ("seccompProfile_baseline",)),
                                                 ((1, 25), c.seccomp_restricted_1_25, ("seccompProfile_baseline",))]),
    "capabilities_restricted": ("restricted", [((1, 22), c.capabilities_restricted_1_22, ("capabilities_baseline",)),
                                               ((1, 25), c.capabilities_restricted_1_25, ("capabilities_baseline",))]),
    "procMount_restricted": ("restricted", [((1, 35), c.proc_mount_restricted, ("procMount",))]),
}

_VERSION = re.compile(r"^v?(\d+)\.(\d+)$")


def parse_version(text: str) -> tuple[int, int]:
    """``"latest"``, ``"v1.30"`` or ``"1.30"`` -> the policy version that applies, clamped like upstream."""
    text = str(text).strip()
    if text == "latest":
        return MAX_VERSION
    m = _VERSION.match(text)
    if not m or int(m.group(1)) != 1:
        raise ValueError(f"PSS version must be 'latest' or 'v1.N', not {text!r}")
    version = (1, int(m.group(2)))
    return min(version, MAX_VERSION)


def version_label(version: tuple[int, int]) -> str:
    return f"v{version[0]}.{version[1]}"


@cache
def checks_for(level: str, version: tuple[int, int]) -> tuple[tuple[str, object], ...]:
    """The (check id, function) pairs in force for a level at a (resolved) policy version."""
    if level not in LEVELS:
        raise ValueError(f"PSS level must be one of {', '.join(LEVELS)}, not {level!r}")
    if level == "privileged":
        return ()
    chosen: dict[str, tuple[object, tuple[str, ...]]] = {}
    for check_id, (check_level, revisions) in REGISTRY.items():
        if check_level == "restricted" and level != "restricted":
            continue
        applicable = [r for r in revisions if r[0] <= version]
        if applicable:
            _, fn, overrides = max(applicable, key=lambda r: r[0])
            chosen[check_id] = (fn, overrides)
    overridden = {o for _, overrides in chosen.values() for o in overrides}
    return tuple((cid, fn) for cid, (fn, _) in chosen.items() if cid not in overridden)


@dataclass(frozen=True)
class PSSResult:
    level: str
    version: str  # resolved policy version, e.g. "v1.37"
    violations: tuple[Violation, ...]

    @property
    def allowed(self) -> bool:
        return not self.violations

    def checks_failed(self) -> tuple[str, ...]:
        return tuple(v.check for v in self.violations)


def evaluate_pod_spec(metadata: dict | None, spec: dict, level: str = "restricted", version: str = "latest",
                      spec_path: str = "spec") -> PSSResult:
    """Evaluate one pod (its metadata and spec) against a level at a policy version.

    ``spec_path`` is where the pod spec sits in the object reported on
    (``spec.template.spec`` for a Deployment) so that violation paths point
    into the object the user wrote.
    """
    resolved = parse_version(version)
    checks = checks_for(level, resolved)
    if not isinstance(spec, dict):
        raise ValueError("a pod spec must be a mapping")
    containers = containers_of(spec, spec_path)
    meta = metadata or {}
    violations = []
    for check_id, fn in checks:
        v = fn(meta, spec, containers, spec_path)
        if v is not None:
            # One function can serve two checks (procMount / procMount_restricted): report the registry's ID.
            violations.append(v if v.check == check_id else replace(v, check=check_id))
    return PSSResult(level, version_label(resolved), tuple(violations))


def evaluate_pod(pod: dict, level: str = "restricted", version: str = "latest") -> PSSResult:
    """Evaluate a Pod object (``{"metadata": …, "spec": …}``)."""
    return evaluate_pod_spec(pod.get("metadata"), pod.get("spec") or {}, level, version)
