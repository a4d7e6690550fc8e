"""Pod templates of workload controllers: what every pod-level control judges.

Deployments, StatefulSets, DaemonSets, Jobs, CronJobs and bare Pods carry a
pod spec at a known path; a NIMService (NIM Operator CR) carries none, so the
pod the operator renders is reconstructed from the CR's fields and the
operator's documented defaults (runAsUser 1000, runAsGroup/fsGroup 2000, no
container securityContext). Findings name the owning object and a field path
into it; for a NIMService the path points at the CR field responsible where
one exists (``spec.storage.hostPath``), else into the rendered pod
(``rendered.spec…``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nimwarden.k8s.model import ClusterState, K8sObject

TEMPLATE_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
RENDERED = "rendered.spec"

# NIM Operator defaults (NIM Operator — Security: userID 1000 / groupID 2000).
OPERATOR_UID, OPERATOR_GID = 1000, 2000
MODEL_STORE_MOUNT = "/model-store"


def containers_of(spec: dict, sp: str = "spec") -> list[tuple[str, dict]]:
    """(field path, container) for init, regular and ephemeral containers, upstream's visit order."""
    out = [(f"{sp}.initContainers[{i}]", x) for i, x in enumerate(spec.get("initContainers") or ())]
    out += [(f"{sp}.containers[{i}]", x) for i, x in enumerate(spec.get("containers") or ())]
    out += [(f"{sp}.ephemeralContainers[{i}]", x) for i, x in enumerate(spec.get("ephemeralContainers") or ())]
    return out



@dataclass(frozen=True)
class PodTemplate:
    owner: K8sObject
    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]
    spec_path: str  # where the pod spec sits in the owner, e.g. "spec.template.spec"
    rendered: bool = False  # reconstructed from a NIMService
    field_map: Mapping[str, str] = field(default_factory=dict)  # rendered path prefix -> CR field

    @property
    def ref(self) -> str:
        return self.owner.ref

    @property
    def labels(self) -> Mapping[str, str]:
        return self.metadata.get("labels") or {}

    def source_path(self, path: str) -> str:
        """The field the user wrote: for a NIMService, the CR field that produced a rendered path."""
        for prefix in sorted(self.field_map, key=len, reverse=True):
            if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
                return self.field_map[prefix] + path[len(prefix):]
        return path

    def containers(self) -> list[tuple[str, dict]]:
        return containers_of(dict(self.spec), self.spec_path)

    def container_ref(self, path: str, container: Mapping[str, Any]) -> str:
        return f"{self.ref} → {container.get('name', path)}"


def _dig(body: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    node: Any = body
    for k in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(k)
    return node


def _controlled(obj: K8sObject) -> bool:
    return any(ref.get("controller") for ref in obj.metadata.get("ownerReferences") or ())


def render_nimservice(obj: K8sObject) -> PodTemplate:
    """The pod spec the NIM Operator would render for a NIMService (defaults per the operator's docs)."""
    spec = obj.spec
    image = spec.get("image") or {}
    name = obj.name
    field_map: dict[str, str] = {}
    env: list[dict] = []
    auth = spec.get("authSecret")
    if auth:
        env.append({"name": "NGC_API_KEY", "valueFrom": {"secretKeyRef": {"name": auth, "key": "NGC_API_KEY"}}})
    offset = len(env)
    for i, e in enumerate(spec.get("env") or ()):
        env.append(dict(e))
        field_map[f"{RENDERED}.containers[0].env[{offset + i}]"] = f"spec.env[{i}]"
    storage = spec.get("storage") or {}
    volumes: list[dict] = []
    if storage.get("hostPath"):
        volumes.append({"name": "model-store", "hostPath": {"path": storage["hostPath"]}})
        field_map[f"{RENDERED}.volumes[0].hostPath"] = "spec.storage.hostPath"
    elif (storage.get("pvc") or {}).get("name") or (storage.get("pvc") or {}).get("create"):
        volumes.append({"name": "model-store", "persistentVolumeClaim": {"claimName": (storage["pvc"].get("name") or f"{name}-pvc")}})
        field_map[f"{RENDERED}.volumes[0]"] = "spec.storage.pvc"
    elif (storage.get("nimCache") or {}).get("name"):
        volumes.append({"name": "model-store", "persistentVolumeClaim": {"claimName": f"{storage['nimCache']['name']}-pvc"}})
        field_map[f"{RENDERED}.volumes[0]"] = "spec.storage.nimCache"
    mounts = [{"name": "model-store", "mountPath": MODEL_STORE_MOUNT, "readOnly": bool(storage.get("readOnly", False))}] if volumes else []
    if mounts:
        field_map[f"{RENDERED}.containers[0].volumeMounts[0].readOnly"] = "spec.storage.readOnly"
    container: dict[str, Any] = {
        "name": name,
        "image": f"{image.get('repository', '')}:{image.get('tag', 'latest')}",
        "env": env,
        "volumeMounts": mounts,
        "ports": [{"name": "api", "containerPort": ((spec.get("expose") or {}).get("service") or {}).get("port", 8000)}],
    }
    for key in ("command", "args", "resources"):
        if spec.get(key) is not None:
            container[key] = spec[key]
            field_map[f"{RENDERED}.containers[0].{key}"] = f"spec.{key}"
    gid = spec.get("groupID", OPERATOR_GID)
    pod_spec: dict[str, Any] = {
        "serviceAccountName": name,
        "securityContext": {"runAsUser": spec.get("userID", OPERATOR_UID), "runAsGroup": gid, "fsGroup": gid},
        "containers": [container],
        "volumes": volumes,
        "imagePullSecrets": [{"name": s} for s in image.get("pullSecrets") or ()],
    }
    field_map[f"{RENDERED}.securityContext.runAsUser"] = "spec.userID"
    field_map[f"{RENDERED}.securityContext.runAsGroup"] = "spec.groupID"
    field_map[f"{RENDERED}.imagePullSecrets"] = "spec.image.pullSecrets"
    for key in ("runtimeClassName", "nodeSelector", "tolerations"):
        if spec.get(key) is not None:
            pod_spec[key] = spec[key]
    labels = {**(spec.get("labels") or {}), **obj.labels, "app.kubernetes.io/name": name}
    return PodTemplate(obj, {"labels": labels, "annotations": dict(spec.get("annotations") or {})}, pod_spec, RENDERED, True, field_map)


def pod_templates(state: ClusterState, namespace: str | None = None) -> list[PodTemplate]:
    """Every workload's pod template; controller-owned Pods and operator-rendered duplicates are skipped."""
    out: list[PodTemplate] = []
    owned_by_nimservice = {
        (o.namespace, ref.get("name"))
        for kind in TEMPLATE_PATHS for o in state.of_kind(kind, namespace)
        for ref in o.metadata.get("ownerReferences") or () if ref.get("kind") == "NIMService"
    }
    for kind, keys in TEMPLATE_PATHS.items():
        for obj in state.of_kind(kind, namespace):
            if kind == "Pod" and _controlled(obj):
                continue  # its controller's template is judged instead
            if kind == "Job" and any(r.get("kind") == "CronJob" for r in obj.metadata.get("ownerReferences") or ()):
                continue
            if kind == "Pod":
                meta, spec, path = obj.metadata, obj.spec, "spec"
            else:
                template = _dig(obj.body, keys) or {}
                meta, spec, path = template.get("metadata") or {}, template.get("spec") or {}, ".".join(keys) + ".spec"
            out.append(PodTemplate(obj, meta, spec, path))
    for obj in state.of_kind("NIMService", namespace):
        if (obj.namespace, obj.name) not in owned_by_nimservice:  # live: the operator's real Deployment is judged
            out.append(render_nimservice(obj))
    return out


def select(templates: list[PodTemplate], namespace: str | None, selector: Mapping[str, str]) -> list[PodTemplate]:
    """Templates in ``namespace`` whose pod labels include every ``selector`` label."""
    return [t for t in templates
            if (namespace is None or t.owner.namespace == namespace)
            and all(t.labels.get(k) == v for k, v in selector.items())]
