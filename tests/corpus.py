"""The real-world chart corpus (tests/fixtures/charts): per object, per control, the verdict
nimwarden's judges give, in the form the cases' expected.yaml files write them.

Each case is ``<case>/manifests/`` (the files as ``helm template`` / ``kubectl apply`` sees them),
``SOURCE.md`` and ``expected.yaml``: the namespace ``-n`` would give, and the expected verdict
(pass / fail / not_applicable) per control per object. Pod controls judge each object's pod
template alone; RBAC, exposure and route controls judge the case's whole state and give each
object the verdict of the findings that name it (an object in the judged set without a finding
passes; one outside it is not_applicable).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from nimwarden.families.gateway import k8s_judge as gateway
from nimwarden.families.pod_security import judge as pod
from nimwarden.families.ports import k8s_judge as ports
from nimwarden.families.rbac import judge as rbac
from nimwarden.families.secrets import judge as secrets
from nimwarden.families.tls import k8s_judge as tls
from nimwarden.k8s.manifests import load_manifests
from nimwarden.k8s.model import ClusterState
from nimwarden.k8s.workloads import pod_templates

CHARTS = Path(__file__).resolve().parent / "fixtures" / "charts"
POD_CONTROLS = {
    "POD-NONROOT-001": pod.non_root, "POD-PRIVESC-001": pod.no_privilege_escalation, "POD-CAPS-001": pod.capabilities,
    "POD-ROROOT-001": pod.read_only_root, "POD-SECCOMP-001": pod.seccomp, "POD-HOSTPATH-001": pod.no_host_path,
    "SECRETS-LITERAL-001": secrets.literal_secrets,
}
CONTROLS = (*POD_CONTROLS, "SECRETS-PULL-001", "RBAC-SECRETS-001", "RBAC-WILDCARD-001", "PORTS-K8SEXPOSE-001",
            "TLS-K8SROUTE-001", "GATEWAY-K8SROOT-001")


def cases() -> list[str]:
    return sorted(p.name for p in CHARTS.iterdir() if (p / "expected.yaml").is_file())


def expected(case: str) -> dict[str, Any]:
    return yaml.safe_load((CHARTS / case / "expected.yaml").read_text(encoding="utf-8"))


def load(case: str) -> ClusterState:
    return load_manifests([(CHARTS / case / "manifests", expected(case).get("namespace"))])


def ref_of(ref: str) -> str:
    """expected.yaml writes cluster-scoped objects Kind/-/name; the object model writes Kind/name."""
    kind, _, rest = ref.partition("/")
    ns, _, name = rest.partition("/")
    return f"{kind}/{name}" if ns == "-" else ref


def _by_object(outcome, judged: list[str]) -> dict[str, str]:
    status = outcome.status.value
    if status == "error":
        return {ref: "error" for ref in judged}
    failing = {loc["object"] for loc in outcome.evidence.get("locations") or ()}
    return {ref: "fail" if ref in failing else "pass" for ref in judged} | {ref: "fail" for ref in failing}


def verdicts(state: ClusterState) -> dict[str, dict[str, str]]:
    """{object ref: {control: verdict}} for every object some control judges."""
    templates = pod_templates(state)
    out: dict[str, dict[str, str]] = {}
    for tpl in templates:
        row = out.setdefault(tpl.ref, {})
        for control, judge in POD_CONTROLS.items():
            row[control] = judge([tpl]).status.value
        row["SECRETS-PULL-001"] = secrets.pull_secrets(state, [tpl]).status.value
    roles = [r.ref for r in state.of_kind("ClusterRole") + state.of_kind("Role")]
    if roles:
        secret_reads = _by_object(rbac.secrets_cluster_wide(state, templates), roles)
        bound = _by_object(rbac.wildcards(state, templates), roles)
        unbound = _by_object(rbac.unaudited_roles(state, templates), roles)
        for ref in roles:
            row = out.setdefault(ref, {})
            row["RBAC-SECRETS-001"] = secret_reads.get(ref, "pass")
            row["RBAC-WILDCARD-001"] = "fail" if "fail" in (bound.get(ref), unbound.get(ref)) else "pass"
    exposure = ports.services(state, templates)
    if exposure.status.value != "not_applicable":
        for ref, verdict in _by_object(exposure, [str(o) for o in exposure.evidence.get("objects") or ()]).items():
            out.setdefault(ref, {})["PORTS-K8SEXPOSE-001"] = verdict
    for control, judge in (("TLS-K8SROUTE-001", tls.ingress_tls), ("GATEWAY-K8SROOT-001", gateway.root_path)):
        result = judge(state, templates)
        if result.status.value == "not_applicable":
            continue
        for ref, verdict in _by_object(result, [str(o) for o in result.evidence.get("objects") or ()]).items():
            out.setdefault(ref, {})[control] = verdict
    return out


def expected_verdicts(case: str) -> dict[str, dict[str, str]]:
    """{object ref: {control: verdict}} as the case's expected.yaml writes them (not_applicable left out)."""
    doc = expected(case)
    out: dict[str, dict[str, str]] = {}
    for obj in doc.get("objects") or ():
        row = {c: v["verdict"] for c, v in (obj.get("controls") or {}).items() if v["verdict"] != "not_applicable"}
        out[ref_of(obj["ref"])] = row
    for ref, derived in (doc.get("derived_from_operator") or {}).items():
        out[ref_of(ref)] = {c: v for c, v in (derived.get("controls") or {}).items() if v != "not_applicable"}
    return out


def agreement(cases_: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Per control: objects where nimwarden and expected.yaml agree / disagree (pass, fail or not applicable)."""
    table = {c: {"agree": 0, "disagree": 0} for c in CONTROLS}
    for case in cases_ or [c for c in cases() if not expected(c).get("bad_input")]:
        got, want = verdicts(load(case)), expected_verdicts(case)
        for ref in set(got) | set(want):
            for control in CONTROLS:
                g = got.get(ref, {}).get(control, "not_applicable")
                w = want.get(ref, {}).get(control, "not_applicable")
                table[control]["agree" if g == w else "disagree"] += 1
    return table


def differences(case: str) -> list[str]:
    got, want = verdicts(load(case)), expected_verdicts(case)
    out = []
    for ref in sorted(set(got) | set(want)):
        for control in CONTROLS:
            g: Any = got.get(ref, {}).get(control, "not_applicable")
            w: Any = want.get(ref, {}).get(control, "not_applicable")
            if g != w:
                out.append(f"{ref} {control}: nimwarden {g}, expected {w}")
    return out


def summarize(table: Mapping[str, Mapping[str, int]]) -> str:
    return "\n".join(f"{c:22} {v['agree']:4} agree {v['disagree']:3} disagree" for c, v in table.items())


# The whole corpus as one manifests-only target (no scope, no endpoints): one path entry per case, each
# with its own -n (cases that share a namespace in expected.yaml get one of their own here, so that two
# charts installed side by side do not define the same object twice), and a deployment per case that
# has a workload, selected the way its chart labels it.
AUDIT = {  # case: (namespace, selector of the deployment; None: objects only, judged target-wide)
    "nim-deploy-kserve": ("nim-kserve", {"serving.kserve.io/inferenceservice": "llama3-8b-instruct-1xgpu"}),
    "nim-llm-default": ("nim", {"app.kubernetes.io/name": "nim-llm", "app.kubernetes.io/instance": "my-nim"}),
    "nim-llm-hostpath-ingress": ("nim-hostpath", {"app.kubernetes.io/name": "nim-llm", "app.kubernetes.io/instance": "my-nim"}),
    "nim-operator-chart": ("nim-operator", {"app.kubernetes.io/name": "k8s-nim-operator", "control-plane": "controller-manager"}),
    "nim-operator-networkpolicy": ("system", None),
    "nim-operator-sample-nemo": ("nemo", {"app.kubernetes.io/managed-by": "k8s-nim-operator"}),  # the five NeMo CRs' pods
    "nim-operator-sample-nimpipeline": ("nim-pipeline", {"app.kubernetes.io/name": "meta-llama3-8b-instruct"}),
    "nim-operator-sample-nimservice": ("nim-service", {"app.kubernetes.io/name": "meta-llama3-8b-instruct"}),
    "nim-operator-wildcard-clusterrole": ("default", None),
    "triton-aws": ("triton-aws", {"app": "triton-inference-server", "release": "triton"}),
    "triton-gke-marketplace": ("triton", {"app": "triton-inference-server", "release": "triton"}),
    "triton-k8s-onprem": ("triton", {"app": "triton-inference-server", "release": "triton"}),
}


# a second workload of a chart, audited as a deployment of its own: the Traefik subchart of k8s-onprem
EXTRA = {"triton-k8s-onprem-traefik": ("triton", {"app.kubernetes.io/name": "traefik"})}


def audit_profile(directory: Path, charts: Path = CHARTS) -> Path:
    """Write the corpus target profile into ``directory`` and return its path."""
    kinds = {"triton": "triton", "nim-operator-sample-nemo": "nemo"}
    deployments = [{"name": case, "kind": next((k for p, k in kinds.items() if case.startswith(p)), "nim"), "expect": "noncompliant",
                    "kubernetes": {"namespace": ns, "selector": selector}}
                   for case, (ns, selector) in {**AUDIT, **EXTRA}.items() if selector is not None]
    profile = {"name": "chart-corpus", "deployments": deployments,
               "kubernetes": {"source": "manifests", "pss_level": "restricted",
                              "paths": [{"path": str(charts / case / "manifests"), "namespace": ns} for case, (ns, _) in AUDIT.items()]}}
    path = Path(directory) / "chart-corpus.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False), encoding="utf-8")
    return path


def one_pod_profile(directory: Path) -> Path:
    """A manifests-only profile of one deployment, one Pod (``directory/m/pod.yaml``), written into ``directory``:
    the smallest offline audit."""
    m = Path(directory) / "m"
    m.mkdir(exist_ok=True)
    (m / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: team-a, labels: {app: a}}\n"
                                "spec:\n  containers:\n  - {name: main, image: 'nvcr.io/nim/x:1.0'}\n", encoding="utf-8")
    profile = Path(directory) / "profile.yaml"
    profile.write_text(yaml.safe_dump({"name": "t", "kubernetes": {"source": "manifests", "paths": [str(m)]},
                                       "deployments": [{"name": "a", "kind": "nim", "expect": "noncompliant",
                                                        "kubernetes": {"namespace": "team-a", "selector": {"app": "a"}}}]}))
    return profile
