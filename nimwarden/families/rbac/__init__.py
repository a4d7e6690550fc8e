"""Family rbac: what the service accounts of the deployment's pods may do.

- ``judge``  RBAC-* over the roles bound to those service accounts
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from nimwarden.families import Family, for_controls
from nimwarden.k8s import source as k8s

CONTROLS = ("RBAC-WILDCARD-001 RBAC-SECRETS-001 RBAC-EXEC-001 RBAC-ESCALATE-001 RBAC-CLUSTERADMIN-001 "
            "RBAC-AUTOMOUNT-001 RBAC-UNBOUNDROLE-001")

FAMILY = Family(
    name="rbac",
    schema={"kubernetes.options.honor_annotations": Annotated[bool, Field(description="let annotations on a target exempt it from a control (default false)")]},
    options=("kubernetes.options.honor_annotations",),
    applies=for_controls(CONTROLS, lambda ctx: k8s.unavailable(ctx.target, ctx.deployment)),
)
