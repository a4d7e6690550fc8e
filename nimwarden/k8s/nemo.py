"""Which workloads are NeMo, and which NeMo service each one is: the NeMo Platform (every service on one
API port, 8080), the chart's Envoy proxy in front of it, the NeMo Guardrails server (open source), and the
legacy per-port microservices (Data Store, Entity Store, Customizer, Evaluator, Guardrails, Deployment
Management, NIM Proxy), whether the NIM Operator renders them from its NeMo custom resources or a chart
runs them as Deployments.

A workload is told by its owner (a NeMo CR of the NIM Operator, or a Deployment such a CR owns), by its
image (``nvcr.io/nvidia/nemo-microservices/<service>``, ``nvcr.io/nvidia/nemo-platform/nmp-api``, also behind
a pull-through mirror), by its command (``nemo services run``, ``nemoguardrails server``) or by a port only
NeMo uses (7331, the Evaluator/Guardrails port of NVIDIA's port table; 9009 beside 8000, the Customizer's
callback). Shared by discovery and the nemo family's cluster-state judges.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The NIM Operator's NeMo custom resources (apps.nvidia.com/v1alpha1; api/apps/v1alpha1/nemo_*_types.go in
# NVIDIA/k8s-nim-operator) and the service each one runs.
NEMO_CR_KINDS = {
    "NemoDatastore": "datastore",
    "NemoEntitystore": "entitystore",
    "NemoCustomizer": "customizer",
    "NemoEvaluator": "evaluator",
    "NemoGuardrail": "guardrails",
}


@dataclass(frozen=True)
class NemoService:
    key: str  # datastore, entitystore, … platform, platform-controller, gateway, guardrails-server
    title: str
    endpoint: str | None  # the target profile's endpoint name; None: not an API a probe reaches
    ports: tuple[int, ...]  # the container ports it serves by default (NIM Operator constants, chart values)
    legacy: bool = True  # a per-port microservice with no authentication of its own


SERVICES = {s.key: s for s in (
    # Container ports: k8s-nim-operator api/apps/v1alpha1 (DatastoreAPIPort 3000, EntitystoreAPIPort 8000,
    # CustomizerAPIPort 8000 + CustomizerInternalPort 9009, EvaluatorAPIPort 7331, GuardrailAPIPort 8000; the
    # seed's port table lists the Guardrails microservice on 7331, its Helm chart's port).
    NemoService("datastore", "NeMo Data Store", "nemo_datastore", (3000,)),
    NemoService("entitystore", "NeMo Entity Store", "nemo_entitystore", (8000,)),
    NemoService("customizer", "NeMo Customizer", "nemo_customizer", (8000, 9009)),
    NemoService("evaluator", "NeMo Evaluator", "nemo_evaluator", (7331,)),
    NemoService("guardrails", "NeMo Guardrails microservice", "nemo_guardrails", (8000, 7331)),
    NemoService("deployment-management", "NeMo Deployment Management", "nemo_deployment", (8000,)),
    NemoService("nim-proxy", "NeMo NIM Proxy", "nim_proxy", (8000,)),
    # The NeMo Platform chart (NVIDIA-NeMo/nemo-platform k8s/helm): api.service.port 8080; the core controller
    # runs the same image with --controller-group; the Envoy proxy (envoyProxy.service.port 8080) fronts the API.
    NemoService("platform", "NeMo Platform API", "nemo", (8080,), legacy=False),
    NemoService("platform-controller", "NeMo Platform controller", None, (8080,), legacy=False),
    NemoService("gateway", "NeMo Platform Envoy proxy", "nemo_gateway", (8080,), legacy=False),
    NemoService("guardrails-server", "NeMo Guardrails server (open source)", "guardrails", (8000,)),
)}

# The last path part of a NeMo image → the service (images named in NVIDIA's Helm docs and the operator samples).
_LEGACY_IMAGES = {
    "datastore": "datastore", "entity-store": "entitystore", "customizer-api": "customizer", "customizer": "customizer",
    "evaluator": "evaluator", "guardrails": "guardrails", "nemo-deployment-management": "deployment-management",
    "deployment-management": "deployment-management", "nemo-nim-proxy": "nim-proxy", "nim-proxy": "nim-proxy",
}
LEGACY_IMAGE = re.compile(r"(?:^|/)nvcr\.io/nvidia/nemo-microservices/([a-z0-9._-]+)", re.I)
PLATFORM_IMAGE = re.compile(r"(?:^|/)nvcr\.io/nvidia/nemo-platform/nmp-api\b", re.I)
PLATFORM_COMPONENT = "app.kubernetes.io/component"  # nmp-api, nmp-core-controller, nmp-envoy (the chart's labels)


def _repo_name(image: str) -> str:
    return image.rsplit("/", 1)[-1].split("@")[0].split(":")[0].lower()


def _tokens(container: Mapping[str, Any]) -> list[str]:
    return [t for part in [*(container.get("command") or ()), *(container.get("args") or ())] for t in str(part).split()]


def classify(container: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(service key, why) for a container that runs a NeMo service, else None."""
    image = str(container.get("image") or "")
    name = container.get("name", "?")
    tokens = _tokens(container)
    component = str((labels or {}).get(PLATFORM_COMPONENT) or "")
    by_command = "nemo" in [t.rsplit("/", 1)[-1] for t in tokens] and "services" in tokens and "run" in tokens
    if PLATFORM_IMAGE.search(image) or by_command:
        controller = component == "nmp-core-controller" or any(t.startswith("--controller") for t in tokens)
        key = "platform-controller" if controller else "platform"
        how = f"the image {image}" if PLATFORM_IMAGE.search(image) else "`nemo services run`"
        return key, f"container {name} runs the NeMo Platform ({how})"
    m = LEGACY_IMAGE.search(image)
    if m and _repo_name(image) in _LEGACY_IMAGES:
        key = _LEGACY_IMAGES[_repo_name(image)]
        return key, f"container {name} runs the {SERVICES[key].title} image {image}"
    if any(t.rsplit("/", 1)[-1] == "nemoguardrails" for t in tokens) and "server" in tokens:
        return "guardrails-server", f"container {name} runs `nemoguardrails server`"
    if component == "nmp-envoy" or (_repo_name(image) == "envoy" and component.startswith("nmp")):
        return "gateway", f"container {name} is the NeMo Platform chart's Envoy proxy ({image})"
    ports = {p.get("containerPort") for p in container.get("ports") or ()}
    if 7331 in ports:
        return "evaluator", f"container {name} serves port 7331 (NeMo Evaluator/Guardrails in NVIDIA's port table)"
    if {8000, 9009} <= ports:
        return "customizer", f"container {name} serves 8000 and 9009 (the NeMo Customizer and its callback port)"
    return None


def service_of(tpl: Any) -> tuple[NemoService, str] | None:
    """The NeMo service a pod template runs (a NeMo CR's rendered pod, or a workload whose main container is
    NeMo), with why; None for anything else."""
    owner = tpl.owner
    if owner.kind in NEMO_CR_KINDS:
        return SERVICES[NEMO_CR_KINDS[owner.kind]], f"a {owner.kind} (NIM Operator)"
    for ref in owner.metadata.get("ownerReferences") or ():
        if ref.get("kind") in NEMO_CR_KINDS:
            return SERVICES[NEMO_CR_KINDS[ref["kind"]]], f"rendered by the NIM Operator for {ref['kind']}/{ref.get('name')}"
    for path, container in tpl.containers():
        if ".initContainers[" in path:
            continue
        hit = classify(container, tpl.labels)
        if hit:
            return SERVICES[hit[0]], hit[1]
    return None


def api_ports(tpl: Any, service: NemoService) -> list[tuple[int, str]]:
    """(port, container) the workload serves: the ports its main containers declare, else the service's defaults."""
    out = []
    for path, container in tpl.containers():
        if ".initContainers[" in path:
            continue
        for p in container.get("ports") or ():
            if isinstance(p.get("containerPort"), int) and (p.get("protocol") or "TCP") == "TCP":
                out.append((int(p["containerPort"]), str(container.get("name") or path)))
    return out or [(port, "(default)") for port in service.ports]
