"""``kubernetes.options.network_policy``: the schema of the deployment's network requirements
(``requirements.requirements_from_mapping`` reads them; the seeds are the defaults) and of the opt-in
probe pods (``nimwarden.k8s.probe_pods``)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, WithJsonSchema

from nimwarden.k8s.probe_pods import ProbePodSection
from nimwarden.netpol.selectors import OPERATORS
from nimwarden.schema import Labels, Section, Text, problem
from nimwarden.schema.messages import kind_of


def _port(value: Any) -> Any:
    """``8000``, ``"53/UDP"`` or ``{port: 53, protocol: UDP}``."""
    if isinstance(value, dict):
        if set(value) - {"port", "protocol"} or "port" not in value:
            raise problem("a port mapping holds port and, optionally, protocol")
        port, proto = value["port"], value.get("protocol", "TCP")
    elif isinstance(value, str) and re.fullmatch(r"\d+(/[A-Za-z]+)?", value):
        number, _, proto = value.partition("/")
        port, proto = int(number), proto or "TCP"
    else:
        port, proto = value, "TCP"
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536 or proto not in ("TCP", "UDP", "SCTP"):
        raise problem(f"must be a port (1-65535), \"PORT/PROTOCOL\" (TCP, UDP, SCTP) or {{port:, protocol:}}, got {kind_of(value)}")
    return value


PortEntry = Annotated[Any, AfterValidator(_port), WithJsonSchema({
    "anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, {"type": "string", "pattern": r"^\d+(/(TCP|UDP|SCTP))?$"},
              {"type": "object", "properties": {"port": {"type": "integer"}, "protocol": {"enum": ["TCP", "UDP", "SCTP"]}},
               "required": ["port"], "additionalProperties": False}]})]
Ports = Annotated[list[PortEntry], Field(min_length=1)]


class SelectorRequirement(Section):
    key: Text
    operator: Literal[tuple(OPERATORS)]  # type: ignore[valid-type]
    values: list[str] = []


class LabelSelector(Section):
    matchLabels: Labels = {}
    matchExpressions: list[SelectorRequirement] = []


class DatabaseOwner(Section):
    namespace: Text = Field(None, description="default: the database's own namespace")
    podSelector: LabelSelector = None


class Database(Section):
    name: Text
    namespace: Text
    podSelector: LabelSelector = None
    ports: Ports
    owners: Annotated[list[DatabaseOwner], Field(min_length=1, description="the services that may reach it")]


class NetworkPolicySection(Section):
    """``kubernetes.options.network_policy``."""

    workload_namespaces: list[Text] = Field(None, description="default: the deployments' namespaces")
    require_egress_isolation: bool = True
    gateway_namespaces: list[Text] = Field(None, description="default [ingress-nginx]")
    api_ports: Ports = Field(None, description="default [8000]")
    egress_allowed: Ports = Field(None, description="default [443, 53, 53/UDP]")
    monitoring_namespaces: list[Text] = Field(None, description="default [monitoring]")
    metrics_ports: Ports = Field(None, description="default [8002]")
    databases: list[Database] = []
    probe: ProbePodSection | None = Field(None, description="opt-in in-cluster probe pods (NETPOL-ENFORCED-001)")
