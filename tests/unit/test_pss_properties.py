"""Properties of the PSS evaluator over generated pods: restricted implies baseline, and no crash on odd shapes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nimwarden.families.pod_security.pss import MAX_VERSION, evaluate_pod_spec

BOOL = st.one_of(st.none(), st.booleans())
CAPS = st.lists(st.sampled_from(["ALL", "all", "NET_BIND_SERVICE", "CHOWN", "SYS_ADMIN", "NET_RAW", "net_bind_service"]), max_size=3)
SECCOMP = st.one_of(st.none(), st.fixed_dictionaries({"type": st.sampled_from(["RuntimeDefault", "Localhost", "Unconfined", ""])}))
UID = st.one_of(st.none(), st.sampled_from([0, 1000, 65534]))

container_sc = st.fixed_dictionaries({}, optional={
    "privileged": BOOL, "allowPrivilegeEscalation": BOOL, "runAsNonRoot": BOOL, "runAsUser": UID,
    "readOnlyRootFilesystem": BOOL, "seccompProfile": SECCOMP,
    "capabilities": st.fixed_dictionaries({}, optional={"add": CAPS, "drop": CAPS}),
    "procMount": st.sampled_from(["Default", "Unmasked"]),
    "seLinuxOptions": st.fixed_dictionaries({}, optional={"type": st.sampled_from(["container_t", "spc_t", ""]), "user": st.sampled_from(["", "u"])}),
    "appArmorProfile": st.fixed_dictionaries({"type": st.sampled_from(["RuntimeDefault", "Unconfined", "Localhost"])}),
})
container = st.fixed_dictionaries({"name": st.sampled_from(["a", "b", "c"])}, optional={
    "securityContext": st.one_of(st.none(), container_sc),
    "ports": st.lists(st.fixed_dictionaries({"containerPort": st.just(8000)}, optional={"hostPort": st.sampled_from([0, 8000])}), max_size=2),
})
pod_spec = st.fixed_dictionaries({"containers": st.lists(container, min_size=1, max_size=2)}, optional={
    "initContainers": st.lists(container, max_size=1),
    "ephemeralContainers": st.lists(container, max_size=1),
    "hostNetwork": BOOL, "hostPID": BOOL, "hostUsers": BOOL,
    "os": st.fixed_dictionaries({"name": st.sampled_from(["linux", "windows"])}),
    "securityContext": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "runAsNonRoot": BOOL, "runAsUser": UID, "seccompProfile": SECCOMP,
        "sysctls": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["kernel.shm_rmid_forced", "kernel.msgmax"]), "value": st.just("1")}), max_size=2),
    })),
    "volumes": st.lists(st.sampled_from([{"name": "e", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/x"}}, {"name": "n", "nfs": {"server": "s", "path": "/"}}]), max_size=2),
})
VERSIONS = st.sampled_from(["v1.0", "v1.8", "v1.19", "v1.22", "v1.25", "v1.31", "v1.34", "v1.35", f"v1.{MAX_VERSION[1]}", "latest"])


@settings(max_examples=400, deadline=None)
@given(spec=pod_spec, version=VERSIONS)
def test_restricted_allowed_implies_baseline_allowed(spec, version):
    restricted = evaluate_pod_spec({}, spec, "restricted", version)
    baseline = evaluate_pod_spec({}, spec, "baseline", version)
    # Upstream's quirk, kept: restricted's seccomp and capabilities checks replace baseline's and exempt
    # Windows pods (v1.25+), so a Windows pod with seccomp Unconfined or capabilities.add ["ALL"] passes
    # restricted and fails baseline.
    replaced_for_windows = {"seccompProfile_baseline", "capabilities_baseline"}
    windows_quirk = (spec.get("os") or {}).get("name") == "windows" and {v.check for v in baseline.violations} <= replaced_for_windows
    if restricted.allowed and not windows_quirk:
        assert baseline.allowed, baseline.violations
    # every baseline violation is also a restricted one, unless a restricted check replaced it
    replaced = {"capabilities_baseline", "seccompProfile_baseline", "hostPathVolumes", "procMount"}
    assert {v.check for v in baseline.violations} - replaced <= {v.check for v in restricted.violations}
    assert evaluate_pod_spec({}, spec, "privileged", version).allowed
