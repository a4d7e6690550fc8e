"""Family pod-security: the deployment's pod templates against the Pod Security Standards (our own
evaluator, checked against upstream's fixtures) and the NIM-specific securityContext controls.

- ``pss``, ``pss_checks``  the PSS evaluator (levels, versions, every upstream check)
- ``judge``                POD-* over a deployment's pod templates
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from nimwarden.families import Family, for_controls
from nimwarden.k8s import source as k8s
from nimwarden.schema import problem


def _pss_version(value: str) -> str:
    if not re.fullmatch(r"latest|v?1\.\d+", value.strip()):
        raise problem(f"must be 'latest' or 'v1.N' (a Kubernetes minor version), got {value!r}")
    return value


PssVersion = Annotated[str, AfterValidator(_pss_version),
                       Field(description="Pod Security Standards version: latest or v1.N", json_schema_extra={"pattern": r"^(latest|v?1\.\d+)$"})]

CONTROLS = ("POD-PSS-001 POD-NSLABELS-001 POD-NONROOT-001 POD-SECCOMP-001 POD-PRIVESC-001 POD-CAPS-001 "
            "POD-ROROOT-001 POD-MODELRO-001 POD-GPUPRIV-001 POD-HOSTPATH-001")

FAMILY = Family(
    name="pod-security",
    schema={"kubernetes.options.pss_version": PssVersion},
    options=("kubernetes.pss_level", "kubernetes.options.pss_version"),
    applies=for_controls(CONTROLS, lambda ctx: k8s.unavailable(ctx.target, ctx.deployment)),
)
