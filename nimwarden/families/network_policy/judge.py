"""Judges for the network-policy family: declared policy (static) and enforced policy (live).

Pure functions: an :class:`~nimwarden.netpol.objects.Inventory` (or the
probe's Attempt of one) plus the deployment's
:class:`~nimwarden.families.network_policy.requirements.Requirements` in, an Outcome out. Every
finding names the policy and the rule; the logic lives in
:mod:`nimwarden.netpol`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nimwarden.families.network_policy import requirements as static
from nimwarden.netpol.enforcement import (
    BROKEN,
    LIVENESS,
    NOT_ENFORCED,
    UNJUDGED,
    LiveProbe,
    Observation,
    judge_observations,
    matrix_data,
)
from nimwarden.netpol.objects import Inventory, Pod
from nimwarden.netpol.picture import render_svg
from nimwarden.netpol.selectors import parse_selector
from nimwarden.outcome import (
    Attempt,
    Outcome,
    errored,
    fail_closed,
    failed,
    incomplete,
    not_applicable,
    passed,
)

InventoryInput = Inventory | Attempt[Inventory]


def _inventory(inv: InventoryInput) -> Inventory:
    """The inventory itself (judges take it bare or as the completed attempt that read it)."""
    return inv.observation if isinstance(inv, Attempt) else inv  # type: ignore[return-value]


def workload_pods(inv: Inventory, namespace: str | None, selector: Mapping[str, str] | None) -> list[Pod]:
    sel = parse_selector({"matchLabels": dict(selector or {})})
    return [p for p in (inv.pods if namespace is None else inv.pods_in(namespace)) if sel.matches(p.labels)]


def _scope_text(namespace: str | None, selector: Mapping[str, str] | None) -> str:
    sel = ",".join(f"{k}={v}" for k, v in (selector or {}).items()) or "any labels"
    return f"selector {sel} in namespace {namespace or '(any)'}"


def _verdict(violations: Sequence[static.Violation], ok: str, bad: str, **evidence: Any) -> Outcome:
    if not violations:
        return passed(ok, **evidence)
    severities = {v.severity for v in violations}
    severity = "low" if severities == {"low"} else None
    first = violations[0].describe()
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    return failed(f"{bad}: {first}{more}", severity=severity, violations=[v.describe() for v in violations], **evidence)


@fail_closed
def judge_default_deny(inv: InventoryInput, req: static.Requirements, namespaces: Iterable[str] | None = None) -> Outcome:
    """NETPOL-DEFAULTDENY: every NIM/Triton/NeMo namespace has default-deny ingress (and egress when required)."""
    inventory = _inventory(inv)
    nss = sorted(set(namespaces if namespaces is not None else req.workload_namespaces))
    if not nss:
        return not_applicable("no NIM/Triton/NeMo namespace is named (profile network_policy.workload_namespaces or the deployment's kubernetes.namespace)")
    violations, covered = static.check_default_deny(inventory, nss, req.require_egress_isolation)
    dirs = "ingress and egress" if req.require_egress_isolation else "ingress"
    return _verdict(violations, f"default-deny {dirs} covers {', '.join(nss)}", "default-deny missing", namespaces=nss, covered_by=covered)


def _pods_or_na(inventory: Inventory, namespace: str | None, selector: Mapping[str, str] | None) -> tuple[list[Pod], Outcome | None]:
    pods = workload_pods(inventory, namespace, selector)
    if not pods:
        return pods, not_applicable(f"no pods match {_scope_text(namespace, selector)}")
    return pods, None


def _sources_limited(inv: InventoryInput, namespace: str | None, selector: Mapping[str, str] | None, ports, allowed_namespaces,
                     who: str, require_path: bool, ok: str, bad: str) -> Outcome:
    """The ports of the selected pods admit only ``allowed_namespaces`` (NIMAPI, METRICS)."""
    inventory = _inventory(inv)
    pods, na = _pods_or_na(inventory, namespace, selector)
    if na:
        return na
    violations, seen = static.check_sources_limited_to_namespaces(inventory, pods, ports, allowed_namespaces, who, require_path=require_path)
    return _verdict(violations, ok.format(ports=", ".join(map(str, ports)), allowed=", ".join(allowed_namespaces), pods=len(pods)), bad,
                    admitted=seen, pods=[p.key for p in pods])


@fail_closed
def judge_api_sources(inv: InventoryInput, req: static.Requirements, namespace: str | None, selector: Mapping[str, str] | None) -> Outcome:
    """NETPOL-NIMAPI: the API port admits only the gateway namespace."""
    return _sources_limited(inv, namespace, selector, req.api_ports, req.gateway_namespaces, "the gateway namespace", True,
                            "API port {ports} admits only {allowed} on {pods} pod(s)", "API port reachable beyond the gateway")


@fail_closed
def judge_metrics_sources(inv: InventoryInput, req: static.Requirements, namespace: str | None, selector: Mapping[str, str] | None) -> Outcome:
    """NETPOL-METRICS: metrics ports admit only the monitoring namespace (or nobody)."""
    return _sources_limited(inv, namespace, selector, req.metrics_ports, req.monitoring_namespaces, "the monitoring namespace", False,
                            "metrics port {ports} admits only {allowed} (or nobody)", "metrics reachable beyond monitoring")


@fail_closed
def judge_egress(inv: InventoryInput, req: static.Requirements, namespace: str | None, selector: Mapping[str, str] | None) -> Outcome:
    """NETPOL-EGRESS: egress is isolated and limited to HTTPS and DNS."""
    inventory = _inventory(inv)
    if not req.require_egress_isolation:
        return not_applicable("the profile does not require egress isolation (network_policy.require_egress_isolation: false)")
    pods, na = _pods_or_na(inventory, namespace, selector)
    if na:
        return na
    violations = static.check_egress_limited(inventory, pods, req.egress_allowed)
    allowed = ", ".join(map(str, req.egress_allowed))
    return _verdict(violations, f"egress of {len(pods)} pod(s) limited to {allowed}", "egress not limited", allowed=allowed, pods=[p.key for p in pods])


@fail_closed
def judge_databases(inv: InventoryInput, req: static.Requirements) -> Outcome:
    """NETPOL-DB: database ports admit only their owning services."""
    inventory = _inventory(inv)
    if not req.databases:
        return not_applicable("no databases declared (network_policy.databases: Postgres 5432, Milvus 19530 with their owners)")
    violations: list[static.Violation] = []
    found: dict[str, list[str]] = {}
    for db in req.databases:
        v, pods = static.check_database_owners(inventory, db)
        violations += v
        found[db.name] = [p.key for p in pods]
    if not any(found.values()):
        return not_applicable("none of the declared databases has a pod in the snapshot: " + ", ".join(found))
    return _verdict(violations, "database ports admit only their owning services", "database reachable beyond its owners", databases=found)


def judge_enforcement(observations: Sequence[Observation] | Attempt[Sequence[Observation]], declared_by: str = "",
                      extra: Mapping[str, Any] | None = None) -> Outcome:
    """NETPOL-ENFORCED: what the network does matches what the policies declare.

    Declared blocked but reachable → fail, critical (policy not enforced);
    declared allowed but blocked → fail (broken service); a probe error → error.
    ``extra`` joins the evidence (the probe pods created; ``leftovers``, objects
    that could not be deleted, are also named in the reason).
    """
    extra = dict(extra or {})
    leftovers = list(extra.get("leftovers") or ())
    note = f"; {len(leftovers)} probe object(s) could not be deleted ({', '.join(leftovers[:3])}): run `nimwarden cleanup`" if leftovers else ""
    if isinstance(observations, Attempt):
        bad = incomplete(observations)
        if bad:
            return errored(bad.reason + note, **{**bad.evidence, **extra}) if (extra or note) else bad
        observations = observations.observation or ()
    if not observations:
        return errored("no flows were probed: the probe plan is empty, so enforcement cannot be judged")
    judged = judge_observations(observations)
    data = matrix_data(judged)
    by = {v: [j for j in judged if j.verdict == v] for v in (NOT_ENFORCED, BROKEN, UNJUDGED)}
    evidence = {
        "declared_by": declared_by,
        "flows": len(judged),
        "not_enforced": [j.reason for j in by[NOT_ENFORCED]],
        "broken": [j.reason for j in by[BROKEN]],
        "errors": [j.reason for j in by[UNJUDGED]],
        "matrix": data.as_grid(),  # the report draws it (nimwarden.report.charts)
        "svg": render_svg(data),  # declared and observed per cell, verdict as border
        "cells": data.as_dict()["cells"],  # the table: every flow with its reason
        **extra,
    }
    if by[NOT_ENFORCED]:
        first = by[NOT_ENFORCED][0]
        return failed(f"declared blocked, observed reachable: {len(by[NOT_ENFORCED])} flow(s), e.g. {first.flow.label} ({first.observation.detail}){note}", severity="critical", **evidence)
    if by[BROKEN]:
        first = by[BROKEN][0]
        return failed(f"declared allowed, observed blocked: {len(by[BROKEN])} flow(s), e.g. {first.flow.label}{note}", severity="medium", **evidence)
    if by[UNJUDGED]:
        return errored(f"{len(by[UNJUDGED])} flow(s) could not be judged: {by[UNJUDGED][0].reason}{note}", **evidence)
    probed = sum(1 for j in judged if j.flow.purpose != LIVENESS)
    return passed(f"all {probed} probed flows behave as declared ({sum(1 for j in judged if not j.flow.expected)} declared-blocked flows observed blocked){note}", **evidence)


def judge_live(probed: LiveProbe | Outcome) -> Outcome:
    """NETPOL-ENFORCED on what the live probe (lab network or probe pods) returned; the subject is the
    position the probes ran against."""
    if isinstance(probed, Outcome):
        return probed
    outcome = judge_enforcement(probed.attempt, declared_by=probed.declared_by, extra=probed.evidence)
    return dataclasses.replace(outcome, subject=probed.subject)
