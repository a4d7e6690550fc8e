"""The ways in to a Triton or NIM workload, read from its objects: which container is Triton or a NIM,
which ports it serves (from the server's flags and the port names), and the Services, Ingresses,
HTTPRoutes and Routes in front of it. Used by :mod:`nimwarden.k8s.discovery`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nimwarden.k8s.exposure import routes
from nimwarden.k8s.model import ClusterState, K8sObject
from nimwarden.k8s.workloads import PodTemplate

NIM_IMAGE = re.compile(r"(?:^|/)nvcr\.io/nim/", re.I)  # NGC's NIM images, also behind a pull-through mirror
TRITON_PORTS = {8000: "http", 8001: "grpc", 8002: "metrics", 8080: "sagemaker"}
TRITON_PORT_FLAGS = {"--http-port": "http", "--grpc-port": "grpc", "--metrics-port": "metrics", "--sagemaker-port": "sagemaker"}

@dataclass(frozen=True)
class ServicePort:
    endpoint: str | None  # http, grpc, metrics, sagemaker; None when it cannot be told
    port: int
    name: str
    node_port: int | None = None


@dataclass(frozen=True)
class Way:
    """A Service in front of the workload (found in the state, or the one an operator creates)."""

    namespace: str
    name: str
    type: str  # ClusterIP, LoadBalancer, NodePort
    ports: tuple[ServicePort, ...]
    external: tuple[str, ...] = ()  # LoadBalancer status addresses
    inferred: bool = False

    @property
    def dns(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


@dataclass(frozen=True)
class Front:
    """An Ingress, HTTPRoute or Route that routes to one of the workload's Services."""

    ref: str
    host: str | None
    tls: bool
    path: str
    gateway: str  # what terminates it: "ingress class nginx", "Gateway ns/name", "OpenShift router"


def argv_tokens(container: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for part in [*(container.get("command") or ()), *(container.get("args") or ())]:
        out.extend(str(part).split())
    return out


def _image_repo(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return image[: len(image) - len(last)] + last.split(":")[0].split("@")[0]


def classify_container(container: Mapping[str, Any]) -> tuple[str, str] | None:
    """("triton" | "nim", why) for a container that runs Triton or a NIM, else None."""
    image = str(container.get("image") or "")
    name = container.get("name", "?")
    if NIM_IMAGE.search(image):
        return "nim", f"container {name} runs the NIM image {image}"
    for where in ("command", "args"):
        for part in container.get(where) or ():
            if any(tok.rsplit("/", 1)[-1] == "tritonserver" for tok in str(part).split()):
                return "triton", f"container {name} runs tritonserver ({where})"
    if "tritonserver" in _image_repo(image).lower():
        return "triton", f"container {name} runs the image {image}"
    return None


def flag_value(tokens: Sequence[str], flag: str) -> str | None:
    for i, tok in enumerate(tokens):
        if tok.startswith(flag + "="):
            return tok.split("=", 1)[1]
        if tok == flag and i + 1 < len(tokens):
            return tokens[i + 1]
    return None


def restricted_header(tokens: Sequence[str]) -> str | None:
    """``--http-restricted-api=<apis>:<header>=<value>``: the header name only; the value is a secret."""
    value = flag_value(tokens, "--http-restricted-api") or flag_value(tokens, "--grpc-restricted-protocol")
    if not value or ":" not in value:
        return None
    header = value.split(":", 1)[1].split("=", 1)[0].strip()
    return header if re.fullmatch(r"[A-Za-z0-9-]+", header) else None


def container_ports(containers: Iterable[Mapping[str, Any]], kind: str) -> dict[Any, str]:
    """Container port (number and name) -> endpoint name, from the server's flags and port names."""
    out: dict[Any, str] = {}
    for c in containers:
        tokens = argv_tokens(c)
        if kind == "triton":
            out.update({p: e for p, e in TRITON_PORTS.items()})
            for flag, endpoint in TRITON_PORT_FLAGS.items():
                value = flag_value(tokens, flag)
                if value and value.isdigit():
                    out[int(value)] = endpoint
        else:
            out[8000] = "http"
        for p in c.get("ports") or ():
            endpoint = _endpoint_of_name(str(p.get("name") or "")) or out.get(p.get("containerPort"))
            if endpoint:
                out[p.get("containerPort")] = endpoint
                if p.get("name"):
                    out[p["name"]] = endpoint
    return out


def _endpoint_of_name(name: str) -> str | None:
    n = name.lower()
    if "grpc" in n:
        return "grpc"
    if "metric" in n:
        return "metrics"
    if "sagemaker" in n:
        return "sagemaker"
    if n in ("http", "https", "api", "rest", "web", "inference", "http-api", "openai") or n.startswith("http"):
        return "http"
    return None


def _service_ports(service: K8sObject, by_target: Mapping[Any, str]) -> tuple[ServicePort, ...]:
    out = []
    for p in service.spec.get("ports") or ():
        port = p.get("port")
        if not isinstance(port, int):
            continue
        target = p.get("targetPort", port)
        endpoint = _endpoint_of_name(str(p.get("name") or "")) or by_target.get(target) or by_target.get(port)
        out.append(ServicePort(endpoint, port, str(p.get("name") or ""), p.get("nodePort")))
    return tuple(out)


def _external(service: K8sObject) -> tuple[str, ...]:
    ingress = ((service.body.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
    return tuple(str(i.get("ip") or i.get("hostname")) for i in ingress if i.get("ip") or i.get("hostname"))


def way_of(service: K8sObject, by_target: Mapping[Any, str]) -> Way:
    return Way(str(service.namespace), service.name, str(service.spec.get("type") or "ClusterIP"),
               _service_ports(service, by_target), _external(service))


def _gateway_of(obj: K8sObject) -> str:
    if obj.kind == "Ingress":
        cls = obj.spec.get("ingressClassName") or obj.annotations.get("kubernetes.io/ingress.class")
        return f"ingress class {cls}" if cls else "the cluster's default ingress controller"
    if obj.kind == "HTTPRoute":
        parents = [f"Gateway {p.get('namespace', obj.namespace)}/{p.get('name')}" for p in obj.spec.get("parentRefs") or ()
                   if p.get("name") and p.get("kind", "Gateway") == "Gateway"]
        return ", ".join(parents) or "a Gateway (no parentRefs)"
    return "OpenShift router"


def fronts_of(state: ClusterState, templates: Sequence[PodTemplate]) -> list[Front]:
    out = []
    for obj, hits in routes(state, templates):
        path = str(hits[0][2].get("path") or "/")
        if obj.kind == "Ingress":
            tls_hosts = {h for t in obj.spec.get("tls") or () for h in t.get("hosts") or ()}
            rules = obj.spec.get("rules") or ()
            hosts = sorted({rules[r].get("host") for r, _, _ in hits if 0 <= r < len(rules) and rules[r].get("host")})
            for host in hosts or [None]:
                out.append(Front(obj.ref, host, bool(host in tls_hosts or (host is None and tls_hosts)), path, _gateway_of(obj)))
        elif obj.kind == "HTTPRoute":
            for host in obj.spec.get("hostnames") or [None]:
                out.append(Front(obj.ref, host, False, path, _gateway_of(obj)))
        else:
            out.append(Front(obj.ref, obj.spec.get("host"), bool(obj.spec.get("tls")), path, _gateway_of(obj)))
    return out
