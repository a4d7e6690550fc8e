"""PSS evaluator behaviour beyond the upstream fixtures: versions, paths, inventory."""

from __future__ import annotations

import pytest

from nimwarden.families.pod_security.pss import (
    MAX_VERSION,
    checks_for,
    evaluate_pod,
    evaluate_pod_spec,
    parse_version,
)

RESTRICTED_SPEC = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [{"name": "nim", "image": "nvcr.io/nim/x:1",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
}

# Transcribed independently from the upstream check inventory (policy/check_*.go MinimumVersions):
# which checks are in force per level at a few pivotal versions.
INVENTORY = {
    ("baseline", (1, 0)): {"windowsHostProcess", "hostNamespaces", "privileged", "capabilities_baseline", "hostPathVolumes",
                           "hostPorts", "appArmorProfile", "seLinuxOptions", "procMount", "seccompProfile_baseline", "sysctls"},
    ("baseline", (1, 34)): {"windowsHostProcess", "hostNamespaces", "privileged", "capabilities_baseline", "hostPathVolumes",
                            "hostPorts", "appArmorProfile", "seLinuxOptions", "procMount", "seccompProfile_baseline", "sysctls",
                            "hostProbesAndHostLifecycle"},
    ("restricted", (1, 0)): {"windowsHostProcess", "hostNamespaces", "privileged", "capabilities_baseline", "hostPorts",
                             "appArmorProfile", "seLinuxOptions", "procMount", "seccompProfile_baseline", "sysctls",
                             "restrictedVolumes", "runAsNonRoot"},
    ("restricted", (1, 22)): {"windowsHostProcess", "hostNamespaces", "privileged", "hostPorts", "appArmorProfile",
                              "seLinuxOptions", "procMount", "sysctls", "restrictedVolumes", "allowPrivilegeEscalation",
                              "runAsNonRoot", "seccompProfile_restricted", "capabilities_restricted"},
    ("restricted", (1, 35)): {"windowsHostProcess", "hostNamespaces", "privileged", "hostPorts", "appArmorProfile",
                              "seLinuxOptions", "sysctls", "hostProbesAndHostLifecycle", "restrictedVolumes",
                              "allowPrivilegeEscalation", "runAsNonRoot", "runAsUser", "seccompProfile_restricted",
                              "capabilities_restricted", "procMount_restricted"},
}


@pytest.mark.parametrize(("key", "expected"), INVENTORY.items(), ids=[f"{k[0]}-v1.{k[1][1]}" for k in INVENTORY])
def test_checks_in_force_match_upstream_inventory(key, expected):
    assert {cid for cid, _ in checks_for(*key)} == expected


@pytest.mark.parametrize(("text", "expected"), [("latest", MAX_VERSION), ("v1.30", (1, 30)), ("1.25", (1, 25)),
                                                ("v1.99", MAX_VERSION), ("v1.0", (1, 0))])
def test_version_parsing_and_clamping(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["v2.1", "1", "latest-ish", "", "v1.x"])
def test_bad_version_is_rejected(text):
    with pytest.raises(ValueError):
        parse_version(text)


def test_unknown_level_is_rejected():
    with pytest.raises(ValueError):
        evaluate_pod({"spec": RESTRICTED_SPEC}, "strict")


def test_privileged_level_allows_everything():
    pod = {"spec": {"hostNetwork": True, "containers": [{"name": "c", "securityContext": {"privileged": True}}]}}
    assert evaluate_pod(pod, "privileged").allowed
    assert not evaluate_pod(pod, "baseline").allowed


def test_restricted_pod_passes_and_reports_resolved_version():
    result = evaluate_pod({"spec": RESTRICTED_SPEC}, "restricted", "latest")
    assert result.allowed
    assert result.version == f"v1.{MAX_VERSION[1]}"


def test_paths_point_into_the_workload_template():
    spec = {"containers": [{"name": "nim", "securityContext": {"privileged": True}}]}
    result = evaluate_pod_spec({}, spec, "baseline", "latest", spec_path="spec.template.spec")
    assert result.violations[0].paths == ("spec.template.spec.containers[0].securityContext.privileged",)


def test_container_field_overrides_pod_field_for_runasnonroot():
    spec = dict(RESTRICTED_SPEC, containers=[dict(RESTRICTED_SPEC["containers"][0],
                                                  securityContext=dict(RESTRICTED_SPEC["containers"][0]["securityContext"], runAsNonRoot=False))])
    result = evaluate_pod_spec({}, spec, "restricted", "latest")
    assert result.checks_failed() == ("runAsNonRoot",)
    assert result.violations[0].paths == ("spec.containers[0].securityContext.runAsNonRoot",)


def test_ephemeral_container_is_judged():
    spec = dict(RESTRICTED_SPEC, ephemeralContainers=[{"name": "debug", "image": "busybox"}])
    result = evaluate_pod_spec({}, spec, "restricted", "latest")
    assert not result.allowed
    assert any(p.startswith("spec.ephemeralContainers[0]") for v in result.violations for p in v.paths)


def test_null_values_count_as_unset():
    spec = {"securityContext": None, "volumes": [{"name": "v", "hostPath": None, "emptyDir": {}}],
            "containers": [{"name": "c", "securityContext": {"privileged": None, "capabilities": None}}]}
    assert evaluate_pod_spec(None, spec, "baseline", "latest").allowed
