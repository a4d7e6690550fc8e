"""Family host: the running tritonserver process inspected with testinfra (``local://`` in the lab,
``kubectl://`` in a cluster through ``options.host.testinfra``): its user, whether it can write the
code and models it loads, and secrets in its environment.

- ``probe``  locate the server, read its process, directories and environment (redacted)
- ``judge``  HOST-*
"""

from __future__ import annotations

from nimwarden.families import Applicability, Family, for_controls, probes_something


def _no_server_named(ctx: Applicability) -> str | None:
    """A deployment that declares neither an endpoint nor options.host names no server process (a review of
    cluster state): there is nothing to inspect. With either (options.host.testinfra reaches the process
    through kubectl:// or ssh:// without endpoints), locating the server is the probe's job."""
    if (ctx.deployment.options or {}).get("host"):
        return None
    return probes_something(ctx)


FAMILY = Family(name="host", options=("deployments[].options.host",),
                applies=for_controls("HOST-USER-001 HOST-CODEDIRS-001 HOST-MODELRO-001 HOST-ENVSECRET-001", _no_server_named))
