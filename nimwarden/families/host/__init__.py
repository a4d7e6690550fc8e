"""Family host: the running tritonserver process inspected with testinfra (``local://`` in the lab,
``kubectl://`` in a cluster through ``options.host.testinfra``): its user, whether it can write the
code and models it loads, and secrets in its environment.

- ``probe``  locate the server, read its process, directories and environment (redacted)
- ``judge``  HOST-*
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from nimwarden.families import Applicability, Family, for_controls, probes_something
from nimwarden.schema import Section, Text


def _digits(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value  # "${lab.x.pid}" becomes "1234"


class HostSection(Section):
    """``deployments[].options.host``: where the server process is."""

    pid: Annotated[int, BeforeValidator(_digits), Field(ge=1),
                   WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": r"^(\d+|\$\{lab\.[^}]+\})$"}],
                                   "description": "the tritonserver process (behind a port-forward its --http-port is not the one probed)"})] = None
    testinfra: Text = Field(None, description="testinfra host spec: kubectl://POD?namespace=NS&container=C, ssh://…")



def _no_server_named(ctx: Applicability) -> str | None:
    """A deployment that declares neither an endpoint nor options.host names no server process (a review of
    cluster state): there is nothing to inspect. With either (options.host.testinfra reaches the process
    through kubectl:// or ssh:// without endpoints), locating the server is the probe's job."""
    if (ctx.deployment.options or {}).get("host"):
        return None
    return probes_something(ctx)


FAMILY = Family(name="host", schema={"deployments[].options.host": HostSection}, options=("deployments[].options.host",),
                applies=for_controls("HOST-USER-001 HOST-CODEDIRS-001 HOST-MODELRO-001 HOST-ENVSECRET-001", _no_server_named))
