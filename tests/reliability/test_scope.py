"""Scope: no packet leaves the declared scope — nmap, TLS, HTTP and gRPC alike.

The profile's scope is 127.0.0.2/32 only. Three ways out are laid in the audit's path:
- endpoints named `localhost` (resolves to 127.0.0.1, outside the scope; names are checked
  when resolved, just before connecting);
- the port-scan options listing an outside address and that name (options.ports.hosts);
- an in-scope server that answers every request with a redirect to an outside address.
Outside, trap listeners count connections, and iptables counters (root) count every packet
sent to them, SYN scans included. The audit must send none, and the controls say why they
could not look. A last check sends one packet by hand to prove the counters see it.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import threading

import pytest
import yaml

from tests.conftest import have, run_audit
from tests.reliability.faults import FaultServer

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not have("iptables") or not have("nmap"), reason="needs root, iptables and nmap")

INSIDE, OUTSIDE = "127.0.0.2", "127.0.0.77"
SUITES = ("suites/test_triton_api.py", "suites/test_tls.py", "suites/test_gateway.py", "suites/test_nim_api.py", "suites/test_ports.py")


class Redirector:
    """In scope; answers every HTTP request with 302/307 to an address outside the scope."""

    def __init__(self, host: str, to: str):
        self.sock = socket.create_server((host, 0))
        self.port, self.to = self.sock.getsockname()[1], to
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        n = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(65536)
                    code = ("302 Found", "307 Temporary Redirect")[n % 2]
                    n += 1
                    conn.sendall(f"HTTP/1.1 {code}\r\nLocation: {self.to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
                except OSError:
                    pass

    def close(self):
        self.sock.close()


class PacketCounter:
    """An iptables OUTPUT rule with no target: it only counts packets to ``dest`` (optionally one port)."""

    def __init__(self, dest: str, port: int | None = None):
        self.spec = ["-d", f"{dest}/32", "-p", "tcp", *(["--dport", str(port)] if port else []),
                     "-m", "comment", "--comment", f"nimwarden-scope-{secrets.token_hex(4)}"]
        subprocess.run(["iptables", "-I", "OUTPUT", *self.spec], check=True, timeout=10)

    def packets(self) -> int:
        out = subprocess.run(["iptables", "-L", "OUTPUT", "-n", "-v", "-x"], capture_output=True, text=True, check=True, timeout=10).stdout
        line = next(line for line in out.splitlines() if self.spec[-1] in line)
        return int(line.split()[0])

    def remove(self):
        subprocess.run(["iptables", "-D", "OUTPUT", *self.spec], timeout=10)


@pytest.fixture
def traps():
    outside = FaultServer("server-error", OUTSIDE)
    named = FaultServer("server-error", "127.0.0.1")  # what `localhost` resolves to
    counters = [PacketCounter(OUTSIDE), PacketCounter("127.0.0.1", named.port)]
    redirector = Redirector(INSIDE, f"http://{OUTSIDE}:{outside.port}/v2/health/ready")
    try:
        yield outside, named, counters, redirector
    finally:
        for c in counters:
            c.remove()
        for s in (outside, named, redirector):
            s.close()


def test_no_packet_leaves_the_scope(traps, tmp_path):
    outside, named, counters, redirector = traps
    inside = f"http://{INSIDE}:{redirector.port}"
    local = f"localhost:{named.port}"
    scan = {"hosts": [OUTSIDE, "localhost", INSIDE], "tcp_ports": f"{outside.port},{named.port},{redirector.port}"}
    deployments = [
        {"name": "redirecting", "kind": "nim", "expect": "compliant", "endpoints": {"http": inside, "gateway": inside},
         "exposure": ["http", "gateway"], "options": {"ports": scan}},
        {"name": "redirecting-triton", "kind": "triton", "expect": "compliant",
         "endpoints": {"http": inside, "grpc": f"grpc://{INSIDE}:{redirector.port}", "metrics": inside, "sagemaker": inside},
         "exposure": ["http", "grpc"], "models": ["add"], "options": {"ports": {"tcp_ports": str(redirector.port)}}},
        {"name": "named", "kind": "triton", "expect": "compliant",
         "endpoints": {"http": f"http://{local}", "grpc": f"grpc://{local}", "gateway": f"https://{local}", "metrics": f"http://{local}"},
         "exposure": ["http", "grpc", "gateway"], "models": ["add"], "options": {"ports": {"tcp_ports": str(named.port)}}},
    ]
    profile = tmp_path / "scope.yaml"
    profile.write_text(yaml.safe_dump({"name": "scope", "scope": [f"{INSIDE}/32"], "timeouts": {"connect_s": 1, "read_s": 2},
                                      "deployments": deployments}))
    before = [c.packets() for c in counters]
    proc, summary = run_audit(profile, tmp_path / "reports", *SUITES, timeout=300)
    sent = [c.packets() - b for c, b in zip(counters, before)]
    assert summary is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"\nscope: {len(summary['results'])} results; packets outside the scope: {sent}; "
          f"connections to the traps: {outside.connections + named.connections}; redirects served: yes")
    assert sent == [0, 0] and outside.connections == 0 and named.connections == 0
    named_rows = [r for r in summary["results"] if r["deployment"] == "named" and r["status"] != "not_applicable"]
    assert named_rows and all(r["status"] == "error" and "scope" in r["reason"] for r in named_rows), \
        [(r["control"], r["status"], r["reason"][:150]) for r in named_rows if r["status"] != "error" or "scope" not in r["reason"]]
    assert not [r for r in summary["results"] if r["status"] == "pass" and r["deployment"] == "named"]


def test_the_counters_see_a_packet(traps):
    """The measurement is not blind: one connection by hand to each trap is counted."""
    outside, named, counters, _ = traps
    before = [c.packets() for c in counters]
    for host, port in ((OUTSIDE, outside.port), ("127.0.0.1", named.port)):
        with socket.create_connection((host, port), timeout=2):
            pass
    assert all(c.packets() > b for c, b in zip(counters, before))
