"""RBAC judges (family rbac): what the service accounts of the NIM pods may do.

Resolves Role/ClusterRole bindings (ServiceAccount, ``system:serviceaccount:ns:name`` user, and
the ``system:serviceaccounts[:ns]`` / ``system:authenticated`` groups) to the rules granted, then
judges them: wildcards, cluster-wide secret reads, pods/exec, escalate/bind/impersonate,
cluster-admin, and token automounting. A binding to a role that is not in the cluster state (and
not a built-in) makes the control ``error``: an unknown grant is never assumed harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from nimwarden.k8s.findings import Finding, needs, verdict_from, worst
from nimwarden.k8s.model import ClusterState, K8sObject
from nimwarden.k8s.workloads import PodTemplate
from nimwarden.outcome import Outcome, errored, not_applicable, passed

RBAC_KINDS = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
READ = frozenset({"get", "list", "watch", "*"})
_SECRETS_RW = ["get", "list", "watch", "create", "update", "patch", "delete"]
# Built-in ClusterRoles a manifest set binds to without defining (simplified to what these controls judge).
BUILTIN_CLUSTER_ROLES: Mapping[str, list[dict]] = {
    "cluster-admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}],
    "admin": [{"apiGroups": [""], "resources": ["secrets"], "verbs": _SECRETS_RW},
              {"apiGroups": [""], "resources": ["pods/exec", "pods/attach"], "verbs": ["create", "get"]},
              {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}],
    "edit": [{"apiGroups": [""], "resources": ["secrets"], "verbs": _SECRETS_RW},
             {"apiGroups": [""], "resources": ["pods/exec", "pods/attach"], "verbs": ["create", "get"]},
             {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}],
    "view": [{"apiGroups": [""], "resources": ["pods", "configmaps", "services"], "verbs": ["get", "list", "watch"]}],
}
NEEDS_API_ANNOTATION = "nimwarden.io/needs-kubernetes-api"


@dataclass(frozen=True)
class Grant:
    subject: str  # ServiceAccount/ns/name
    binding: str  # RoleBinding/ns/name
    role: str  # ClusterRole/name or Role/ns/name
    rule_index: int
    rule: Mapping
    cluster_wide: bool

    def where(self, field: str) -> str:
        """The offending field, in the role that grants it (the object a finding names)."""
        return f"rules[{self.rule_index}].{field}"

    def finding(self, problem: str, field: str, severity: str | None) -> Finding:
        return Finding(self.role, f"{problem} (granted to {self.subject} via {self.binding})", self.where(field), severity=severity)


def service_accounts(templates: Sequence[PodTemplate]) -> list[tuple[str, str]]:
    return sorted({(t.owner.namespace or "default", t.spec.get("serviceAccountName") or "default") for t in templates})


def _subject_matches(subject: Mapping, binding: K8sObject, ns: str, name: str) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        return subject.get("name") == name and (subject.get("namespace") or binding.namespace) == ns
    if kind == "User":
        return subject.get("name") == f"system:serviceaccount:{ns}:{name}"
    if kind == "Group":
        return subject.get("name") in ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated")
    return False


def _cluster_role_rules(state: ClusterState, role: K8sObject) -> list:
    """A ClusterRole's rules; for an aggregated one (rules filled in by the controller) the rules of the roles it selects."""
    rules = list(role.body.get("rules") or [])
    selectors = (role.body.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    for sel in selectors:
        labels = sel.get("matchLabels") or {}
        for other in state.of_kind("ClusterRole"):
            if other.name != role.name and labels and all(other.labels.get(k) == v for k, v in labels.items()):
                rules.extend(other.body.get("rules") or [])
    return rules


def _by_subject(state: ClusterState) -> tuple[dict[tuple[str, str], list[tuple[int, K8sObject]]], list[tuple[int, K8sObject]]]:
    """The bindings that may name each service account ((namespace, name): its ServiceAccount and
    ``system:serviceaccount:`` User subjects), and those with Group subjects (they may name any): built
    once per state, so that each account's grants are not a scan of every binding in the cluster."""
    named: dict[tuple[str, str], list[tuple[int, K8sObject]]] = {}
    groups: list[tuple[int, K8sObject]] = []
    for position, b in enumerate(state.of_kind("RoleBinding") + state.of_kind("ClusterRoleBinding")):
        keys = set()
        for s in b.body.get("subjects") or ():
            if not isinstance(s, Mapping):
                continue
            kind, sname = s.get("kind"), str(s.get("name") or "")
            if kind == "ServiceAccount":
                keys.add((str(s.get("namespace") or b.namespace), sname))
            elif kind == "User" and sname.startswith("system:serviceaccount:"):
                keys.add(tuple(sname.split(":", 3)[2:4]) if sname.count(":") >= 3 else ("", ""))
            elif kind == "Group":
                groups.append((position, b))
        for key in keys:
            named.setdefault(key, []).append((position, b))
    return named, groups


def grants(state: ClusterState, ns: str, name: str) -> tuple[list[Grant], list[str]]:
    """Every rule granted to a service account, and the role references that could not be resolved."""
    out, unresolved = [], []
    subject = f"ServiceAccount/{ns}/{name}"
    named, groups = state.memo("rbac.bindings-by-subject", lambda: _by_subject(state))
    candidates = sorted({position: b for position, b in (*named.get((ns, name), ()), *groups)}.items(), key=lambda pb: pb[0])
    for _position, b in candidates:  # in the state's order, as a scan of every binding would meet them
        if not any(_subject_matches(s, b, ns, name) for s in b.body.get("subjects") or ()):
            continue
        ref = b.body.get("roleRef") or {}
        kind, rname = ref.get("kind"), ref.get("name")
        role = state.get("Role", b.namespace, rname) if kind == "Role" else state.get("ClusterRole", None, rname)
        if role is not None:
            rules = _cluster_role_rules(state, role) if role.kind == "ClusterRole" else role.body.get("rules") or []
            role_ref = role.ref
        elif kind == "ClusterRole" and rname in BUILTIN_CLUSTER_ROLES:
            rules, role_ref = BUILTIN_CLUSTER_ROLES[rname], f"ClusterRole/{rname} (built-in)"
        else:
            unresolved.append(f"{b.ref} → {kind}/{rname}")
            continue
        cluster_wide = b.kind == "ClusterRoleBinding"
        out.extend(Grant(subject, b.ref, role_ref, i, r, cluster_wide) for i, r in enumerate(rules))
    return out, unresolved


def _judge(state: ClusterState, templates: Sequence[PodTemplate], what: str, ok: str, check) -> Outcome:
    blocked = needs(state, *RBAC_KINDS)
    if blocked:
        return blocked
    findings, subjects = [], []
    for ns, name in service_accounts(templates):
        found, unresolved = grants(state, ns, name)
        if unresolved:
            return errored(f"cannot evaluate ServiceAccount/{ns}/{name}: bound role(s) not in the cluster state: {', '.join(unresolved)}",
                           source=state.source)
        subjects.append(f"ServiceAccount/{ns}/{name}")
        for g in found:
            for problem, field, severity in check(g):
                findings.append(g.finding(problem, field, severity))
    return verdict_from(findings, what=what, subjects=subjects, ok=ok)


def _has(values, *wanted) -> bool:
    values = values or ()
    return any(w in values for w in wanted)


def _wildcard_rule(rule: Mapping):
    if _has(rule.get("verbs"), "*"):
        yield "wildcard verbs", "verbs", "high"
    if _has(rule.get("resources"), "*"):
        yield "wildcard resources", "resources", "high"
    if _has(rule.get("nonResourceURLs"), "*"):
        yield "wildcard non-resource URLs", "nonResourceURLs", "medium"


def _escalating_rule(rule: Mapping):
    verbs = set(rule.get("verbs") or ())
    for verb in ("escalate", "bind", "impersonate"):
        if verb in verbs or "*" in verbs:
            yield f"verb {verb} granted" + (" (via *)" if verb not in verbs else ""), "verbs", "critical"


def wildcards(state, templates) -> Outcome:
    return _judge(state, templates, "wildcard RBAC grant", "no wildcard verbs or resources granted", lambda g: _wildcard_rule(g.rule))


def _covers(rule: Mapping, group: str, resource: str) -> bool:
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    base = resource.split("/")[0]
    return (group in groups or "*" in groups) and (resource in resources or "*" in resources or f"{base}/*" in resources)


def secrets_cluster_wide(state, templates) -> Outcome:
    def check(g: Grant):
        if g.cluster_wide and _covers(g.rule, "", "secrets") and READ & set(g.rule.get("verbs") or ()) \
                and not g.rule.get("resourceNames"):
            yield f"reads secrets in every namespace ({', '.join(sorted(READ & set(g.rule['verbs'])))})", "verbs", "critical"
    return _judge(state, templates, "cluster-wide read access to secrets", "no cluster-wide read access to secrets", check)


def pod_exec(state, templates) -> Outcome:
    def check(g: Grant):
        for sub in ("pods/exec", "pods/attach"):
            if _covers(g.rule, "", sub) and _has(g.rule.get("verbs"), "create", "get", "*"):
                yield f"may {sub.split('/')[1]} into pods", "resources", "high"
    return _judge(state, templates, "pods/exec granted", "no pods/exec or pods/attach", check)


def escalation_verbs(state, templates) -> Outcome:
    return _judge(state, templates, "privilege-escalation verb granted", "no escalate, bind or impersonate",
                  lambda g: _escalating_rule(g.rule))


def unaudited_roles(state: ClusterState, templates: Sequence[PodTemplate]) -> Outcome:
    """Target-wide: the Roles and ClusterRoles that no audited workload's service account is bound to
    (unbound helper roles, roles of other tenants) grant no wildcard and no escalate/bind/impersonate:
    whoever is bound to them later gets everything. Roles bound to an audited account are judged
    with that deployment (RBAC-WILDCARD-001, RBAC-ESCALATE-001)."""
    blocked = needs(state, *RBAC_KINDS)
    if blocked:
        return blocked
    audited = set()
    for ns, name in service_accounts(templates):
        found, _unresolved = grants(state, ns, name)
        audited |= {g.role for g in found}
    findings, judged, defaults = [], [], []
    for role in state.of_kind("ClusterRole") + state.of_kind("Role"):
        if role.ref in audited:
            continue
        if kubernetes_default_role(role):
            defaults.append(role.ref)
            continue
        judged.append(role.ref)
        bound = _bindings_of(state, role)
        how = f"bound by {', '.join(bound)} to no audited workload" if bound else "bound to nothing"
        rules = _cluster_role_rules(state, role) if role.kind == "ClusterRole" else role.body.get("rules") or []
        for i, rule in enumerate(rules):
            per_field: dict[str, list] = {}  # one finding per field: verbs ["*"] is a wildcard and every escalating verb at once
            for problem, field, severity in (*_wildcard_rule(rule), *_escalating_rule(rule)):
                per_field.setdefault(field, []).append((problem, severity))
            for field, problems in per_field.items():
                text = "; ".join(p for p, _ in problems)
                findings.append(Finding(role.ref, f"{text} ({how})", f"rules[{i}].{field}", severity=worst(sev for _, sev in problems)))
    left_out = (f"; {len(defaults)} Kubernetes default role(s) (kubernetes.io/bootstrapping=rbac-defaults: cluster-admin, "
                "admin, edit, view, system:*, kube-system's) left out: the API server creates them in every cluster") if defaults else ""
    if not judged:
        out = passed("every Role and ClusterRole in the cluster state is bound to an audited workload (judged with it)" + left_out,
                     objects=sorted(audited), source=state.source)
    else:
        out = verdict_from(findings, what="wildcard or escalating role outside the audited workloads", subjects=judged,
                           ok=f"{len(judged)} role(s) not bound to an audited workload grant no wildcard and no escalate/bind/impersonate"
                           + left_out)
    return replace(out, evidence={**out.evidence, "kubernetes_defaults": sorted(defaults)}) if defaults else out


DEFAULT_ROLE_NAMES = ("cluster-admin", "admin", "edit", "view")


def kubernetes_default_role(role: K8sObject) -> bool:
    """A role the API server bootstraps in every cluster (Kubernetes — Using RBAC Authorization: default roles):
    labelled ``kubernetes.io/bootstrapping: rbac-defaults`` and a ClusterRole named cluster-admin, admin, edit,
    view or ``system:*``, or a Role in kube-system / kube-public. cluster-admin grants everything by design;
    judging it as an unbound helper role would fail every real cluster."""
    if role.labels.get("kubernetes.io/bootstrapping") != "rbac-defaults":
        return False
    if role.kind == "ClusterRole":
        return role.name in DEFAULT_ROLE_NAMES or role.name.startswith("system:")
    return role.namespace in ("kube-system", "kube-public")


def _bindings_of(state: ClusterState, role: K8sObject) -> list[str]:
    by_role = state.memo("rbac.bindings-by-role", lambda: _by_role(state))
    return [b.ref for b in by_role.get((role.kind, role.name), ())
            if role.kind == "ClusterRole" or b.namespace == role.namespace]


def _by_role(state: ClusterState) -> dict[tuple[str, str], list[K8sObject]]:
    out: dict[tuple[str, str], list[K8sObject]] = {}
    for b in state.of_kind("RoleBinding") + state.of_kind("ClusterRoleBinding"):
        ref = b.body.get("roleRef") or {}
        out.setdefault((ref.get("kind"), ref.get("name")), []).append(b)
    return out


def cluster_admin(state, templates) -> Outcome:
    blocked = needs(state, "RoleBinding", "ClusterRoleBinding")
    if blocked:
        return blocked
    findings, subjects = [], []
    for ns, name in service_accounts(templates):
        subjects.append(f"ServiceAccount/{ns}/{name}")
        for b in state.of_kind("RoleBinding", ns) + state.of_kind("ClusterRoleBinding"):
            ref = b.body.get("roleRef") or {}
            if ref.get("kind") == "ClusterRole" and ref.get("name") == "cluster-admin" and \
                    any(_subject_matches(s, b, ns, name) for s in b.body.get("subjects") or ()):
                findings.append(Finding(b.ref, f"binds ServiceAccount/{ns}/{name} to cluster-admin", "roleRef.name", severity="critical"))
    return verdict_from(findings, what="cluster-admin binding", subjects=subjects, ok="no service account bound to cluster-admin")


def automount_token(state: ClusterState, templates: Sequence[PodTemplate], honor_annotation: bool = False) -> Outcome:
    """The API token is not mounted into pods that do not need the API.

    The ``nimwarden.io/needs-kubernetes-api`` annotation exempts a workload only when the
    profile says so (``kubernetes.options.honor_annotations``): otherwise whoever can edit the
    target could exempt it from the control.
    """
    blocked = needs(state, "ServiceAccount")
    if blocked:
        return blocked
    findings, judged = [], []
    for tpl in templates:
        if honor_annotation and str((tpl.metadata.get("annotations") or {}).get(NEEDS_API_ANNOTATION, "")).lower() == "true":
            continue
        judged.append(tpl.ref)
        sa_name = tpl.spec.get("serviceAccountName") or "default"
        pod_value = tpl.spec.get("automountServiceAccountToken")
        sa = state.get("ServiceAccount", tpl.owner.namespace, sa_name)
        sa_value = sa.body.get("automountServiceAccountToken") if sa is not None else None
        if pod_value is False or (pod_value is None and sa_value is False):
            continue
        where = "pod spec" if pod_value is True else (f"ServiceAccount/{tpl.owner.namespace}/{sa_name}" if sa is not None else "default")
        findings.append(Finding(tpl.ref, f"service account token automounted ({where})",
                                tpl.source_path(f"{tpl.spec_path}.automountServiceAccountToken"), severity="medium"))
    if not judged:
        return not_applicable(f"every selected workload is annotated {NEEDS_API_ANNOTATION}=true")
    return verdict_from(findings, what="API token mounted where the API is not needed", subjects=judged,
                        ok="no API token mounted into workloads that do not need the API")


def accounts_subject(workloads) -> str:
    """The subject of an RBAC result when no finding names one: the (first) service account the deployment's pods run as."""
    accounts = [f"ServiceAccount/{ns}/{name}" for ns, name in service_accounts(workloads.templates)]
    return accounts[0] if accounts else "-"
