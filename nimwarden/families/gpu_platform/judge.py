"""Judges of the gpu-platform family (pure): component versions against NVIDIA's bulletins, the risky
settings those bulletins name, DCGM Exporter and Ray exposure."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from nimwarden.families.gpu_platform.stack import RAY_PORTS, Component
from nimwarden.k8s.findings import Finding, verdict_from
from nimwarden.outcome import Attempt, Outcome, errored, fail_closed, failed, not_applicable, passed

TABLE_FILE = Path(__file__).resolve().parent / "cves.yaml"
STALE_AFTER_DAYS = 90


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


@dataclass(frozen=True)
class StackTable:
    version: str
    as_of: dt.date
    cves: tuple[StackCve, ...]

    def stamp(self, today: dt.date | None = None) -> dict[str, Any]:
        age = ((today or dt.date.today()) - self.as_of).days
        return {"name": "GPU Operator stack CVE table", "version": self.version, "as_of": self.as_of.isoformat(),
                "rows": len(self.cves), "age_days": age, "stale": age > STALE_AFTER_DAYS,
                "source": "nimwarden/families/gpu_platform/cves.yaml"}


def parse_table(data: Mapping[str, Any]) -> StackTable:
    rows = []
    for i, c in enumerate(data.get("cves") or ()):
        where = f"cves[{i}] ({c.get('id', '?')})"
        for key in ("id", "cvss", "component", "title", "fixed", "bulletin", "url"):
            if c.get(key) in (None, "", {}):
                raise ValueError(f"{where}: {key} missing")
        fixed = {str(k): _version(str(v), where) for k, v in c["fixed"].items()}
        rows.append(StackCve(str(c["id"]), float(c["cvss"]), str(c["component"]), str(c["title"]), fixed,
                             c.get("risky_setting"), str(c["bulletin"]), str(c["url"])))
    as_of = data["as_of"] if isinstance(data["as_of"], dt.date) else dt.date.fromisoformat(str(data["as_of"]))
    return StackTable(str(data["version"]), as_of, tuple(rows))


def _version(text: str, where: str) -> tuple[int, ...]:
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$", text.strip())
    if not m:
        raise ValueError(f"{where}: fixed version {text!r} is not x.y[.z]")
    return tuple(int(x or 0) for x in m.groups())


@lru_cache(maxsize=1)
def load_table() -> StackTable:
    return parse_table(yaml.load(TABLE_FILE.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))  # libyaml: the same safe loader, ~10x faster


def severity_of(cvss: float) -> str:
    return "critical" if cvss >= 9.0 else "high" if cvss >= 7.0 else "medium" if cvss >= 4.0 else "low"


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
        if judged_on is None or judged_on not in cve.fixed:
            continue
        for c in by_product[judged_on]:
            v = c.parsed()
            if v is not None and v < cve.fixed[judged_on]:
                how = "" if judged_on == cve.component else f" (the {cve.component} its release pins)"
                findings.append(Finding(c.where, f"{c.product} {c.version} is likely vulnerable to {cve.id} (CVSS {cve.cvss:g}, "
                                        f"fixed in {judged_on} {_text(cve.fixed[judged_on])}{how}): {cve.title[:140]}",
                                        c.field, severity=severity_of(cve.cvss)))
                counted.append({"id": cve.id, "cvss": cve.cvss, "component": cve.component, "judged_on": f"{c.where} {c.version}",
                                "fixed_in": _text(cve.fixed[judged_on]), "bulletin": cve.bulletin, "url": cve.url})
    evidence = {"components": [{"product": c.product, "version": c.version, "where": c.where} for c in components],
                "cve_table": table.stamp(), "cves": counted}
    if findings:
        return verdict_from(findings, what="GPU Operator stack likely vulnerable (version match; backports not detected)",
                            subjects=sorted({c.where for c in components}), ok="", **evidence)
    if unreadable:
        return errored("cannot tell the version of " + ", ".join(f"{c.where} ({c.version or 'no tag'})" for c in unreadable)
                       + ": pin images by version tag, or check them by hand", **evidence)
    return passed("every GPU Operator stack component is past the fixes of the CVE table "
                  f"{table.version} (as of {table.as_of})", **evidence)


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
    from nimwarden.k8s.network import inventory_from_state, pod_key
    from nimwarden.netpol.model import ReachabilityModel
    from nimwarden.netpol.objects import Pod

    blocked = needs(state, "NetworkPolicy")
    if blocked:
        return blocked
    heads = ray_heads(state, namespace)
    if not heads:
        return not_applicable(f"no Ray head (label ray.io/node-type=head, `ray start --head`, or a Ray head port) in "
                              f"namespace {namespace or '(all)'}")
    model = ReachabilityModel(inventory_from_state(state))
    findings, judged = [], []
    for t in heads:
        try:
            head = model.inventory.pod(pod_key(t))
        except KeyError:  # hostNetwork pods are not in the model: no NetworkPolicy applies to them
            findings.append(Finding(t.ref, "the Ray head runs with hostNetwork: no NetworkPolicy can isolate it", f"{t.spec_path}.hostNetwork",
                                    severity="critical"))
            continue
        strangers = (Pod("nimwarden-probe", "outside-namespace", {}), Pod(head.namespace, "nimwarden-unlabelled-pod", {}))
        for port, what in RAY_PORTS.items():
            for who in strangers:
                v = model.evaluate(who, head, port)
                judged.append({"head": head.key, "port": port, "from": who.key, "allowed": v.allowed, "why": v.explain()})
                if v.allowed:
                    src = "a pod in another namespace" if who.namespace != head.namespace else "an unlabelled pod of its own namespace"
                    findings.append(Finding(t.ref, f"{what} ({port}/TCP) of the Ray head admits {src}: {v.explain()}",
                                            severity="critical" if port == 8265 else "high"))
    return verdict_from(findings, what="Ray head not isolated by a NetworkPolicy", subjects=sorted({t.ref for t in heads}),
                        ok=f"the Ray ports of {len(heads)} head(s) admit no pod outside the Ray cluster", flows=judged)
