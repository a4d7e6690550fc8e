"""NETPOL-ENFORCED-001 in a cluster: plan the flows from the model, probe them from probe pods.

Opt-in: the profile sets ``kubernetes.options.network_policy.probe`` (at least
``image``) and the source namespaces carry the RBAC of
``deploy/k8s/opt-in/rbac-netpol-probes.yaml``; otherwise the control is
``not_applicable`` and says how to turn it on. Needs ``kubernetes.source: live``.

- **Destination**: one Running pod of the deployment (namespace + selector) with
  an IP, at its declared container ports. Its IP must lie inside the target's
  scope, or nothing is probed (``error`` naming the address).
- **Sources**: the declared ``probe.positions`` (namespace + labels), or derived
  from the model: the cluster's pods grouped by namespace and labels, one per
  group, chosen so that every destination port has an expected-allowed source
  (it shows the destination is alive, without which a silent block means
  nothing) and then as many expected-blocked groups as ``max_positions`` allows,
  one namespace at a time. System namespaces are never chosen automatically.
- **Liveness**: a silent block only counts where something reached that port.
  Besides the allowed probe flows, a Ready destination whose readiness probe
  connects to a port counts as reached there (the kubelet's own observation).
- **Flows**: :func:`nimwarden.netpol.plan.plan_flows` — every expected-blocked pair
  and a sample of the expected-allowed ones.

A probe pod has its own IP, not its source's: a policy rule that admits the
source by ``ipBlock`` (rare for pods) is judged by the model against the
source's IP, which the probe pod does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from nimwarden.netpol.enforcement import ALLOWED, LIVENESS, Flow, LiveProbe, Observation
from nimwarden.netpol.matrix import PortKey, ReachabilityMatrix
from nimwarden.netpol.objects import Inventory, Pod, parse_pod
from nimwarden.netpol.plan import Destination, plan_flows
from nimwarden.outcome import Outcome, errored, not_applicable

SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
PROBE_PROTOCOLS = ("TCP", "UDP")


def probe_pod_options(target: Any):
    """The profile's probe-pod options, None when in-cluster probes are off; ConfigError when malformed."""
    from nimwarden.errors import ConfigError
    from nimwarden.k8s import source as k8s
    from nimwarden.k8s.probe_pods import probe_options_from_mapping

    section = k8s.option(target, "network_policy", {}) or {}
    if not isinstance(section, Mapping) or section.get("probe") is None:
        return None
    try:
        return probe_options_from_mapping(section["probe"])
    except ValueError as exc:
        field, _, why = str(exc).partition(": ")
        raise ConfigError(str(target.path), f"kubernetes.options.{field}", why) from None


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def destination_pod(state: Any, namespace: str | None, selector: Mapping[str, str]) -> tuple[Pod, Mapping[str, Any]] | None:
    """A Running pod of the deployment with an IP (the first by name): parsed for the model, and as read."""
    running = []
    for o in state.of_kind("Pod", namespace):
        status = o.body.get("status") or {}
        if status.get("phase") == "Running" and status.get("podIP") and _matches(o.labels, selector) and not o.spec.get("hostNetwork"):
            running.append(o)
    if not running:
        return None
    body = sorted(running, key=lambda o: (o.namespace or "", o.name))[0].body
    return parse_pod(dict(body, kind="Pod")), body


def kubelet_checked_ports(pod: Mapping[str, Any]) -> set[PortKey]:
    """Ports the kubelet proves alive: the pod is Ready and a readiness probe connects to them (tcpSocket, httpGet, grpc).

    The kubelet runs readiness probes against the pod IP, so a Ready pod answers
    on those ports. That lets a silent block on such a port count as a block even
    when no probe position is allowed to reach it (see nimwarden.netpol.enforcement).
    """
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
    if not ready:
        return set()
    out = set()
    for c in (pod.get("spec") or {}).get("containers") or ():
        probe = c.get("readinessProbe") or {}
        for kind in ("tcpSocket", "httpGet", "grpc"):
            port = (probe.get(kind) or {}).get("port")
            if isinstance(port, str) and not port.isdigit():
                port = next((p.get("containerPort") for p in c.get("ports") or () if p.get("name") == port), None)
            if port is not None:
                out.add(PortKey(int(port), "TCP"))
    return out


def derive_sources(inv: Inventory, dest: Pod, keys: tuple[PortKey, ...], max_positions: int,
                   exclude: Mapping[str, str] | None = None) -> list[Pod]:
    """Representative source pods: liveness first (an allowed source per port), then blocked ones, namespaces interleaved."""
    from nimwarden.k8s.probe_pods import copied_labels

    groups: dict[tuple, Pod] = {}
    for p in inv.pods:
        if p.key == dest.key or p.namespace in SYSTEM_NAMESPACES:
            continue
        if exclude is not None and p.namespace == dest.namespace and _matches(p.labels, exclude):
            continue  # the deployment's own replicas
        group = (p.namespace, tuple(sorted(copied_labels(p.labels).items())))
        groups.setdefault(group, p)
    reps = [groups[g] for g in sorted(groups)]
    if not reps:
        return []
    matrix = ReachabilityMatrix(inv, keys)
    expect = {p.key: tuple(matrix.allowed(p.key, dest.key, k.port, k.protocol) for k in keys) for p in reps}
    chosen: list[Pod] = []
    for i in range(len(keys)):
        if any(expect[c.key][i] for c in chosen):
            continue
        first = next((p for p in reps if expect[p.key][i] and p not in chosen), None)
        if first is not None:
            chosen.append(first)
    blocked = [p for p in reps if p not in chosen and not all(expect[p.key])]
    by_ns: dict[str, list[Pod]] = {}
    for p in blocked:
        by_ns.setdefault(p.namespace, []).append(p)
    while len(chosen) < max_positions and any(by_ns.values()):
        for ns in sorted(by_ns):
            if by_ns[ns] and len(chosen) < max_positions:
                chosen.append(by_ns[ns].pop(0))
    return chosen[:max(max_positions, 1)]


def unavailable(target: Any, deployment: Any) -> str | None:
    """Why probe pods cannot judge this deployment's network, or None."""
    from nimwarden.k8s.probe_pods import RBAC_FILE

    if probe_pod_options(target) is None:
        return ("in-cluster reachability probes are off: set kubernetes.options.network_policy.probe.image in the profile "
                f"and apply {RBAC_FILE} in the source namespaces to probe from short-lived probe pods")
    if target.kubernetes.source != "live":
        return f"probe pods need a live cluster; the profile's kubernetes source is {target.kubernetes.source}"
    if not deployment.kubernetes.namespace and not deployment.kubernetes.selector:
        return f"deployment {deployment.name} declares no kubernetes namespace or selector"
    return None


def enforcement_attempt(target: Any, deployment: Any) -> LiveProbe | Outcome:
    from nimwarden.families.network_policy.inventory import inventory_attempt
    from nimwarden.k8s import source as k8s
    from nimwarden.k8s.live import client_configuration
    from nimwarden.k8s.probe_pods import PodRunner, probe_labels
    from nimwarden.net.reach import Position, probe_attempt
    from nimwarden.outcome import incomplete

    reason = unavailable(target, deployment)
    if reason:
        return not_applicable(reason)
    options = probe_pod_options(target)
    source, ref = target.kubernetes, deployment.kubernetes
    inv = inventory_attempt(target)
    if isinstance(inv, Outcome):
        return inv
    bad = incomplete(inv)
    if bad:
        return bad
    inventory = inv.observation
    read = k8s.cluster_state(source)
    state = read.observation
    found = destination_pod(state, ref.namespace, ref.selector)
    if found is None:
        return errored(f"no Running pod of deployment {deployment.name} ({ref.namespace or '*'}, {dict(ref.selector)}) has an IP to probe")
    dest, dest_body = found
    if not target.in_scope(dest.ip):
        return errored(f"pod {dest.key} has IP {dest.ip}, outside the scope of target {target.name!r}; add the pod network to `scope` "
                       "to probe it (nothing was sent)")
    keys = tuple(sorted({PortKey(cp.port, cp.protocol) for cp in dest.ports if cp.protocol in PROBE_PROTOCOLS}, key=lambda k: (k.port, k.protocol)))
    if not keys:
        return not_applicable(f"pod {dest.key} declares no TCP or UDP container ports to probe")
    pods = [p for p in inventory.pods if p.key != dest.key] + [dest]
    if options.positions:
        chosen = [Pod(ns, f"nimwarden-probe-{i}", dict(labels)) for i, (ns, labels) in enumerate(options.positions)]
    else:
        chosen = derive_sources(Inventory(inventory.namespaces, tuple(pods), inventory.policies), dest, keys, options.max_positions, ref.selector)
    if not chosen:
        return not_applicable("no source position: the cluster has no other pods outside the system namespaces, and the profile declares none")
    runner = PodRunner(client_configuration(source.kubeconfig, source.context), options)
    # The model judges each flow from the probe pod as it will be: the labels it really carries
    # (controller-identity labels dropped, nimwarden's added), under the key of the source it stands for.
    sources = [Pod(s.namespace, s.name, probe_labels(s.labels, runner.run_id)) for s in chosen]
    replaced = {s.key for s in sources}
    probe_inv = Inventory(inventory.namespaces, tuple(p for p in pods if p.key not in replaced) + tuple(sources), inventory.policies, inventory.skipped)
    flows = plan_flows(probe_inv, [s.key for s in sources], [Destination(dest.key, dest.ip, keys)], allowed_sample=2)

    def position(src: Pod) -> Position:
        return Position(f"probe pod in {src.namespace} as {src.key}", runner=lambda job, deadline: runner.run(src.namespace, src.labels, job, deadline))

    positions = {s.key: position(s) for s in chosen}
    try:
        probed = probe_attempt(flows, positions, timeout_s=options.connect_timeout_s, concurrency=16 * len(positions),
                               max_agents=options.max_parallel)
    finally:
        runner.close()
    checked = sorted(kubelet_checked_ports(dest_body) & set(keys), key=lambda k: (k.port, k.protocol))
    if checked and not incomplete(probed):
        kubelet = [Observation(Flow("kubelet", dest.key, dest.ip, k.port, k.protocol, True, "the kubelet's readiness probe", LIVENESS), ALLOWED,
                               f"pod Ready: the kubelet's readiness probe connects to {k}") for k in checked]
        probed = replace(probed, observation=[*probed.observation, *kubelet])
    evidence = {"probe_run": runner.run_id, "probe_objects": list(runner.created), "leftovers": list(runner.leftovers),
                "destination": f"{dest.key} {dest.ip}", "positions": [s.key for s in sources]}
    return LiveProbe(probed, f"NetworkPolicies read from {state.source}", f"{deployment.name} ({dest.key} via probe pods)", evidence)
