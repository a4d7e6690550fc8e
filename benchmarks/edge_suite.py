"""Benchmark: time the edge probes (port scan, TLS scan, gateway checks) and cross-check the
TLS protocol versions against an independent scanner (nmap's ssl-enum-ciphers).

Prints one JSON object per line. Without ``--target`` it starts its own lab-like edge
(lab PKI, a hardened and an exposed nginx gateway in front of the NIM stand-in) on
loopback and stops it afterwards; with ``--target FILE`` it measures that profile's
deployments (e.g. the running lab: ``--target targets/lab.yaml``).

    .venv/bin/python benchmarks/edge_suite.py [--target FILE] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nimwarden.families.gateway import judge as gwj  # noqa: E402
from nimwarden.families.gateway import probe as gw  # noqa: E402
from nimwarden.families.ports import probe as ports
from nimwarden.families.tls import judge as tlsj  # noqa: E402
from nimwarden.families.tls import probe as tls  # noqa: E402
from nimwarden.net import scope
from tests import tls_crosscheck


def emit(**row) -> None:
    print(json.dumps(row, default=str), flush=True)


def _own_edge(state: Path):
    """A lab-like target: two gateways on their own loopback addresses, the stand-in behind."""
    from nimwarden.lab import gateway, nimstub
    from nimwarden.target import Credential, Deployment, Endpoint, KubernetesRef, Timeouts

    stub = nimstub.start("bench-upstream", state)
    specs = [{"name": "hardened", "hardened": True, "host": "127.0.0.92", "upstream": stub["url"]},
             {"name": "exposed", "hardened": False, "host": "127.0.0.93", "upstream": stub["url"]}]
    edge = gateway.up_edge(state, specs, log=lambda *_: None)
    deployments = []
    for s in specs:
        g = edge["deployments"][s["name"]]["gateway"]
        eps = {"gateway": Endpoint("gateway", g["https_url"], "https", g["host"], g["https_port"]),
               "gateway_http": Endpoint("gateway_http", g["http_url"], "http", g["host"], g["http_port"])}
        creds = {}
        if g["token_file"]:
            creds["gateway"] = Credential("gateway", "Authorization", None, Path(g["token_file"]))
        deployments.append(Deployment(s["name"], "nim", "compliant" if s["hardened"] else "noncompliant", eps,
                                      ("gateway", "gateway_http"), (), creds, (), KubernetesRef(),
                                      {"tls": {"ca_file": edge["pki"]["ca"]}, "ports": {"tcp_ports": "30000-65535"}}))
    guard = scope.guard_for(["127.0.0.0/8"])
    target = SimpleNamespace(name="bench-edge", probe_position="external", options={}, deployments=tuple(deployments),
                             guard=guard, timeouts=Timeouts())

    def stop():
        gateway.down_edge(edge)
        nimstub.stop(stub)

    return target, stop


def measure(target, repeat: int, identify: bool = True, testssl: bool = False) -> None:
    t_all = time.monotonic()
    for _ in range(repeat):
        tls.clear_cache()
        for d in target.deployments:
            plan = ports.plan(target, d)
            if not identify:
                from dataclasses import replace

                plan = replace(plan, identify=False)
            if plan.hosts:
                t0 = time.monotonic()
                a = ports.probe_plan(plan, target.guard)
                emit(bench="edge.port_scan", deployment=d.name, seconds=round(time.monotonic() - t0, 3),
                     nmap_elapsed_s=a.observation.nmap_elapsed_s if a.completed else None,
                     open_ports=len(a.observation.open_ports) if a.completed else None, error=a.error,
                     ports_scanned=len(ports.parse_port_spec(plan.tcp_ports)), udp=list(plan.udp_ports),
                     identify=plan.identify)
            s = tlsj.tls_options(target, d)
            for name, ep in d.endpoints.items():
                if not ep.tls:
                    continue
                client = None
                if name in s.mutual and s.client_cert and s.client_key:
                    client = tls.ClientCredentials(Path(s.client_cert), Path(s.client_key))
                t0 = time.monotonic()
                a = tls.probe_tls(ep.host, ep.port, guard=target.guard, ca_file=s.ca_file, client=client, cached=False)
                took = round(time.monotonic() - t0, 3)
                policy = s.policy(name)
                verdicts = {f.__name__.removeprefix("judge_"): f(a, policy).status.value for f in
                            (tlsj.judge_protocols, tlsj.judge_ciphers, tlsj.judge_forward_secrecy, tlsj.judge_chain,
                             tlsj.judge_hostname, tlsj.judge_expiry, tlsj.judge_key_size)}
                emit(bench="edge.tls_scan", deployment=d.name, endpoint=ep.url, seconds=took, error=a.error, verdicts=verdicts)
                if a.completed and client is None:
                    cross_check(d.name, ep, a.observation, target.guard, testssl)
            g = gw.entry_point(d)
            if g.base_url:
                t0 = time.monotonic()
                auth = gwj.judge_authentication(gw.probe_auth(g.base_url, g.requests, credential=g.credential, guard=target.guard))
                burst_attempt = gw.probe_burst(g.burst_url, credential=g.credential, max_requests=g.burst_max_requests,
                                               max_duration_s=g.burst_max_duration_s, guard=target.guard)
                burst = gwj.judge_rate_limit(burst_attempt)
                internal = gwj.judge_internal_paths(gw.probe_internal_paths(g.base_url, credential=g.credential, guard=target.guard))
                emit(bench="edge.gateway", deployment=d.name, seconds=round(time.monotonic() - t0, 3),
                     authn=auth.status.value, rate_limit=burst.status.value, internal=internal.status.value,
                     burst_sent=burst_attempt.observation.sent if burst_attempt.completed else None)
    emit(bench="edge.total", deployments=len(target.deployments), repeat=repeat,
         seconds=round(time.monotonic() - t_all, 3), seconds_per_run=round((time.monotonic() - t_all) / repeat, 3))


def cross_check(deployment: str, ep, obs, guard, testssl: bool) -> None:
    """sslyze's protocol verdicts against independent scanners' for the same endpoint."""
    scanners = [("nmap ssl-enum-ciphers", tls_crosscheck.nmap_protocols)]
    if testssl:
        scanners.append(("testssl.sh", tls_crosscheck.testssl_protocols))
    for name, fn in scanners:
        t0 = time.monotonic()
        try:
            theirs = fn(ep.host, ep.port, guard=guard)
        except Exception as exc:  # noqa: BLE001 - reported as a row, the benchmark goes on
            emit(bench="edge.tls_crosscheck", deployment=deployment, endpoint=ep.url, scanner=name,
                 error=f"{type(exc).__name__}: {exc}")
            continue
        ours = {p: v for p, v in obs.protocols.items() if p in theirs}
        emit(bench="edge.tls_crosscheck", deployment=deployment, endpoint=ep.url, scanner=name,
             agree=ours == {p: theirs[p] for p in ours}, sslyze=[p for p, v in ours.items() if v],
             other=[p for p, v in theirs.items() if v], seconds=round(time.monotonic() - t0, 3))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", help="a target profile to measure instead of a self-started edge")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-identify", action="store_true",
                    help="skip nmap version detection of undocumented ports (it waits for banners: seconds per crowded host)")
    ap.add_argument("--testssl", action="store_true", help="also cross-check with testssl.sh (slow: ~30 s per endpoint)")
    args = ap.parse_args()
    if args.target:
        from nimwarden.target import load_target

        measure(load_target(args.target), args.repeat, not args.no_identify, args.testssl)
        return 0
    with tempfile.TemporaryDirectory(prefix="nimwarden-edge-bench-") as tmp:
        target, stop = _own_edge(Path(tmp))
        try:
            measure(target, args.repeat, not args.no_identify, args.testssl)
        finally:
            stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
