"""Live probes of the gpu-platform family: the DCGM Exporter's metrics and /debug/pprof index, the Ray
dashboard's version and job list, and whether the Ray GCS and client server accept a connection.
Read-only GETs through the bounded client, one of each: never ``/debug/pprof/profile`` or ``/trace``
(those take CPU), never a job submission; the Ray ports get a TCP connect and nothing else."""

from __future__ import annotations

from typing import Any

from nimwarden.net import http
from nimwarden.outcome import Attempt


def _get(target: Any, deployment: Any, endpoint: str, path: str, probe: str) -> Attempt[http.HttpResponse]:
    ep = deployment.endpoint(endpoint)
    limits = http.limits_for(target.timeouts)
    return http.request("GET", ep.url + path, probe=probe, limits=limits, guard=target.guard)


def dcgm(target: Any, deployment: Any) -> tuple[Attempt[http.HttpResponse], Attempt[http.HttpResponse]]:
    """``GET /metrics`` and ``GET /debug/pprof/`` (the index page only) on the DCGM Exporter."""
    return (_get(target, deployment, "dcgm", "/metrics", "gpu.dcgm"),
            _get(target, deployment, "dcgm", "/debug/pprof/", "gpu.dcgm"))


def ray(target: Any, deployment: Any) -> tuple[Attempt[http.HttpResponse], Attempt[http.HttpResponse]]:
    """``GET /api/version`` and ``GET /api/jobs/`` on the Ray dashboard: what a caller without a token sees."""
    return (_get(target, deployment, "ray", "/api/version", "ray.dashboard"),
            _get(target, deployment, "ray", "/api/jobs/", "ray.dashboard"))


def ray_version(target: Any, deployment: Any) -> Attempt[http.HttpResponse]:
    """``GET /api/version`` on the Ray dashboard: without credentials first, then with the profile's ``ray``
    credential (the head's token, sent as ``Authorization: Bearer``) when token auth refuses it."""
    ep = deployment.endpoint("ray")
    limits = http.limits_for(target.timeouts)
    first = http.request("GET", ep.url + "/api/version", probe="ray.version", limits=limits, guard=target.guard)
    headers = http.auth_headers(deployment.credentials.get("ray"))
    if not (first.completed and first.observation.status in (401, 403) and headers):
        return first
    return http.request("GET", ep.url + "/api/version", probe="ray.version", limits=limits, guard=target.guard, headers=headers,
                        redact_headers=tuple(k.lower() for k in headers))


RAY_PORT_ENDPOINTS = ("ray_gcs", "ray_client")


def ray_port_urls(deployment: Any) -> str:
    return ", ".join(deployment.endpoint(n).url for n in RAY_PORT_ENDPOINTS if deployment.endpoint(n) is not None)


def ray_ports(target: Any, deployment: Any) -> dict[str, Attempt[str]]:
    """A TCP connect (nothing sent) to each declared Ray GCS / client server endpoint."""
    limits = http.limits_for(target.timeouts)
    out = {}
    for name in RAY_PORT_ENDPOINTS:
        ep = deployment.endpoint(name)
        if ep is not None:
            out[name] = http.tcp_connect(ep.host, ep.port, probe="ray.port", limits=limits, guard=target.guard)
    return out
