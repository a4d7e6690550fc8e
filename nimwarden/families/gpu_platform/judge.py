"""Judges of the gpu-platform family (pure): component versions against NVIDIA's bulletins, the risky
settings those bulletins name, DCGM Exporter and Ray exposure."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from nimwarden.catalog import SAFE_LOADER
from nimwarden.dated import Dates, parse_dates, severity_of
from nimwarden.families.gpu_platform.stack import RAY_PORTS, Component
from nimwarden.k8s.findings import Finding, verdict_from
from nimwarden.outcome import Attempt, Outcome, errored, fail_closed, failed, not_applicable, passed

TABLE_FILE = Path(__file__).resolve().parent / "cves.yaml"


@dataclass(frozen=True)
class StackCve:
    id: str
    cvss: float
    component: str
    title: str
    fixed: Mapping[str, tuple[int, ...]]  # product → first fixed version
    risky_setting: str | None
    bulletin: str
    url: str
    branches: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # driver: "R580" → first fixed version
    branch_text: Mapping[str, str] = field(default_factory=dict)  # "R580" → "580.178.04" as the bulletin writes it

    def fixed_for(self, product: str, version: tuple[int, ...]) -> tuple[tuple[int, ...] | None, str]:
        """(the first fixed version for a component at ``version``, how it was chosen); None: not affected."""
        if not self.branches:
            return self.fixed.get(product), ""
        branch = f"R{version[0]}"
        if branch in self.branches:
            return self.branches[branch], f" {self.branch_text[branch]} (branch {branch})"
        listed = sorted(int(b[1:]) for b in self.branches)
        if version[0] < listed[0]:
            newest = f"R{listed[-1]}"
            return self.branches[newest], (f" {self.branch_text[newest]} (branch {branch} is not listed; the bulletin: earlier "
                                           f"branches might also be affected, upgrade to the latest branch)")
        return None, ""


@dataclass(frozen=True)
class StackTable:
    version: str
    dates: Dates
    cves: tuple[StackCve, ...]

    @property
    def as_of(self) -> dt.date:
        return self.dates.as_of

    def stamp(self, today: dt.date | None = None) -> dict[str, Any]:
        return self.dates.stamp("GPU Operator stack CVE table", self.version, "nimwarden/families/gpu_platform/cves.yaml",
                                len(self.cves), today)


def parse_table(data: Mapping[str, Any], where_file: str = "cves.yaml") -> StackTable:
    rows = []
    for i, c in enumerate(data.get("cves") or ()):
        where = f"{where_file}: cves[{i}] ({c.get('id', '?')})"
        for key in ("id", "cvss", "component", "title", "fixed", "bulletin", "url"):
            if c.get(key) in (None, "", {}):
                raise ValueError(f"{where}: {key} missing")
        fixed, branches, branch_text = {}, {}, {}
        for k, v in c["fixed"].items():
            if isinstance(v, Mapping):  # per branch (the driver)
                branches = {str(b): _version(str(x), where) for b, x in v.items()}
                branch_text = {str(b): str(x) for b, x in v.items()}
                if not branches or not all(re.fullmatch(r"R\d+", b) for b in branches):
                    raise ValueError(f"{where}: fixed.{k} must map driver branches (R580 …) to versions")
            else:
                fixed[str(k)] = _version(str(v), where)
        rows.append(StackCve(str(c["id"]), float(c["cvss"]), str(c["component"]), str(c["title"]), fixed,
                             c.get("risky_setting"), str(c["bulletin"]), str(c["url"]), branches, branch_text))
    return StackTable(str(data["version"]), parse_dates(data, where_file), tuple(rows))


def _version(text: str, where: str) -> tuple[int, ...]:
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$", text.strip())
    if not m:
        raise ValueError(f"{where}: fixed version {text!r} is not x.y[.z]")
    return tuple(int(x or 0) for x in m.groups())


@lru_cache(maxsize=1)
def load_table() -> StackTable:
    return parse_table(yaml.load(TABLE_FILE.read_text(encoding="utf-8"), Loader=SAFE_LOADER), "nimwarden/families/gpu_platform/cves.yaml")


def _text(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v))


def stack_versions(components: Sequence[Component], table: StackTable | None = None) -> Outcome:
    """GPUSTACK-VERSION: every component's version is past the fix of every CVE NVIDIA published for it.

    A CVE is judged on the component it lives in (the Container Toolkit for a toolkit CVE) when that
    component runs; otherwise on the GPU Operator's version (the operand versions its release pins).
    A version that cannot be read is an error, never a pass."""
    table = table or load_table()
    if not components:
        return not_applicable("no GPU Operator stack component in the cluster state (gpu-operator, container-toolkit, "
                              "k8s-device-plugin, dcgm-exporter images or a ClusterPolicy)")
    unreadable = [c for c in components if c.parsed() is None]
    by_product: dict[str, list[Component]] = {}
    for c in components:
        by_product.setdefault(c.product, []).append(c)
    findings, counted = [], []
    for cve in table.cves:
        judged_on = cve.component if cve.component in by_product else ("gpu-operator" if "gpu-operator" in by_product else None)
        if judged_on is None or (judged_on not in cve.fixed and not (cve.branches and judged_on == cve.component)):
            continue
        for c in by_product[judged_on]:
            v = c.parsed()
            if v is None:
                continue
            fixed, branch = cve.fixed_for(judged_on, v)
            if fixed is not None and v < fixed:
                fixed_in = branch.strip() if branch else _text(fixed)
                how = "" if judged_on == cve.component else f" (the {cve.component} its release pins)"
                findings.append(Finding(c.where, f"{c.product} {c.version} is likely vulnerable to {cve.id} (CVSS {cve.cvss:g}, "
                                        f"fixed in {judged_on} {fixed_in}{how}): {cve.title[:140]}",
                                        c.field, severity=severity_of(cve.cvss)))
                counted.append({"id": cve.id, "cvss": cve.cvss, "component": cve.component, "judged_on": f"{c.where} {c.version}",
                                "fixed_in": fixed_in, "bulletin": cve.bulletin, "url": cve.url})
    evidence = {"components": [{"product": c.product, "version": c.version, "where": c.where} for c in components],
                "cve_table": table.stamp(), "cves": counted}
    if findings:
        return verdict_from(findings, what="GPU Operator stack likely vulnerable (version match; backports not detected)",
                            subjects=sorted({c.where for c in components}), ok="", **evidence)
    if unreadable:
        return errored("cannot tell the version of " + ", ".join(f"{c.where} ({c.version or 'no tag'})" for c in unreadable)
                       + ": pin images by version tag, or check them by hand", **evidence)
    return passed("every GPU Operator stack component is past the fixes of the CVE table "
                  f"{table.version} ({table.dates.words()})", **evidence)


def risky_settings(components: Sequence[Component], cdi_enabled: bool | None, toolkit_env: Mapping[str, Any],
                   table: StackTable | None = None) -> Outcome:
    """GPUSTACK-SETTINGS: none of the settings NVIDIA's bulletins name as making a CVE exploitable."""
    table = table or load_table()
    if not components:
        return not_applicable("no GPU Operator stack component in the cluster state")
    findings = []
    toolkit = [c for c in components if c.product == "container-toolkit" and c.parsed() is not None]
    if cdi_enabled is False:
        open_cves = [cve.id for cve in table.cves if cve.risky_setting and "cdi" in cve.risky_setting.lower()
                     and any(c.parsed() < cve.fixed.get("container-toolkit", (0,)) for c in toolkit)]
        if open_cves or not toolkit:
            why = f"exploitable with the toolkit version found: {', '.join(open_cves)}" if open_cves else "toolkit version unknown"
            findings.append(Finding("ClusterPolicy", "CDI disabled (legacy injection): the precondition of CVE-2024-0132, "
                                    f"CVE-2024-0133 and CVE-2025-23359; {why}", "spec.cdi.enabled", severity="high"))
    opt_in = str(toolkit_env.get("NVIDIA_CONTAINER_TOOLKIT_OPT_IN_FEATURES") or "")
    if "allow-cuda-compat-libs-from-container" in opt_in:
        findings.append(Finding("ClusterPolicy/toolkit", "NVIDIA_CONTAINER_TOOLKIT_OPT_IN_FEATURES=allow-cuda-compat-libs-from-container "
                                "re-opens CVE-2025-23359 (bulletin 5616)", "spec.toolkit.env", severity="high"))
    for c in components:
        if c.product == "dcgm-exporter" and str(c.env.get("DCGM_EXPORTER_ENABLE_PPROF", "")).lower() in ("true", "1"):
            findings.append(Finding(c.where, "DCGM_EXPORTER_ENABLE_PPROF turns on the unauthenticated /debug/pprof "
                                    "endpoints on the metrics port (bulletin 5857)", f"{c.field.rsplit('.', 1)[0]}.env", severity="high"))
    return verdict_from(findings, what="risky GPU Operator setting", subjects=sorted({c.where for c in components}),
                        ok="none of the settings the bulletins name as exploitable is set", cdi_enabled=cdi_enabled)


def ray_published(services: Sequence[tuple[Any, list[tuple[int, int]]]]) -> Outcome:
    """RAY-EXPOSE: no Service publishes a Ray head port (dashboard/Jobs API, GCS, client) outside the cluster."""
    if not services:
        return not_applicable("no Service publishes a Ray head port (8265, 6379, 10001) in the cluster state")
    findings = []
    for svc, hits in services:
        kind = svc.spec.get("type", "ClusterIP")
        if kind in ("LoadBalancer", "NodePort") or svc.spec.get("externalIPs"):
            for i, port in hits:
                what = RAY_PORTS.get(port, f"port {port}")
                findings.append(Finding(svc.ref, f"{kind} publishes {what} outside the cluster (unauthenticated job "
                                        "submission: CVE-2023-48022)", f"spec.ports[{i}]", severity="critical"))
    return verdict_from(findings, what="Ray head published outside the cluster", subjects=[s.ref for s, _ in services],
                        ok="Ray head Services are cluster-internal")


@fail_closed
def dcgm_exposure(metrics: Attempt, pprof: Attempt, external: bool, allowed: bool) -> Outcome:
    """GPUSTACK-DCGM: the DCGM Exporter never serves /debug/pprof (bulletin 5857), and its metrics (every GPU's
    UUID and, with pod labels on, every GPU workload) are not reachable from outside the cluster unless the
    profile allows it. Both requests must be answered: a port that does not answer cannot be judged."""
    evidence = {"metrics": metrics.evidence(), "pprof": pprof.evidence(), "probe_position": "external" if external else "cluster-internal"}
    if pprof.observation.status == 200:
        return failed("the DCGM Exporter serves /debug/pprof without authentication (bulletin 5857: profiles and heap "
                      "dumps on the metrics port); upgrade to 4.8.2+ and keep --enable-pprof off", severity="critical", **evidence)
    if metrics.observation.status == 200:
        text = metrics.observation.text()
        gpus = sorted(set(re.findall(r'UUID="([^"]+)"', text)))[:8]
        pods = sorted(set(re.findall(r'pod="([^"]+)"', text)))[:8]
        namespaces = sorted(set(re.findall(r'namespace="([^"]+)"', text)))[:8]
        evidence.update(gpu_uuids=gpus, pods=pods, namespaces=namespaces)
        if external and not allowed:
            where = f" in the namespaces {namespaces}" if namespaces else ""
            return failed(f"DCGM Exporter metrics answer from outside the cluster: {len(gpus)} GPU UUID(s)"
                          f"{f' and the pods {pods}{where}' if pods else ''} disclosed", **evidence)
        return passed("/debug/pprof is off; the metrics answer inside the cluster (limit them to the monitoring "
                      "namespace with a NetworkPolicy)", **evidence)
    return passed(f"/debug/pprof is off and the metrics refuse this caller (HTTP {metrics.observation.status})", **evidence)


@fail_closed
def ray_dashboard(version: Attempt, jobs: Attempt) -> Outcome:
    """RAY-DASHBOARD: the Ray dashboard / Jobs API refuses callers without a token (Ray 2.52+ token auth)."""
    evidence = {"version": version.evidence(), "jobs": jobs.evidence(), "expected": "HTTP 401/403 without a token"}
    status = jobs.observation.status
    if status in (401, 403):
        return passed(f"the Ray Jobs API refuses callers without a token (HTTP {status})", **evidence)
    if status == 200:
        return failed("the Ray dashboard answers GET /api/jobs/ without credentials: anyone who reaches it can submit jobs "
                      "that run code on the cluster (CVE-2023-48022, exploited in the wild); turn on token auth "
                      "(RAY_AUTH_MODE=token, Ray 2.52+) and keep port 8265 internal", severity="critical", **evidence)
    return errored(f"the Ray dashboard answered GET /api/jobs/ with HTTP {status}: cannot tell whether it is open", **evidence)


# ----------------------------------------------------------------------------------- from cluster state


def versions_in(state) -> Outcome:
    from nimwarden.families.gpu_platform.stack import components
    from nimwarden.k8s.findings import needs

    return needs(state, "DaemonSet", "Deployment") or stack_versions(components(state))


def settings_in(state) -> Outcome:
    from nimwarden.families.gpu_platform.stack import cdi_enabled, components, toolkit_env
    from nimwarden.k8s.findings import needs

    return needs(state, "DaemonSet", "Deployment") or risky_settings(components(state), cdi_enabled(state), toolkit_env(state))


def pod_reader_in(state) -> Outcome:
    from nimwarden.families.gpu_platform.stack import components, dcgm_pod_metadata
    from nimwarden.k8s.findings import needs

    return needs(state, "ClusterRole", "ClusterRoleBinding") or dcgm_pod_reader(state, components(state), dcgm_pod_metadata(state))


READ_PODS_ROLE = "nvidia-dcgm-exporter-read-pods"  # GPU Operator 26.3.2+ assets/state-dcgm-exporter/0210_clusterrole.yaml
PODREAD_FROM = (26, 3, 2)


def dcgm_pod_reader(state: Any, components: Sequence[Component], pod_metadata: Sequence[tuple[str, str]]) -> Outcome:
    """GPUSTACK-PODREAD: the DCGM Exporter does not read every pod of the cluster. GPU Operator 26.3.2 and later
    create the ClusterRole ``nvidia-dcgm-exporter-read-pods`` (get/list/watch on all pods, bound to the exporter's
    service account) when pod labels or pod UIDs are asked for as metric labels (``dcgmExporter.enablePodLabels`` /
    ``enablePodUID``, or the DCGM_EXPORTER_KUBERNETES_ENABLE_POD_LABELS / _UID env). Judged from the role itself
    when the cluster state holds it, else from what the ClusterPolicy asks of an operator that creates it."""
    operator = [c for c in components if c.product == "gpu-operator" and c.parsed() is not None]
    role = state.get("ClusterRole", None, READ_PODS_ROLE)
    bindings = [b for b in state.of_kind("ClusterRoleBinding") if (b.body.get("roleRef") or {}).get("name") == READ_PODS_ROLE]
    why = "; ".join(f"{where} sets {what}" for where, what in pod_metadata) or "no pod-metadata switch found in the ClusterPolicy or the exporter's env"
    findings = []
    if role is not None:
        subjects = [f"{s.get('kind')}/{s.get('namespace') or '-'}/{s.get('name')}" for b in bindings for s in b.body.get("subjects") or ()]
        rules = [r for r in role.body.get("rules") or () if "pods" in (r.get("resources") or ()) or "*" in (r.get("resources") or ())]
        findings.append(Finding(role.ref, f"ClusterRole {READ_PODS_ROLE} lets {', '.join(subjects) or 'its subjects'} "
                                f"{'/'.join(sorted({v for r in rules for v in r.get('verbs') or ()})) or 'read'} every pod in the "
                                f"cluster (every pod's spec, literal env values included), because the DCGM Exporter was asked to "
                                f"label metrics with pod metadata ({why}); the GPU Operator creates it from 26.3.2", "rules",
                                severity="medium"))
    elif pod_metadata and any(c.parsed() >= PODREAD_FROM for c in operator):
        op = next(c for c in operator if c.parsed() >= PODREAD_FROM)
        findings.append(Finding(op.where, f"GPU Operator {op.version} creates ClusterRole {READ_PODS_ROLE} (get/list/watch on every pod "
                                f"in the cluster, bound to the nvidia-dcgm-exporter service account) because {why}: the exporter "
                                "on every GPU node can then read every pod's spec, literal env values included", op.field,
                                severity="medium"))
    elif pod_metadata and not operator:
        return errored(f"pod metadata is asked of the DCGM Exporter ({why}) but the GPU Operator's version cannot be read, so "
                       f"whether it creates ClusterRole {READ_PODS_ROLE} is unknown", pod_metadata=[list(p) for p in pod_metadata])
    if not findings and not pod_metadata and not components:
        return not_applicable("no GPU Operator stack component and no ClusterRole " + READ_PODS_ROLE + " in the cluster state")
    return verdict_from(findings, what="DCGM Exporter reads every pod of the cluster",
                        subjects=[role.ref] if role is not None else sorted({c.where for c in operator}) or ["ClusterPolicy"],
                        ok=(f"no ClusterRole {READ_PODS_ROLE}, and " + ("no pod-metadata labels asked of the DCGM Exporter" if not pod_metadata
                            else f"the GPU Operator ({', '.join(c.version or '?' for c in operator)}) predates 26.3.2")),
                        pod_metadata=[list(p) for p in pod_metadata])


def ray_in(state) -> Outcome:
    from nimwarden.families.gpu_platform.stack import ray_services
    from nimwarden.k8s.findings import needs

    return needs(state, "Service") or ray_published(ray_services(state))


# ----------------------------------------------------------------------------------- Ray ports and isolation

RAY_ENDPOINTS = {"ray_gcs": "Ray GCS (6379)", "ray_client": "Ray client server (10001)"}


@fail_closed
def ray_ports(connects: Mapping[str, Attempt], allowed: Sequence[str] = ()) -> Outcome:
    """RAY-PORTS: from outside the cluster, neither the GCS nor the client server accepts a connection.
    A refused connection is closed; a timeout or a filtered port cannot be told from a slow one (error)."""
    evidence = {name: a.evidence() for name, a in connects.items()}
    opened = [name for name, a in connects.items() if a.observation == "open"]
    bad = [name for name in opened if name not in allowed]
    if bad:
        return failed(", ".join(f"{RAY_ENDPOINTS.get(n, n)} accepts connections from outside the cluster at "
                                f"{connects[n].request.removeprefix('TCP connect ')}" for n in bad)
                      + ": whoever connects can drive the Ray cluster (run a driver, schedule work); keep them ClusterIP "
                      "and admit them only from the Ray cluster's pods", severity="critical", **evidence)
    if opened:
        return passed(f"{', '.join(opened)} answer from outside, as the profile's exposure allows", **evidence)
    return passed("neither the Ray GCS nor the client server accepts a connection from outside the cluster "
                  f"({', '.join(connects)} refused)", **evidence)


def ray_isolation(state: Any, templates: Sequence[Any], namespace: str | None) -> Outcome:
    """RAY-NETPOL: for every Ray head in the deployment's namespace, the network-policy model denies its Ray ports
    (6379, 8265, 10001) to a pod outside the Ray cluster: one in another namespace, and an unlabelled one in the
    head's own namespace. A head no Ingress policy selects is open to every pod of the cluster."""
    from nimwarden.families.gpu_platform.stack import ray_heads
    from nimwarden.k8s.findings import needs
    from nimwarden.k8s.network import reachability_model, strangers_admitted

    blocked = needs(state, "NetworkPolicy")
    if blocked:
        return blocked
    heads = ray_heads(state, namespace)
    if not heads:
        return not_applicable(f"no Ray head (label ray.io/node-type=head, `ray start --head`, or a Ray head port) in "
                              f"namespace {namespace or '(all)'}")
    model = reachability_model(state)
    findings, judged = [], []
    for t in heads:
        seen = strangers_admitted(model, t, RAY_PORTS)
        if seen is None:  # hostNetwork pods are not in the model: no NetworkPolicy applies to them
            findings.append(Finding(t.ref, "the Ray head runs with hostNetwork: no NetworkPolicy can isolate it", f"{t.spec_path}.hostNetwork",
                                    severity="critical"))
            continue
        admitted, flows = seen
        judged += [{"head": f.pop("pod"), **f} for f in flows]
        for a in admitted:
            findings.append(Finding(t.ref, f"{RAY_PORTS[a.port]} ({a.port}/TCP) of the Ray head admits {a.source}: {a.why}",
                                    severity="critical" if a.port == 8265 else "high"))
    return verdict_from(findings, what="Ray head not isolated by a NetworkPolicy", subjects=sorted({t.ref for t in heads}),
                        ok=f"the Ray ports of {len(heads)} head(s) admit no pod outside the Ray cluster", flows=judged)
