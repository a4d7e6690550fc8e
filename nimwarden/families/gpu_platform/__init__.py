"""Family gpu-platform: what a NIM or Triton deployment runs on — the GPU Operator stack (Container
Toolkit, device plugin, DCGM Exporter, the operator) and the multi-node runtime (Ray).

- ``stack``  the stack's components and settings as the cluster state shows them (images, ClusterPolicy)
- ``cves.yaml``  NVIDIA's bulletins for the stack, the GPU driver included (dated, versioned data)
- ``ray.yaml`` / ``ray_versions``  Ray's own advisories (dated) and RAY-VERSION
- ``judge``  GPUSTACK-VERSION / -SETTINGS / -DCGM / -PODREAD, RAY-EXPOSE / -DASHBOARD / -PORTS / -NETPOL
- ``probe``  the read-only live probes (DCGM Exporter metrics and pprof index, Ray dashboard, Ray GCS and
  client server reachability)
"""

from __future__ import annotations

from nimwarden.families import Applicability, Family, needs_endpoint
from nimwarden.k8s import source as k8s


def _data(target) -> dict:
    from nimwarden.families.gpu_platform import ray_versions
    from nimwarden.families.gpu_platform.judge import load_table

    return {"gpu_stack_cves": load_table().stamp(), "ray_advisories": ray_versions.load_table().stamp()}


def _cluster(ctx: Applicability) -> str | None:
    return k8s.unavailable(ctx.target)


def _deployment_cluster(ctx: Applicability) -> str | None:
    return k8s.unavailable(ctx.target, ctx.deployment)


def _ray_ports(ctx: Applicability) -> str | None:
    from nimwarden.families.gpu_platform.probe import RAY_PORT_ENDPOINTS

    if not any(ctx.deployment.endpoint(n) is not None for n in RAY_PORT_ENDPOINTS):
        return f"deployment {ctx.deployment.name} declares no ray_gcs or ray_client endpoint"
    if ctx.target.probe_position != "external":
        return ("probed from inside the cluster, where the Ray cluster's own nodes must reach the GCS and client server; "
                "RAY-NETPOL-001 judges who else may")
    return None


FAMILY = Family(
    name="gpu-platform",
    data=_data,
    applies={
        "GPUSTACK-VERSION-001": _cluster,
        "GPUSTACK-SETTINGS-001": _cluster,
        "GPUSTACK-PODREAD-001": _cluster,
        "RAY-EXPOSE-001": _cluster,
        "GPUSTACK-DCGM-001": needs_endpoint("dcgm"),
        "RAY-DASHBOARD-001": needs_endpoint("ray"),
        "RAY-VERSION-001": needs_endpoint("ray"),
        "RAY-PORTS-001": _ray_ports,
        "RAY-NETPOL-001": _deployment_cluster,
    },
)
