"""Family pod-security: the deployment's pod templates against the Pod Security Standards (our own
evaluator, checked against upstream's fixtures) and the NIM-specific securityContext controls.

- ``pss``, ``pss_checks``  the PSS evaluator (levels, versions, every upstream check)
- ``judge``                POD-* over a deployment's pod templates
"""

from __future__ import annotations

from nimwarden.families import Family, for_controls
from nimwarden.k8s import source as k8s

CONTROLS = ("POD-PSS-001 POD-NSLABELS-001 POD-NONROOT-001 POD-SECCOMP-001 POD-PRIVESC-001 POD-CAPS-001 "
            "POD-ROROOT-001 POD-MODELRO-001 POD-GPUPRIV-001 POD-HOSTPATH-001")

FAMILY = Family(
    name="pod-security",
    options=("kubernetes.pss_level", "kubernetes.options.pss_version"),
    applies=for_controls(CONTROLS, lambda ctx: k8s.unavailable(ctx.target, ctx.deployment)),
)
