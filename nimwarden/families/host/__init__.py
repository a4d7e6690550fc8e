"""Family host: the running tritonserver process inspected with testinfra (``local://`` in the lab,
``kubectl://`` in a cluster through ``options.host.testinfra``): its user, whether it can write the
code and models it loads, and secrets in its environment.

- ``probe``  locate the server, read its process, directories and environment (redacted)
- ``judge``  HOST-*
"""

from __future__ import annotations

from nimwarden.families import Family

FAMILY = Family(name="host", options=("deployments[].options.host",))
