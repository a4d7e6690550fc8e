"""What the GPU Operator stack and the multi-node runtime look like in the target's cluster state.

Components are found by image repository, wherever they run (the operator's namespace is
``gpu-operator`` by convention, but a chart can be installed anywhere): the GPU Operator itself
(``nvcr.io/nvidia/gpu-operator``), the Container Toolkit (``nvcr.io/nvidia/k8s/container-toolkit``),
the device plugin (``nvcr.io/nvidia/k8s-device-plugin``), the DCGM Exporter
(``nvcr.io/nvidia/k8s/dcgm-exporter``) and the GPU driver (``nvcr.io/nvidia/driver``), plus what a
``ClusterPolicy`` (nvidia.com/v1) pins for them.
A ClusterPolicy's version wins over a DaemonSet's image only when no DaemonSet runs that component
(the operator renders the DaemonSets from it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nimwarden.k8s.model import ClusterState
from nimwarden.k8s.workloads import TEMPLATE_PATHS, PodTemplate, containers_of, pod_templates

# image repository (without registry mirror prefix) → product name used by the CVE table
REPOSITORIES = {
    "nvidia/gpu-operator": "gpu-operator",
    "nvidia/k8s/container-toolkit": "container-toolkit",
    "nvidia/k8s-device-plugin": "device-plugin",
    "nvidia/k8s/dcgm-exporter": "dcgm-exporter",
    "nvidia/driver": "driver",  # the driver DaemonSet (nvidia-driver-daemonset): <version>-<os> tags, 580.126.20-ubuntu22.04
}
# ClusterPolicy spec field → product
POLICY_FIELDS = {"toolkit": "container-toolkit", "devicePlugin": "device-plugin", "dcgmExporter": "dcgm-exporter", "driver": "driver"}
VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Component:
    product: str
    version: str | None  # as found (a tag), None when it could not be read
    where: str  # "DaemonSet/gpu-operator/nvidia-container-toolkit-daemonset → nvidia-container-toolkit-ctr"
    field: str  # the field path that carries the version
    env: Mapping[str, Any] = field(default_factory=dict)  # the container's literal env

    def parsed(self) -> tuple[int, ...] | None:
        return parse_version(self.product, self.version)


def parse_version(product: str, tag: str | None) -> tuple[int, ...] | None:
    """The product's version from an image tag: ``v1.17.8-ubuntu20.04`` → (1, 17, 8); a DCGM Exporter tag
    is ``<DCGM>-<exporter>[-distro]`` (``4.5.3-4.8.2-distroless`` → (4, 8, 2)). None when it is not one."""
    if not tag or tag.startswith("sha256:"):
        return None
    if product == "dcgm-exporter":
        parts = tag.split("-")
        if len(parts) < 2:
            return None
        tag = parts[1]
    m = VERSION.match(tag)
    return tuple(int(x or 0) for x in m.groups()) if m else None


def _product(image: str) -> tuple[str | None, str | None]:
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    if "@" in name:
        name, _, tag = name.partition("@")
    for repo, product in REPOSITORIES.items():
        if name.endswith(repo):
            return product, tag or None
    return None, None


def components(state: ClusterState) -> list[Component]:
    """Every GPU Operator stack component the cluster state shows."""
    found: list[Component] = []
    for kind, path in TEMPLATE_PATHS.items():
        for obj in state.of_kind(kind):
            spec: Any = obj.body
            for key in path:
                spec = (spec or {}).get(key) if isinstance(spec, Mapping) else None
            spec = (spec or {}).get("spec") if isinstance(spec, Mapping) else None
            if not isinstance(spec, Mapping):
                continue
            for cpath, c in containers_of(dict(spec), ".".join(path) + ".spec"):
                product, tag = _product(str(c.get("image") or ""))
                if product:
                    env = {str(e.get("name")): e.get("value") for e in c.get("env") or () if e.get("name") and "value" in e}
                    found.append(Component(product, tag, f"{obj.ref} → {c.get('name', cpath)}", f"{cpath}.image", env))
    running = {c.product for c in found}
    for policy in state.of_kind("ClusterPolicy"):
        for key, product in POLICY_FIELDS.items():
            section = policy.spec.get(key) or {}
            if product in running or not isinstance(section, Mapping) or section.get("enabled") is False:
                continue
            if section.get("version"):
                env = {str(e.get("name")): e.get("value") for e in section.get("env") or () if e.get("name")}
                found.append(Component(product, str(section["version"]), policy.ref, f"spec.{key}.version", env))
    return found


def cdi_enabled(state: ClusterState) -> bool | None:
    """ClusterPolicy spec.cdi.enabled (legacy injection when False), None when no ClusterPolicy says."""
    for policy in state.of_kind("ClusterPolicy"):
        cdi = policy.spec.get("cdi") or {}
        if isinstance(cdi, Mapping) and "enabled" in cdi:
            return bool(cdi["enabled"])
    return None


def toolkit_env(state: ClusterState) -> dict[str, Any]:
    """The Container Toolkit's env as the ClusterPolicy (spec.toolkit.env) and the toolkit DaemonSet give it."""
    env: dict[str, Any] = {}
    for policy in state.of_kind("ClusterPolicy"):
        for e in (policy.spec.get("toolkit") or {}).get("env") or ():
            if isinstance(e, Mapping) and e.get("name"):
                env[str(e["name"])] = e.get("value")
    for c in components(state):
        if c.product == "container-toolkit":
            env.update(c.env)
    return env


POD_METADATA_ENV = ("DCGM_EXPORTER_KUBERNETES_ENABLE_POD_LABELS", "DCGM_EXPORTER_KUBERNETES_ENABLE_POD_UID")


def dcgm_pod_metadata(state: ClusterState) -> list[tuple[str, str]]:
    """Where pod labels / pod UIDs are asked of the DCGM Exporter: ClusterPolicy ``spec.dcgmExporter.enablePodLabels``
    / ``enablePodUID`` (Helm ``dcgmExporter.enablePodLabels``), or the env the operator sets from them (GPU Operator
    26.3.2 ``controllers/object_controls.go``): (where, what)."""
    out = []
    for policy in state.of_kind("ClusterPolicy"):
        section = policy.spec.get("dcgmExporter") or {}
        for key in ("enablePodLabels", "enablePodUID"):
            if isinstance(section, Mapping) and section.get(key) is True:
                out.append((policy.ref, f"spec.dcgmExporter.{key}: true"))
        for e in section.get("env") or () if isinstance(section, Mapping) else ():
            if isinstance(e, Mapping) and e.get("name") in POD_METADATA_ENV and str(e.get("value")).lower() == "true":
                out.append((policy.ref, f"spec.dcgmExporter.env {e['name']}=true"))
    for c in components(state):
        if c.product == "dcgm-exporter":
            out.extend((c.where, f"env {name}=true") for name in POD_METADATA_ENV if str(c.env.get(name, "")).lower() == "true")
    return out


RAY_PORTS = {8265: "Ray dashboard and Jobs API", 6379: "Ray GCS", 10001: "Ray client server"}


def ray_services(state: ClusterState) -> list[tuple[Any, list[tuple[int, int]]]]:
    """Services that publish a Ray head port: (Service, [(port index, port)])."""
    out = []
    for svc in state.of_kind("Service"):
        hits = []
        for i, p in enumerate(svc.spec.get("ports") or ()):
            nums = {p.get("port"), p.get("targetPort")} & set(RAY_PORTS)
            named = str(p.get("name") or "").lower()
            if nums or named in ("dashboard", "ray-dashboard", "gcs", "gcs-server", "client", "ray-client"):
                hits.append((i, int(p.get("port") or 0)))
        if hits:
            out.append((svc, hits))
    return out



RAY_PORT_NAMES = ("dashboard", "ray-dashboard", "gcs", "gcs-server", "ray-gcs", "client", "ray-client")


def _starts_ray_head(container: Mapping[str, Any]) -> bool:
    """``ray start --head``, or a launcher that names Ray and a head role (``nim-serve-ray --head``)."""
    words = " ".join(str(x) for x in [*(container.get("command") or ()), *(container.get("args") or ())])
    return "--head" in words.split() and "ray" in words.lower()


def is_ray_head(t: PodTemplate) -> bool:
    """A Ray head's pod template: KubeRay's ``ray.io/node-type: head`` label, a container that runs
    ``ray start --head`` (a multi-node NIM's leader), or a container port that is a Ray head port by number
    (8265) or by name. (6379 alone is Redis's port too: not enough.)"""
    if str(t.labels.get("ray.io/node-type", "")).lower() == "head":
        return True
    for _, c in t.containers():
        if _starts_ray_head(c):
            return True
        for p in c.get("ports") or ():
            if isinstance(p, Mapping) and (p.get("containerPort") == 8265 or str(p.get("name") or "").lower() in RAY_PORT_NAMES):
                return True
    return False


def ray_heads(state: ClusterState, namespace: str | None = None) -> list[PodTemplate]:
    return [t for t in pod_templates(state, namespace) if not t.hook and is_ray_head(t)]
