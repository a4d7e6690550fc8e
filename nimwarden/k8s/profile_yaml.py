"""A commented target profile from a :class:`~nimwarden.k8s.discovery.Discovery`.

The profile is written as text, not dumped, so every deployment carries the comments a reader
needs: what was found and why it counts as Triton, NIM or NeMo, which Services and fronts publish it,
which endpoints the probe position can reach and which it cannot (commented out, with what to fill
in), and a ``DECIDE`` line for every choice discovery cannot make (exposure, credentials).

- ``scope`` lists exactly the addresses the written endpoints use (plus the Service names when no
  endpoint could be written, so the profile stays valid): never a CIDR, never wider than what was
  discovered.
- endpoints: from ``cluster-internal``, the Service DNS names; from ``external``, LoadBalancer
  addresses and the hosts of Ingresses / Routes (NodePorts and ClusterIP-only Services are
  commented out: the user fills in the address). With ``probes=False`` (a manifests review) every
  endpoint is commented out and only cluster state is judged.
- credentials: placeholders naming an environment variable (``NIMWARDEN_<DEPLOYMENT>_…``), never a
  value; the Triton restricted-API header is the one the server's own flags name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from nimwarden.k8s.discovery import Discovery, Found

POSITIONS = ("external", "cluster-internal")


@dataclass(frozen=True)
class ProfileSource:
    source: str  # live | snapshot | manifests
    paths: tuple[str, ...] = ()
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: tuple[str, ...] = ()


@dataclass
class Planned:
    """One deployment's endpoints as the probe position reaches them, and what is left to decide."""

    endpoints: dict[str, str] = field(default_factory=dict)
    commented: list[str] = field(default_factory=list)  # endpoint lines the user must fill in
    decide: list[str] = field(default_factory=list)


def _q(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML string: quoted, escaped


def _env_name(deployment: str, what: str) -> str:
    return "NIMWARDEN_" + re.sub(r"[^A-Z0-9]+", "_", f"{deployment}_{what}".upper()).strip("_")


def _scheme(endpoint: str, found: Found) -> str:
    if endpoint == "grpc":
        return "grpcs" if found.grpc_tls else "grpc"
    return "http"


def plan_endpoints(found: Found, position: str, probes: bool = True) -> Planned:
    plan = Planned()

    def put(name: str, url: str) -> None:
        if name in plan.endpoints or any(line.startswith(f"{name}:") for line in plan.commented):
            return
        if probes:
            plan.endpoints[name] = url
        else:
            plan.commented.append(f"{name}: {url}")

    for way in found.ways:
        for p in way.ports:
            if p.endpoint is None:
                continue
            scheme = _scheme(p.endpoint, found)
            if position == "cluster-internal":
                put(p.endpoint, f"{scheme}://{way.dns}:{p.port}")
            elif way.type == "LoadBalancer" and way.external:
                put(p.endpoint, f"{scheme}://{way.external[0]}:{p.port}")
            elif way.type in ("LoadBalancer", "NodePort") and p.node_port:
                plan.commented.append(f"{p.endpoint}: {scheme}://NODE-ADDRESS:{p.node_port}   # NodePort of Service {way.name}")
            elif way.type == "LoadBalancer":
                plan.commented.append(f"{p.endpoint}: {scheme}://LOADBALANCER-ADDRESS:{p.port}   # Service {way.name} has no address yet")
            else:
                plan.commented.append(f"{p.endpoint}: {scheme}://{way.dns}:{p.port}   # ClusterIP: reachable from inside the cluster only")
    for front in found.fronts:
        if front.host:
            put("gateway", f"{'https' if front.tls else 'http'}://{front.host}")
            if front.tls:
                put("gateway_http", f"http://{front.host}")
        else:
            plan.commented.append(f"gateway: https://GATEWAY-ADDRESS   # {front.ref} names no host: the address of {front.gateway}")
    if position == "external" and not plan.endpoints and probes:
        plan.decide.append("nothing discovery found is reachable from outside the cluster: fill in the commented endpoints "
                           "(a port-forward, the gateway's address) or audit from inside (--position cluster-internal)")
    unknown = [f"{w.name}:{p.port}{'/' + p.name if p.name else ''}" for w in found.ways for p in w.ports if p.endpoint is None]
    if unknown:
        plan.decide.append(f"Service port(s) {', '.join(unknown)} could not be told apart as http/grpc/metrics: add them by hand")
    return plan


def _exposure(plan: Planned, kind: str = "triton") -> list[str]:
    names = [n for n in ("gateway", "gateway_http", "nemo_gateway") if n in plan.endpoints]
    # NeMo services are not meant to face the internet (the seed): nothing but a gateway may answer
    return names or ([] if kind == "nemo" else ["http"])


def _found_comment(f: Found) -> list[str]:
    lines = [f"  # {f.ref}: {f.why}"]
    for w in f.ways:
        ports = ", ".join(f"{p.port}{'/' + p.name if p.name else ''}{'→' + p.endpoint if p.endpoint else ''}" for p in w.ports)
        ext = f" at {', '.join(w.external)}" if w.external else ""
        lines.append(f"  #   Service {w.namespace}/{w.name} ({w.type}{ext}{', inferred' if w.inferred else ''}): {ports or 'no ports'}")
    for fr in f.fronts:
        lines.append(f"  #   in front: {fr.ref} {('https' if fr.tls else 'http') + '://' + fr.host if fr.host else '(no host)'}"
                     f"{fr.path if fr.path != '/' else ''} via {fr.gateway}")
    if not f.ways:
        lines.append("  #   no Service selects its pods: nothing can reach it over the network")
    lines += [f"  #   note: {n}" for n in f.notes]
    return lines


def _deployment(f: Found, plan: Planned, position: str) -> tuple[list[str], list[str]]:
    decide = list(plan.decide)
    out = _found_comment(f)
    out.append(f"  - name: {f.name}")
    out.append(f"    kind: {f.kind}")
    out.append("    expect: compliant")
    if plan.endpoints:
        out.append("    endpoints:")
        out += [f"      {n}: {_q(u)}" for n, u in plan.endpoints.items()]
        out += [f"      # {c}" for c in plan.commented]
    else:
        out.append("    endpoints: {}" + ("   # what the audit could probe once deployed / reachable:" if plan.commented else ""))
        out += [f"      # {c}" for c in plan.commented]
    exposure = _exposure(plan, f.kind)
    if plan.endpoints:
        why = ("only the gateway should answer from outside" if exposure and exposure[0] in ("gateway", "nemo_gateway")
               else "NeMo services are not meant to be reachable from outside the cluster" if f.kind == "nemo"
               else "which endpoints may answer from " + ("outside" if position == "external" else "inside the cluster"))
        out.append(f"    exposure: [{', '.join(exposure)}]   # DECIDE: {why}; anything else reachable is a finding")
        decide.append(f"exposure [{', '.join(exposure)}]: is that what may be reachable from the probe position?")
    sel = ", ".join(f"{_q(k)}: {_q(v)}" for k, v in sorted(f.selector.items()))
    unit = f", unit: {_q(f.unit)}" if f.unit else ""  # one of several apply units of the manifests: only its workloads
    out.append(f"    kubernetes: {{namespace: {_q(f.namespace)}, selector: {{{sel}}}{unit}}}")
    creds = []
    if f.kind == "triton" and plan.endpoints:
        header = f.restricted_header or "admin-key"
        note = "the header its --http-restricted-api names" if f.restricted_header else "DECIDE: the header of --http-restricted-api"
        creds.append(f"      restricted_api: {{header: {_q(header)}, env: {_env_name(f.name, 'admin_key')}}}   # {note}")
    if "gateway" in plan.endpoints:
        creds.append(f"      gateway: {{header: Authorization, env: {_env_name(f.name, 'gateway_token')}}}   # a caller's token")
    if creds:
        # Written commented out: a credential whose variable is unset stops the audit at load time (exit 2),
        # so the profile works as written and the user turns each one on once its variable is set.
        out.append("    # DECIDE: set these environment variables where the audit runs, then uncomment (values never go in this file)")
        out.append("    # credentials:")
        out += [f"    #{c[4:]}" for c in creds]
        names = re.findall(r"env: (NIMWARDEN_[A-Z0-9_]+)", "\n".join(creds))
        decide.append(f"set {', '.join(names)} where the audit runs and uncomment the credentials (until then those controls "
                      "probe without credentials)")
    return out, decide


def scope_of(plans: Sequence[tuple[Found, Planned]]) -> list[str]:
    from urllib.parse import urlsplit

    hosts = [urlsplit(u).hostname for _, p in plans for u in p.endpoints.values()]
    hosts = [h for h in dict.fromkeys(hosts) if h]
    if not hosts:  # nothing will be probed; the profile still names only what was found
        hosts = list(dict.fromkeys(w.dns for f, _ in plans for w in f.ways))
    return hosts


def render_profile(discovery: Discovery, *, name: str, position: str, source: ProfileSource, probes: bool = True,
                   written_at: str = "") -> tuple[str, dict[str, list[str]]]:
    """The profile's text, and per deployment the decisions left to the user."""
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {', '.join(POSITIONS)}")
    plans = [(f, plan_endpoints(f, position, probes)) for f in discovery.found]
    decisions: dict[str, list[str]] = {}
    body: list[str] = []
    for f, plan in plans:
        lines, decide = _deployment(f, plan, position)
        body += [*lines, ""]
        decisions[f.name] = decide
    scope = scope_of(plans) or ["127.0.0.1"]
    head = [
        f"# Target profile written by `nimwarden discover` from {discovery.source}" + (f" at {written_at}" if written_at else ""),
        "# Review the lines marked DECIDE, then: nimwarden validate --target THIS-FILE && nimwarden audit --target THIS-FILE",
        f"name: {_q(name)}",
        ("# Only these names are ever probed: the addresses the endpoints below use, as discovered (never wider)."
         if any(p.endpoints for _, p in plans) else
         "# Nothing is probed (every endpoint is commented out); scope names only the Services discovery found."),
        "scope:",
        *[f"  - {_q(h)}" for h in scope],
        f"probe_position: {position}   # where the audit runs: {'outside the cluster' if position == 'external' else 'a pod inside it'}",
        "timeouts: {connect_s: 3, read_s: 10}",
        "kubernetes:",
        f"  source: {source.source}",
    ]
    if source.paths:
        head.append(f"  paths: [{', '.join(_q(p) for p in source.paths)}]")
    if source.kubeconfig:
        head.append(f"  kubeconfig: {_q(source.kubeconfig)}")
    if source.context:
        head.append(f"  context: {_q(source.context)}")
    namespaces = source.namespaces or tuple(sorted({f.namespace for f in discovery.found}))
    if namespaces and source.source == "live":
        head.append(f"  namespaces: [{', '.join(_q(n) for n in namespaces)}]   # where the deployments are; widen to audit more")
    head.append("  pss_level: restricted")
    if not discovery.found:
        head.append("# discovery found no Triton, NIM or NeMo workload; add deployments by hand")
        body = ["  - name: none-found", "    kind: triton", "    expect: compliant", "    endpoints: {}", ""]
    return "\n".join(head + ["deployments:"] + body).rstrip() + "\n", decisions


def table(discovery: Discovery, decisions: dict[str, list[str]], position: str, probes: bool = True) -> str:
    """The short table ``nimwarden discover`` prints: what was found, and what is left to decide."""
    rows = [("DEPLOYMENT", "KIND", "NAMESPACE", "FOUND AS", "ENDPOINTS", "IN FRONT")]
    for f in discovery.found:
        plan = plan_endpoints(f, position, probes)
        eps = " ".join(plan.endpoints) or ("(none: cluster state only)" if not probes else "(fill in)")
        front = ", ".join(sorted({fr.gateway for fr in f.fronts})) or "-"
        rows.append((f.name, f.kind, f.namespace, f.ref.split("/")[0], eps, front))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(0, f"found {len(discovery.found)} Triton/NIM/NeMo deployment(s) in {discovery.source}")
    if discovery.unreadable:
        lines.append("could not read: " + "; ".join(f"{k} ({v})" for k, v in sorted(discovery.unreadable.items())))
    todo = [(n, d) for n, ds in decisions.items() for d in ds]
    if todo:
        lines.append("still to decide:")
        lines += [f"  - {n}: {d}" for n, d in todo]
    elif discovery.found:
        lines.append("still to decide: nothing" + (" (cluster state only: no endpoint is probed)" if not probes else ""))
    return "\n".join(lines)
