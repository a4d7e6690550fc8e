"""Port judges: the open ports a scan found, diffed against the documented port table.

Pure functions of (scan attempt, plan). An incomplete scan is an error, never
a pass; a UDP port that could not be scanned is an error for the control that
needs it.
"""

from __future__ import annotations

from nimwarden.families.ports.probe import OpenPort, PortPlan, PortScanObservation
from nimwarden.outcome import Attempt, Outcome, errored, fail_closed, failed, passed


def _base(a: Attempt[PortScanObservation], plan: PortPlan) -> dict:
    ev = a.evidence()
    ev.update(position=plan.position, port_table_version=plan.table.version)
    if a.observation is not None:
        theirs = [f"{p.label} -> {plan.others[p.port]}" for p in a.observation.open_ports if _theirs(p, plan)]
        if theirs:
            ev["attributed_to_other_deployments"] = theirs
    return ev


def _theirs(p: OpenPort, plan: PortPlan) -> bool:
    """An open port declared by another deployment of the target (and not documented here)."""
    return p.proto == "tcp" and p.port in plan.others and not plan.table.rows_for(p.port, p.proto)


def _ours(obs: PortScanObservation, plan: PortPlan) -> list[OpenPort]:
    return [p for p in obs.open_ports if not _theirs(p, plan)]


@fail_closed
def judge_undocumented(a: Attempt[PortScanObservation], plan: PortPlan) -> Outcome:
    """PORTS-UNDOCUMENTED: every open port is in the documented table."""
    obs = a.observation
    assert obs is not None
    extra = [p for p in _ours(obs, plan) if p.state == "open" and not plan.table.rows_for(p.port, p.proto)]
    ev = _base(a, plan)
    if extra:
        ev["undocumented"] = [p.label for p in extra]
        return failed(f"{len(extra)} undocumented open port(s): {', '.join(p.label for p in extra)}", **ev)
    return passed(f"all {len(_ours(obs, plan))} open port(s) of this deployment on {', '.join(obs.hosts)} are documented", **ev)


def _allowed(p: OpenPort, plan: PortPlan) -> tuple[bool, str]:
    rows = plan.table.rows_for(p.port, p.proto, plan.kind)
    if not rows:
        return True, ""  # undocumented: the other control's finding, not this one's
    ok = [r for r in rows if plan.position in r.reachable_from]
    return bool(ok), " / ".join(sorted({r.service for r in (ok or rows)}))


@fail_closed
def judge_position(a: Attempt[PortScanObservation], plan: PortPlan) -> Outcome:
    """PORTS-POSITION: documented ports answer only where the table allows (e.g. no database from outside)."""
    obs = a.observation
    assert obs is not None
    ev = _base(a, plan)
    findings = []
    for p in _ours(obs, plan):
        ok, service = _allowed(p, plan)
        if not ok and p.state == "open":
            findings.append(f"{p.label} = {service}")
    if findings:
        ev["not_allowed_from_position"] = findings
        return failed(f"reachable from {plan.position} but documented as not: {'; '.join(findings)}", **ev)
    if plan.udp_ports and not obs.udp_scanned:
        return errored(f"documented UDP port(s) {', '.join(map(str, plan.udp_ports))} not scanned: {obs.udp_note}", **ev)
    # A UDP service such as the collector's Jaeger port does not answer an empty probe:
    # "open|filtered" is what an open one looks like, so it cannot count as closed.
    unsure = [p.label for p in _ours(obs, plan) if p.state != "open" and not _allowed(p, plan)[0]]
    if unsure:
        ev["unconfirmed"] = unsure
        return errored(f"cannot tell whether {', '.join(unsure)} is reachable from {plan.position} (open|filtered: "
                       "no answer and no ICMP refusal); check from a position that sees ICMP, or firewall it explicitly", **ev)
    return passed(f"no port on {', '.join(obs.hosts)} answers from {plan.position} that the table keeps internal", **ev)


@fail_closed
def judge_expected(a: Attempt[PortScanObservation], plan: PortPlan) -> Outcome:
    """PORTS-EXPECTED: the endpoints the profile exposes to this position do answer."""
    obs = a.observation
    assert obs is not None
    ev = _base(a, plan)
    if not plan.expected_open:
        return errored("the profile declares no endpoint reachable from this position: nothing to expect", **ev)
    open_set = {(p.host, p.port) for p in obs.open_tcp()}
    closed = [f"{name} {h}:{port}/tcp" for h, port, name in plan.expected_open if (h, port) not in open_set]
    ev["expected_open"] = [f"{name} {h}:{port}/tcp" for h, port, name in plan.expected_open]
    if closed:
        ev["closed"] = closed
        return failed(f"expected port(s) closed from {plan.position}: {', '.join(closed)}", **ev)
    return passed(f"all {len(plan.expected_open)} expected port(s) answer from {plan.position}", **ev)
