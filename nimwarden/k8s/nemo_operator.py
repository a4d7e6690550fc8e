"""What the NIM Operator makes of its NeMo custom resources (NemoDatastore, NemoEntitystore, NemoCustomizer,
NemoEvaluator, NemoGuardrail): the pod of the Deployment it renders, and the ServiceAccount, Role,
RoleBinding, Service, Ingress and HTTPRoute it creates beside it, so that every pod, secrets, RBAC, exposure
and network-policy control judges them like objects read from the cluster.

Modelled on NVIDIA/k8s-nim-operator (read at commit f63f74d7, Aug 2026), never copied:
- ``api/apps/v1alpha1/nemo_*_types.go``: each CR's ``Get*Params`` (names, labels, env, ports, volumes, init
  containers, Role rules) and its defaults (userID 1000, groupID 2000; Service port 8000, ``DefaultAPIPort``;
  container ports DatastoreAPIPort 3000, EntitystoreAPIPort 8000, CustomizerAPIPort 8000 and
  CustomizerInternalPort 9009, EvaluatorAPIPort 7331, GuardrailAPIPort 8000);
- ``manifests/deployment.yaml``, ``service.yaml``, ``role.yaml``, ``rolebinding.yaml``, ``serviceaccount.yaml``:
  the pod labels (``app: <name>`` and the CR's labels), ``serviceAccountName: <name>``, a pod securityContext
  of runAsUser/runAsGroup/fsGroup and no container securityContext;
- ``internal/controller/nemo_*_controller.go``: the Data Store's pod securityContext is replaced by
  ``fsGroup`` alone (groupID, default 1000); init containers (Postgres wait on an unpinned ``busybox``, the
  database migration) for the Entity Store, the Evaluator and — with a database — the Guardrails; the
  Customizer's ConfigMap and the Secret holding the database DSN/URI that the operator writes from the
  password Secret (values never enter the model: only their references do).
- ``common_types.go``: the Ingress from ``spec.expose.router.ingress`` (host ``<name>.<namespace>.<domain>``, path
  ``/`` Prefix, TLS when ``tlsSecretName``) or the deprecated ``spec.expose.ingress``; the HTTPRoute from
  ``spec.expose.router.gateway`` (``httpRoutesEnabled`` defaults to true).
The operator creates no Job for these CRs (the Customizer launches its download and training jobs itself, at
run time: not modelled). Where a cluster holds the operator's real objects (a live read), those are judged and
the rendering is skipped: the operator names every object after its CR.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nimwarden.k8s.model import RENDERERS, K8sObject
from nimwarden.k8s.nemo import NEMO_CR_KINDS
from nimwarden.k8s.workloads import CR_POD_RENDERERS, RENDERED, PodTemplate

OPERATOR_UID, OPERATOR_GID, DATASTORE_FSGROUP = 1000, 2000, 1000
SERVICE_PORT = 8000  # DefaultAPIPort: the Service's port unless spec.expose.service.port
CONTAINER_PORTS = {"NemoDatastore": 3000, "NemoEntitystore": 8000, "NemoCustomizer": 8000, "NemoEvaluator": 7331, "NemoGuardrail": 8000}
CUSTOMIZER_CALLBACK = 9009
PART_OF = {"NemoDatastore": "nemo-datastore-service", "NemoEntitystore": "nemo-entitystore-service",
           "NemoCustomizer": "nemo-customizer-service", "NemoEvaluator": "nemo-evaluator-service",
           "NemoGuardrail": "nemo-guardrail-service"}
C0 = f"{RENDERED}.containers[0]"
SCC_RULE = {"apiGroups": ["security.openshift.io"], "resources": ["securitycontextconstraints"],
            "resourceNames": ["nonroot"], "verbs": ["use"]}
CRUD = ["create", "get", "list", "watch", "update", "delete", "patch"]
EXTRA_RULES = {  # GetRoleParams beyond the SCC rule
    "NemoEvaluator": [{"apiGroups": [""], "resources": ["secrets", "pods"], "verbs": ["get", "watch", "list", "create"]}],
    "NemoCustomizer": [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": CRUD},
        {"apiGroups": ["batch"], "resources": ["jobs/status"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods", "persistentvolumeclaims", "services", "configmaps"],
         "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "get", "list", "watch"]},
        {"apiGroups": ["nvidia.com"], "resources": ["nemotrainingjobs", "nemotrainingjobs/status", "nemoentityhandlers"], "verbs": CRUD},
    ],
}
VOLCANO_RULES = [
    {"apiGroups": ["batch.volcano.sh"], "resources": ["jobs"], "verbs": CRUD},
    {"apiGroups": ["batch.volcano.sh"], "resources": ["jobs/status"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["nodeinfo.volcano.sh"], "resources": ["numatopologies"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["scheduling.incubator.k8s.io", "scheduling.volcano.sh"], "resources": ["queues", "queues/status", "podgroups"],
     "verbs": ["get", "list", "watch"]},
]
RUNAI_RULES = [{"apiGroups": ["run.ai"], "resources": ["trainingworkloads", "runaijobs"], "verbs": CRUD}]


def _ref(name: str, key: str) -> dict:
    return {"valueFrom": {"secretKeyRef": {"name": name, "key": key}}}


def _db(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return spec.get("databaseConfig") or {}


def _db_password(spec: Mapping[str, Any], name: str) -> dict:
    creds = _db(spec).get("credentials") or {}
    return {"name": name, **_ref(str(creds.get("secretName") or ""), str(creds.get("passwordKey") or "password"))}


def selector_labels(obj: K8sObject) -> dict[str, str]:
    """GetSelectorLabels: what the rendered Service selects."""
    name = obj.name
    if obj.kind in ("NemoCustomizer", "NemoEvaluator"):
        return {"app.kubernetes.io/name": name}
    if obj.kind == "NemoDatastore":
        return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}
    return {"app": name, "app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}


def service_labels(obj: K8sObject) -> dict[str, str]:
    """GetServiceLabels: the standard labels merged with spec.labels (the operator version label left out)."""
    standard = {"app.kubernetes.io/name": obj.name, "app.kubernetes.io/instance": obj.name,
                "app.kubernetes.io/part-of": PART_OF[obj.kind], "app.kubernetes.io/managed-by": "k8s-nim-operator"}
    return {**standard, **{str(k): str(v) for k, v in (obj.spec.get("labels") or {}).items()}}


def _standard_env(obj: K8sObject) -> list[tuple[dict, str]]:
    """(env entry, the CR field it comes from) for the operator's standard env (GetStandardEnv), secret-bearing
    entries and URLs from the CR; fixed values that cannot carry a secret are left out."""
    spec, kind, name = obj.spec, obj.kind, obj.name
    out: list[tuple[dict, str]] = []
    if kind == "NemoDatastore":
        secrets = spec.get("secrets") or {}
        out.append(({"name": "GITEA__SERVER__LFS_JWT_SECRET", **_ref(str(secrets.get("lfsJwtSecret") or ""), "jwtSecret")}, "spec.secrets.lfsJwtSecret"))
        out.append((_db_password(spec, "GITEA__DATABASE__PASSWD"), "spec.databaseConfig.credentials"))
        store = spec.get("objectStoreConfig") or {}
        if store:
            creds = store.get("credentials") or {}
            out.append(({"name": "GITEA__LFS__MINIO_ACCESS_KEY_ID", "value": str(creds.get("user") or "")}, "spec.objectStoreConfig.credentials.user"))
            out.append(({"name": "GITEA__LFS__MINIO_SECRET_ACCESS_KEY", **_ref(str(creds.get("secretName") or ""), str(creds.get("passwordKey") or ""))},
                        "spec.objectStoreConfig.credentials"))
    if kind == "NemoEntitystore":
        out.append(({"name": "BASE_URL_DATASTORE", "value": str((spec.get("datastore") or {}).get("endpoint") or "")}, "spec.datastore.endpoint"))
    if kind in ("NemoEntitystore", "NemoEvaluator", "NemoCustomizer") or (kind == "NemoGuardrail" and _db(spec)):
        out.append((_db_password(spec, "POSTGRES_PASSWORD" if kind == "NemoEntitystore" else "POSTGRES_DB_PASSWORD"),
                    "spec.databaseConfig.credentials"))
    if kind == "NemoCustomizer":
        # the DSN Secret the operator writes (named after the CR) from the password Secret
        out.append(({"name": "POSTGRES_DB_DSN", **_ref(name, "dsn")}, "spec.databaseConfig"))
        wandb = spec.get("wandb") or {}
        out.append(({"name": "WANDB_ENCRYPTION_KEY", **_ref(str(wandb.get("secretName") or ""), str(wandb.get("encryptionKey") or "encryptionKey"))},
                    "spec.wandb"))
        out.append(({"name": "CUSTOMIZATIONS_CALLBACK_URL",
                     "value": f"http://{name}.{obj.namespace}.svc.cluster.local:{CUSTOMIZER_CALLBACK}"}, "spec"))
    if kind in ("NemoEvaluator",) or (kind == "NemoGuardrail" and _db(spec)):
        out.append(({"name": "POSTGRES_URI", **_ref(name, "uri")}, "spec.databaseConfig"))
        if kind == "NemoGuardrail":
            out.append(({"name": "DB_URI", **_ref(name, "uri")}, "spec.databaseConfig"))
    if kind == "NemoEvaluator":
        out.append(({"name": "EVALUATOR_HOST", "value": "0.0.0.0"}, "spec"))
        for env, field in (("ARGO_HOST", "argoWorkflows"), ("MILVUS_URL", "vectorDB"), ("DATA_STORE_URL", "datastore"),
                           ("ENTITY_STORE_URL", "entitystore")):
            out.append(({"name": env, "value": str((spec.get(field) or {}).get("endpoint") or "")}, f"spec.{field}.endpoint"))
    if kind == "NemoGuardrail":
        out.append(({"name": "GUARDRAILS_HOST", "value": "0.0.0.0"}, "spec"))
        nim = spec.get("nimEndpoint") or {}
        if nim:
            out.append(({"name": "NIM_ENDPOINT_URL", "value": str(nim.get("baseURL") or "")}, "spec.nimEndpoint.baseURL"))
            if nim.get("apiKeySecret"):
                out.append(({"name": "NIM_ENDPOINT_API_KEY", **_ref(str(nim["apiKeySecret"]), str(nim.get("apiKeyKey") or ""))}, "spec.nimEndpoint"))
    otel = spec.get("otel") or {}
    if kind in ("NemoCustomizer", "NemoEvaluator", "NemoGuardrail") and otel.get("enabled"):
        out.append(({"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": str(otel.get("exporterOtlpEndpoint") or "")}, "spec.otel.exporterOtlpEndpoint"))
    return out


def _init_containers(obj: K8sObject, image: str, pull: str | None) -> list[dict]:
    spec, kind = obj.spec, obj.kind
    policy = {"imagePullPolicy": pull} if pull else {}
    if kind == "NemoDatastore":
        env = [e for e, _ in _standard_env(obj)] + [
            {"name": "GITEA_ADMIN_USERNAME", **_ref(str((spec.get("secrets") or {}).get("giteaAdminSecret") or ""), "GITEA_ADMIN_USERNAME")},
            {"name": "GITEA_ADMIN_PASSWORD", **_ref(str((spec.get("secrets") or {}).get("giteaAdminSecret") or ""), "GITEA_ADMIN_PASSWORD")}]
        return [{"name": n, "image": image, **policy, "env": env} for n in ("init-directories", "init-app-ini", "configure-datastore")]
    if kind not in ("NemoEntitystore", "NemoEvaluator", "NemoGuardrail") or not _db(spec):
        return []
    db_env = [e for e, field in _standard_env(obj) if field.startswith("spec.databaseConfig")]
    return [{"name": "wait-for-postgres", "image": "busybox", **policy,
             "command": ["sh", "-c", f"until nc -z {_db(spec).get('host')} {_db(spec).get('port', 5432)}; do sleep 5; done"]},
            {"name": f"{kind[4:].lower()}-db-migration", "image": image, **policy, "env": db_env}]


def _volumes(obj: K8sObject) -> tuple[list[dict], list[dict], dict[str, str]]:
    spec, kind = obj.spec, obj.kind
    if kind == "NemoDatastore":
        secrets = spec.get("secrets") or {}
        pvc = spec.get("pvc") or {}
        data = {"persistentVolumeClaim": {"claimName": pvc.get("name") or f"{obj.name}-pvc"}} if pvc else {"emptyDir": {}}
        vols = [{"name": "init", "secret": {"secretName": secrets.get("datastoreInitSecret"), "defaultMode": 110}},
                {"name": "config", "secret": {"secretName": secrets.get("datastoreConfigSecret"), "defaultMode": 110}},
                {"name": "inline-config-sources", "secret": {"secretName": secrets.get("datastoreInlineConfigSecret"), "defaultMode": 420}},
                {"name": "temp", "emptyDir": {}}, {"name": "data", **data}]
        mounts = [{"name": "temp", "mountPath": "/tmp"}, {"name": "data", "mountPath": "/data"}]
        return vols, mounts, {f"{RENDERED}.volumes[4]": "spec.pvc", f"{RENDERED}.volumes": "spec.secrets"}
    if kind == "NemoCustomizer":
        return ([{"name": "config", "configMap": {"name": obj.name}}], [{"name": "config", "mountPath": "/app/config", "readOnly": True}], {})
    if kind == "NemoGuardrail":
        store = spec.get("configStore") or {}
        if store.get("configMap"):
            vol = {"configMap": {"name": (store["configMap"] or {}).get("name")}}
        else:
            vol = {"persistentVolumeClaim": {"claimName": (store.get("pvc") or {}).get("name") or f"{obj.name}-pvc"}}
        return [{"name": "config-store", **vol}], [{"name": "config-store", "mountPath": "/config-store"}], {f"{RENDERED}.volumes[0]": "spec.configStore"}
    return [], [], {}


def render_pod(obj: K8sObject) -> PodTemplate:
    """The pod of the Deployment the operator renders for a NeMo CR."""
    spec, name, kind = obj.spec, obj.name, obj.kind
    image = spec.get("image") or {}
    ref = f"{image.get('repository', '')}:{image.get('tag', '')}"
    pull = image.get("pullPolicy")
    field_map = {f"{C0}.image": "spec.image", f"{RENDERED}.imagePullSecrets": "spec.image.pullSecrets",
                 f"{C0}.ports": "spec.expose.service", f"{RENDERED}.initContainers": "spec.databaseConfig"}
    env: list[dict] = []
    for i, e in enumerate(spec.get("env") or ()):  # MergeEnvVars: the CR's env first, winning over the standard
        env.append(dict(e))
        field_map[f"{C0}.env[{i}]"] = f"spec.env[{i}]"
    user = {str(e.get("name")) for e in env}
    for entry, source in _standard_env(obj):
        if entry["name"] not in user:  # the whole entry, its value and its valueFrom come from one CR field
            field_map.update({f"{C0}.env[{len(env)}]{tail}": source for tail in ("", ".value", ".valueFrom")})
            env.append(entry)
    ports = [{"name": "api", "containerPort": CONTAINER_PORTS[kind], "protocol": "TCP"}]
    if kind == "NemoCustomizer":
        ports.append({"name": "internal", "containerPort": CUSTOMIZER_CALLBACK, "protocol": "TCP"})
    volumes, mounts, vol_map = _volumes(obj)
    field_map.update(vol_map)
    container: dict[str, Any] = {"name": f"{name}-ctr", "image": ref, "ports": ports, "env": env, "volumeMounts": mounts}
    if pull:
        container["imagePullPolicy"] = pull
    for key in ("command", "args", "resources"):
        if spec.get(key) is not None:
            container[key] = spec[key]
            field_map[f"{C0}.{key}"] = f"spec.{key}"
    if kind == "NemoDatastore":  # the controller replaces the pod securityContext with fsGroup alone
        security = {"fsGroup": spec.get("groupID", DATASTORE_FSGROUP)}
        field_map[f"{RENDERED}.securityContext"] = "spec.groupID"
    else:
        gid = spec.get("groupID", OPERATOR_GID)
        security = {"runAsUser": spec.get("userID", OPERATOR_UID), "runAsGroup": gid, "fsGroup": gid}
        field_map[f"{RENDERED}.securityContext.runAsUser"] = "spec.userID"
        field_map[f"{RENDERED}.securityContext.runAsGroup"] = "spec.groupID"
    pod_spec: dict[str, Any] = {"serviceAccountName": name, "securityContext": security,
                                "initContainers": _init_containers(obj, ref, pull), "containers": [container], "volumes": volumes,
                                "imagePullSecrets": [{"name": s} for s in image.get("pullSecrets") or ()]}
    if spec.get("runtimeClass"):
        pod_spec["runtimeClassName"] = spec["runtimeClass"]
    for key in ("nodeSelector", "tolerations", "affinity"):
        if spec.get(key) is not None:
            pod_spec[key] = spec[key]
    annotations = {"openshift.io/required-scc": "nonroot", **{str(k): str(v) for k, v in (spec.get("annotations") or {}).items()}}
    labels = {"app": name, **service_labels(obj)}
    return PodTemplate(obj, {"labels": labels, "annotations": annotations}, pod_spec, RENDERED, True, field_map)


def _rendered(obj: K8sObject, kind: str, api_version: str, body: dict, field_map: Mapping[str, str],
              annotations: Mapping[str, Any] | None = None) -> K8sObject:
    """An object the operator creates for ``obj``: named after it, its findings located at the CR field that
    produced them (``field_map``) in the CR's file."""
    meta: dict[str, Any] = {"name": obj.name, "namespace": obj.namespace, "labels": service_labels(obj)}
    if annotations:
        meta["annotations"] = {str(k): str(v) for k, v in annotations.items()}
    full = {"apiVersion": api_version, "kind": kind, "metadata": meta, **body}
    return K8sObject(kind, api_version, obj.namespace, obj.name, full, f"rendered by the NIM Operator from {obj.ref}", obj.file,
                     obj.node, field_map=dict(field_map), rendered_from=obj.ref)


def _service(obj: K8sObject) -> K8sObject:
    svc = (obj.spec.get("expose") or {}).get("service") or {}
    ports = [{"name": "api", "port": int(svc.get("port") or SERVICE_PORT), "targetPort": "api", "protocol": "TCP"}]
    if obj.kind == "NemoCustomizer":
        ports.append({"name": "internal", "port": CUSTOMIZER_CALLBACK, "targetPort": "internal", "protocol": "TCP"})
    body = {"spec": {"type": svc.get("type") or "ClusterIP", "selector": selector_labels(obj), "ports": ports}}
    return _rendered(obj, "Service", "v1", body, {"spec.type": "spec.expose.service.type", "spec.ports[0]": "spec.expose.service.port",
                                                  "spec": "spec.expose.service"}, svc.get("annotations"))


def _role(obj: K8sObject) -> list[K8sObject]:
    rules = [SCC_RULE, *EXTRA_RULES.get(obj.kind, [])]
    if obj.kind == "NemoCustomizer":
        rules += {"volcano": VOLCANO_RULES, "runai": RUNAI_RULES}.get(str((obj.spec.get("scheduler") or {}).get("type") or ""), [])
    binding = {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": obj.name},
               "subjects": [{"kind": "ServiceAccount", "name": obj.name, "namespace": obj.namespace}]}
    return [_rendered(obj, "ServiceAccount", "v1", {}, {}),
            _rendered(obj, "Role", "rbac.authorization.k8s.io/v1", {"rules": [dict(r) for r in rules]}, {"rules": "kind"}),
            _rendered(obj, "RoleBinding", "rbac.authorization.k8s.io/v1", binding, {"roleRef": "kind", "subjects": "kind"})]


def _routes(obj: K8sObject) -> list[K8sObject]:
    expose = obj.spec.get("expose") or {}
    router, legacy = expose.get("router") or {}, expose.get("ingress") or {}
    name, ns = obj.name, obj.namespace
    host = f"{name}.{ns}.{router.get('hostDomainName')}" if router.get("hostDomainName") else None
    backend = {"service": {"name": name, "port": {"name": "api"}}}
    out = []
    if legacy.get("enabled"):  # ExposeV1.ingress (deprecated): class, host and paths of its own spec
        raw = legacy.get("spec") or {}
        paths = [{"path": p.get("path") or "/", "pathType": p.get("pathType") or "Prefix", "backend": backend} for p in raw.get("paths") or ()]
        spec = {"ingressClassName": raw.get("ingressClassName"),
                "rules": [{**({"host": raw["host"]} if raw.get("host") else {}),
                           "http": {"paths": paths or [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}
        out.append(_rendered(obj, "Ingress", "networking.k8s.io/v1", {"spec": spec}, {"spec": "spec.expose.ingress"}, legacy.get("annotations")))
    elif (router.get("ingress") or {}).get("ingressClass"):
        ing = router["ingress"]
        rule = {**({"host": host} if host else {}), "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
        spec = {"ingressClassName": ing["ingressClass"], "rules": [rule]}
        if ing.get("tlsSecretName"):
            spec["tls"] = [{"hosts": [host] if host else [], "secretName": ing["tlsSecretName"]}]
        out.append(_rendered(obj, "Ingress", "networking.k8s.io/v1", {"spec": spec},
                             {"spec.tls": "spec.expose.router.ingress", "spec": "spec.expose.router"}, router.get("annotations")))
    gateway = router.get("gateway") or {}
    if gateway and gateway.get("httpRoutesEnabled", True):
        port = int(((expose.get("service") or {}).get("port")) or SERVICE_PORT)
        spec = {"parentRefs": [{"name": gateway.get("name"), "namespace": gateway.get("namespace")}],
                "hostnames": [host] if host else [], "rules": [{"backendRefs": [{"name": name, "port": port}]}]}
        out.append(_rendered(obj, "HTTPRoute", "gateway.networking.k8s.io/v1", {"spec": spec}, {"spec": "spec.expose.router.gateway"}))
    return out


def rendered_objects(obj: K8sObject) -> list[K8sObject]:
    """The ServiceAccount, Role, RoleBinding, Service, Ingress and HTTPRoute the operator creates for a NeMo CR."""
    return [*_role(obj), _service(obj), *_routes(obj)]


def operator_objects(index_get) -> list[K8sObject]:
    """Rendered objects for every NeMo CR the state holds, less those the state already holds by kind and name
    (``index_get(kind, namespace, name)``; the operator's real objects on a live read)."""
    out = []
    for kind in NEMO_CR_KINDS:
        for cr in index_get(kind):
            out += [o for o in rendered_objects(cr) if index_get(o.kind, o.namespace, o.name) is None]
    return out


RENDERERS.append(operator_objects)
CR_POD_RENDERERS.update(dict.fromkeys(NEMO_CR_KINDS, render_pod))
