"""A hung server: how long one deployment's audit takes with and without ``timeouts.give_up_after``.

The server is a real loopback socket that accepts every connection, reads and never answers
(tests/reliability/faults.py, the fault matrix's "hang"). ``--kind triton``: the deployment declares its
HTTP, gRPC and metrics endpoints there, as a wedged tritonserver would show them; ``--kind nim``: a NIM
whose HTTPS API and gateway are there (the NIM, gateway, TLS and LLM-performance suites ask it). Each value of ``give_up_after`` is
one `nimwarden audit --target` (every suite, the profile's default connect_s 2 / read_s 5 unless
given), run as a child process. Prints a JSON line per run: wall time, results by status, how many
connections the hung server accepted, the slowest result.

    .venv/bin/python benchmarks/hung_endpoint.py --give-up-after 0,3 --kind triton
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability.faults import FaultServer  # noqa: E402

HOST = "127.0.0.77"


def profile(kind: str, port: int, give_up_after: int, connect_s: float, read_s: float) -> dict:
    if kind == "triton":
        url = f"http://{HOST}:{port}"
        deployment = {"endpoints": {"http": url, "grpc": f"grpc://{HOST}:{port}", "metrics": url},
                      "exposure": ["http", "grpc"], "models": ["add"]}
    else:
        url = f"https://{HOST}:{port}"
        deployment = {"endpoints": {"http": url, "gateway": url}, "exposure": ["http", "gateway"]}
    return {"name": f"hung-{kind}", "scope": ["127.0.0.0/8"], "kubernetes": {"source": "none"},
            "timeouts": {"connect_s": connect_s, "read_s": read_s, "give_up_after": give_up_after},
            "deployments": [{"name": "wedged", "kind": kind, "expect": "compliant", **deployment,
                             "options": {"ports": {"tcp_ports": str(port)}}}]}


def run_once(kind: str, give_up_after: int, connect_s: float, read_s: float, work: Path) -> dict:
    server = FaultServer("hang", HOST)
    try:
        target = work / f"hung-{give_up_after}.yaml"
        target.write_text(yaml.safe_dump(profile(kind, server.port, give_up_after, connect_s, read_s)))
        t0 = time.monotonic()
        proc = subprocess.run([str(ROOT / ".venv/bin/nimwarden"), "audit", "--target", str(target),
                               "--reports-dir", str(work / f"reports-{give_up_after}")],
                              capture_output=True, text=True, cwd=ROOT, timeout=1800)
        wall = time.monotonic() - t0
    finally:
        server.close()
    summary = json.loads((work / f"reports-{give_up_after}" / "latest" / "summary.json").read_text())
    judged = [r for r in summary["results"] if r["status"] != "not_applicable"]
    slowest = max(judged, key=lambda r: r["duration_s"])
    not_sent = sum(1 for r in judged if "not sent:" in r["reason"])
    return {"benchmark": "hung_endpoint", "kind": kind, "give_up_after": give_up_after, "connect_s": connect_s, "read_s": read_s,
            "exit": proc.returncode, "wall_s": round(wall, 1), "statuses": dict(Counter(r["status"] for r in judged)),
            "not_sent": not_sent, "connections": server.connections,
            "slowest": {"control": slowest["control"], "duration_s": round(slowest["duration_s"], 1)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--give-up-after", default="0,3", help="values of timeouts.give_up_after, comma-separated")
    ap.add_argument("--connect-s", type=float, default=2.0)
    ap.add_argument("--read-s", type=float, default=5.0)
    ap.add_argument("--kind", choices=("triton", "nim"), default="triton")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="nimwarden-hung-") as tmp:
        for value in (int(v) for v in args.give_up_after.split(",")):
            print(json.dumps(run_once(args.kind, value, args.connect_s, args.read_s, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
