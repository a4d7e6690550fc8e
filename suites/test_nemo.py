"""NeMo microservices (family nemo): the NeMo Platform, the Guardrails server and the legacy per-port
services probed read-only from the probe position (GET and OPTIONS, random nonexistent names only), and
NeMo resources judged from cluster state."""

from __future__ import annotations
