"""The Kubernetes resources nimwarden reads, with their REST coordinates.

One table serves the three sources: the live reader lists these paths, the
snapshot writer dumps them, and the manifest/snapshot readers use it to know
which kinds are namespaced.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    kind: str
    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool
    optional: bool = False  # a CRD or API that a cluster may not serve (404 = none there)
    older: tuple[str, ...] = ()  # versions an older cluster serves it at instead (404 on ``version``: try these)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


RESOURCES: tuple[Resource, ...] = (
    Resource("Namespace", "", "v1", "namespaces", False),
    Resource("Pod", "", "v1", "pods", True),
    Resource("Service", "", "v1", "services", True),
    Resource("ConfigMap", "", "v1", "configmaps", True),
    Resource("Secret", "", "v1", "secrets", True),
    Resource("ServiceAccount", "", "v1", "serviceaccounts", True),
    Resource("Deployment", "apps", "v1", "deployments", True),
    Resource("StatefulSet", "apps", "v1", "statefulsets", True),
    Resource("DaemonSet", "apps", "v1", "daemonsets", True),
    Resource("Job", "batch", "v1", "jobs", True),
    Resource("CronJob", "batch", "v1", "cronjobs", True, older=("v1beta1",)),  # batch/v1 from Kubernetes 1.21
    Resource("Ingress", "networking.k8s.io", "v1", "ingresses", True),
    Resource("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", True),
    Resource("Role", "rbac.authorization.k8s.io", "v1", "roles", True),
    Resource("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings", True),
    Resource("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", False),
    Resource("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    Resource("NIMService", "apps.nvidia.com", "v1alpha1", "nimservices", True, optional=True),
    Resource("NIMPipeline", "apps.nvidia.com", "v1alpha1", "nimpipelines", True, optional=True),
    Resource("NIMCache", "apps.nvidia.com", "v1alpha1", "nimcaches", True, optional=True),
    # The NIM Operator's NeMo resources (api/apps/v1alpha1/nemo_*_types.go; plurals as its CRDs name them).
    Resource("NemoDatastore", "apps.nvidia.com", "v1alpha1", "nemodatastores", True, optional=True),
    Resource("NemoEntitystore", "apps.nvidia.com", "v1alpha1", "nemoentitystores", True, optional=True),
    Resource("NemoCustomizer", "apps.nvidia.com", "v1alpha1", "nemocustomizers", True, optional=True),
    Resource("NemoEvaluator", "apps.nvidia.com", "v1alpha1", "nemoevaluators", True, optional=True),
    Resource("NemoGuardrail", "apps.nvidia.com", "v1alpha1", "nemoguardrails", True, optional=True),
    Resource("ClusterPolicy", "nvidia.com", "v1", "clusterpolicies", False, optional=True),
    Resource("LeaderWorkerSet", "leaderworkerset.x-k8s.io", "v1", "leaderworkersets", True, optional=True),
    Resource("RayCluster", "ray.io", "v1", "rayclusters", True, optional=True),
    Resource("InferenceService", "serving.kserve.io", "v1beta1", "inferenceservices", True, optional=True),
    Resource("ServingRuntime", "serving.kserve.io", "v1alpha1", "servingruntimes", True, optional=True),
    Resource("ClusterServingRuntime", "serving.kserve.io", "v1alpha1", "clusterservingruntimes", False, optional=True),
    Resource("HTTPRoute", "gateway.networking.k8s.io", "v1", "httproutes", True, optional=True),
    Resource("Gateway", "gateway.networking.k8s.io", "v1", "gateways", True, optional=True),
    Resource("IngressRoute", "traefik.io", "v1alpha1", "ingressroutes", True, optional=True),
    Resource("Route", "route.openshift.io", "v1", "routes", True, optional=True),
    Resource("ExternalSecret", "external-secrets.io", "v1beta1", "externalsecrets", True, optional=True),
)

BY_KIND = {r.kind: r for r in RESOURCES}
# What the controls read: every kind above (and the List wrapper manifests unwrap). Anything else a
# source holds (CRDs, PVCs, ServiceMonitors …) is counted and listed as "not judged".
JUDGED_KINDS = frozenset(BY_KIND) | {"ReplicaSet"}
CLUSTER_SCOPED_KINDS = frozenset(r.kind for r in RESOURCES if not r.namespaced) | {
    "CustomResourceDefinition", "PersistentVolume", "StorageClass", "PriorityClass", "RuntimeClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "Node",
}


def is_namespaced(kind: str) -> bool:
    return kind not in CLUSTER_SCOPED_KINDS
