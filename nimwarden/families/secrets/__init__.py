"""Family secrets: literal secrets, ConfigMaps, connection strings, pull secrets and rotation age in
the deployment's cluster state. Any secret found is reported redacted (first/last characters and a hash).

- ``judge``  SECRETS-* over a deployment's workloads
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from nimwarden.families import Family, for_controls
from nimwarden.k8s import source as k8s
from nimwarden.schema import Positive, Text

CONTROLS = "SECRETS-LITERAL-001 SECRETS-CONFIGMAP-001 SECRETS-CONNSTR-001 SECRETS-PULL-001 SECRETS-ROTATION-001"

FAMILY = Family(
    name="secrets",
    schema={"kubernetes.options.private_registries": Annotated[list[Text], Field(description="registries whose pulls need a pull secret (default [nvcr.io])")],
            "kubernetes.options.secret_max_age_days": Annotated[Positive, Field(description="SECRETS-ROTATION-001: oldest acceptable Secret (default 90)")]},
    options=("kubernetes.options.private_registries", "kubernetes.options.secret_max_age_days"),
    applies=for_controls(CONTROLS, lambda ctx: k8s.unavailable(ctx.target, ctx.deployment)),
)
