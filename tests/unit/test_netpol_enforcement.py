"""Declared vs observed: the enforcement judge, the probe plan, and the matrix picture."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from nimwarden.families.network_policy.judge import judge_enforcement
from nimwarden.lab.netpol import declared_inventory
from nimwarden.netpol.enforcement import (
    ALLOWED,
    BLOCKED,
    ERROR,
    LIVENESS,
    NOT_ENFORCED,
    Flow,
    Observation,
    judge_observations,
    matrix_data,
)
from nimwarden.netpol.matrix import PortKey
from nimwarden.netpol.picture import render_svg
from nimwarden.netpol.plan import Destination, plan_flows
from nimwarden.outcome import Attempt, Status

ADDR = "10.213.0.102"


def flow(src, port, expected, purpose="policy"):
    return Flow(src, "nim/triton", ADDR, port, "TCP", expected, "", purpose)


def obs(f, result, detail="d"):
    return Observation(f, result, detail)


LIVE = obs(flow("nim/triton", 8000, True, LIVENESS), ALLOWED)
GATEWAY_OK = obs(flow("gw/g", 8000, True), ALLOWED)


def test_consistent_network_passes():
    out = judge_enforcement([GATEWAY_OK, obs(flow("tenant/c", 8000, False), BLOCKED), LIVE])
    assert out.status is Status.PASS, out.reason
    assert "1 declared-blocked flows observed blocked" in out.reason


def test_declared_blocked_but_reachable_is_critical():
    out = judge_enforcement([GATEWAY_OK, obs(flow("tenant/c", 8000, False), ALLOWED, "connected in 0.2 ms"), LIVE])
    assert out.status is Status.FAIL and out.severity == "critical"
    assert "declared blocked, observed reachable" in out.reason and "tenant/c -> nim/triton 8000/TCP" in out.reason


def test_declared_allowed_but_blocked_is_a_failure():
    out = judge_enforcement([obs(flow("gw/g", 8000, True), BLOCKED), obs(flow("mon/p", 8000, True), ALLOWED), LIVE])
    assert out.status is Status.FAIL and out.severity == "medium"
    assert "declared allowed, observed blocked" in out.reason


def test_probe_error_is_an_error():
    out = judge_enforcement([GATEWAY_OK, obs(flow("tenant/c", 8000, False), ERROR, "connection refused"), LIVE])
    assert out.status is Status.ERROR and "connection refused" in out.reason


def test_silence_from_a_destination_nobody_reached_is_an_error_not_a_pass():
    # The service may simply be down: a "blocked" without any liveness proof proves nothing.
    dead = [obs(flow("tenant/c", 8000, False), BLOCKED), obs(flow("nim/triton", 8000, True, LIVENESS), BLOCKED)]
    out = judge_enforcement(dead)
    assert out.status is Status.ERROR and "cannot be told from a dead service" in out.reason


def test_incomplete_attempt_and_empty_plan_are_errors():
    assert judge_enforcement(Attempt("netpol.reach", "reach 0 flows", None, "the probe plan is empty")).status is Status.ERROR
    assert judge_enforcement([]).status is Status.ERROR


def test_plan_probes_every_blocked_pair_and_samples_allowed_ones():
    inv = declared_inventory()
    sources = [p.key for p in inv.pods]
    dest = Destination("nim-exposed/triton", ADDR, (PortKey(8000), PortKey(8002)))
    flows = plan_flows(inv, sources, [dest], allowed_sample=1, liveness_from={"nim-exposed/triton": "nim-exposed/triton"})
    labels = {f.label: f for f in flows}
    assert not labels["tenant-a/client -> nim-exposed/triton 8000/TCP"].expected
    assert labels["ingress-nginx/gateway -> nim-exposed/triton 8000/TCP"].expected
    assert "nim-api-from-gateway ingress[0]" in labels["ingress-nginx/gateway -> nim-exposed/triton 8000/TCP"].why
    assert labels["monitoring/prometheus -> nim-exposed/triton 8002/TCP"].expected
    assert sum(1 for f in flows if f.purpose == LIVENESS) == 2
    blocked = [f for f in flows if not f.expected]
    assert len(blocked) == 6  # 3 other sources per port, each declared blocked


def test_matrix_picture_is_valid_svg_marking_unenforced_cells():
    judged = judge_observations([GATEWAY_OK, obs(flow("tenant/c", 8000, False), ALLOWED), obs(flow("tenant/c", 8002, False), BLOCKED), LIVE])
    data = matrix_data(judged)
    assert data.sources == ("gw/g", "tenant/c") and data.cell("tenant/c", "nim/triton 8000/TCP").verdict == NOT_ENFORCED
    svg = render_svg(data.as_dict())
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert 'stroke="#c62828"' in svg  # the not-enforced border
    assert "tenant/c -&gt; nim/triton 8000/TCP: declared blocked, observed reachable" in svg
    assert "not probed" in svg  # gw/g was never probed on 8002


def test_evidence_feeds_the_report_matrix_and_carries_the_picture():
    from nimwarden.report.charts import reachability_matrix

    out = judge_enforcement([GATEWAY_OK, obs(flow("tenant/c", 8000, False), ALLOWED), obs(flow("tenant/c", 8002, False), ERROR), LIVE])
    grid = out.evidence["matrix"]
    assert grid["rows"] == ["gw/g", "tenant/c"] and grid["cols"] == ["nim/triton 8000/TCP", "nim/triton 8002/TCP"]
    assert grid["cells"] == [[True, None], [True, None]] and grid["expected"] == [[True, None], [False, False]]
    chart = reachability_matrix(out.evidence)
    assert "reachable, expected blocked" in chart
    assert out.evidence["svg"].startswith("<svg")
