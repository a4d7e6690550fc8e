"""The reachability probe agent: run it *in* a source's network position.

    ip netns exec <ns> python -m nimwarden.net.reach_agent probe < job.json

reads ``{"timeout_s": 0.8, "concurrency": 16, "settle_s": 0, "targets": [{"id": "1",
"address": "10.213.0.101", "port": 8000, "protocol": "TCP"}, ...]}`` on stdin
(or the same JSON as ``--job``; in-cluster probe pods run this file inline
with ``python3 -I -S -c <source> probe --job <json>``) and writes ``{"results": [{"id": "1", "result": "allowed|blocked|error",
"detail": "...", "elapsed_s": 0.001}, ...]}`` on stdout.

TCP: a completed handshake is ``allowed``; no answer within the timeout, or an
ICMP unreachable / local EPERM (a dropping or rejecting filter) is
``blocked``; a refused connection is ``error`` — something answered, but
nothing listens, so the policy cannot be judged from it. UDP: a reply is
``allowed``, silence is ``blocked`` (judged only against a destination known to
answer), ICMP port-unreachable is ``error``. Nothing but a connect (and, for
UDP, one small datagram) is sent; every attempt has a timeout.

``serve`` starts a responder (accepts TCP, echoes UDP) for lab and test
destinations whose reachability must be judgeable:

    python -m nimwarden.net.reach_agent serve --address 0.0.0.0 --tcp 8000 --udp 53

Standard library only, so it starts fast inside any namespace.
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

UDP_PAYLOAD = b"nimwarden-reach-probe"
BLOCKING_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPERM, errno.EACCES}


def probe_tcp(address: str, port: int, timeout_s: float) -> tuple[str, str]:
    t0 = time.monotonic()
    try:
        with socket.create_connection((address, port), timeout=timeout_s):
            return "allowed", f"connected in {(time.monotonic() - t0) * 1000:.1f} ms"
    except TimeoutError:
        return "blocked", f"no answer within {timeout_s:g} s (dropped)"
    except ConnectionRefusedError:
        return "error", "connection refused: reached, but nothing listens there, so the policy cannot be judged"
    except OSError as exc:
        if exc.errno in BLOCKING_ERRNOS:
            return "blocked", f"{errno.errorcode.get(exc.errno, exc.errno)}: {exc.strerror}"
        return "error", f"{type(exc).__name__}: {exc}"


def probe_udp(address: str, port: int, timeout_s: float) -> tuple[str, str]:
    t0 = time.monotonic()
    try:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout_s)
            s.connect((address, port))
            s.send(UDP_PAYLOAD)
            s.recv(512)
            return "allowed", f"reply in {(time.monotonic() - t0) * 1000:.1f} ms"
    except TimeoutError:
        return "blocked", f"no reply within {timeout_s:g} s"
    except ConnectionRefusedError:
        return "error", "ICMP port unreachable: reached, but nothing listens there"
    except OSError as exc:
        if exc.errno in BLOCKING_ERRNOS:
            return "blocked", f"{errno.errorcode.get(exc.errno, exc.errno)}: {exc.strerror}"
        return "error", f"{type(exc).__name__}: {exc}"


def run_job(job: dict) -> dict:
    timeout_s = float(job.get("timeout_s", 0.8))
    targets = job.get("targets") or []
    # In a fresh probe pod, give the CNI time to program policy for it before the first connect.
    time.sleep(min(max(float(job.get("settle_s", 0.0)), 0.0), 60.0))

    def one(t: dict) -> dict:
        t0 = time.monotonic()
        proto = str(t.get("protocol", "TCP")).upper()
        if proto == "TCP":
            result, detail = probe_tcp(t["address"], int(t["port"]), timeout_s)
        elif proto == "UDP":
            result, detail = probe_udp(t["address"], int(t["port"]), timeout_s)
        else:
            result, detail = "error", f"protocol {proto} cannot be probed from here"
        return {"id": t["id"], "result": result, "detail": detail, "elapsed_s": round(time.monotonic() - t0, 4)}

    workers = max(1, min(int(job.get("concurrency", 16)), len(targets) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return {"results": list(pool.map(one, targets))}


def serve(address: str, tcp_ports: list[int], udp_ports: list[int]) -> None:
    """Accept TCP connections (and close them) and echo UDP datagrams until killed."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    socks = []
    for port in tcp_ports:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, port))
        s.listen(64)
        socks.append(s)
        threading.Thread(target=_accept_loop, args=(s,), daemon=True).start()
    for port in udp_ports:
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((address, port))
        socks.append(s)
        threading.Thread(target=_echo_loop, args=(s,), daemon=True).start()
    print(json.dumps({"serving": {"address": address, "tcp": tcp_ports, "udp": udp_ports}}), flush=True)
    threading.Event().wait()


def _accept_loop(s: socket.socket) -> None:
    while True:
        conn, _ = s.accept()
        conn.close()


def _echo_loop(s: socket.socket) -> None:
    while True:
        data, peer = s.recvfrom(512)
        s.sendto(data, peer)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="reach_agent", description="reachability probe agent")
    sub = ap.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("probe", help="probe the targets of a JSON job (read on stdin unless --job gives it)")
    pr.add_argument("--job", help="the job as a JSON string (probe pods pass it as an argument)")
    sv = sub.add_parser("serve", help="run a responder")
    sv.add_argument("--address", default="0.0.0.0")
    sv.add_argument("--tcp", type=int, action="append", default=[])
    sv.add_argument("--udp", type=int, action="append", default=[])
    args = ap.parse_args(argv)
    if args.cmd == "serve":
        serve(args.address, args.tcp, args.udp)
        return 0
    try:
        job = json.loads(args.job if args.job is not None else sys.stdin.read())
    except ValueError as exc:
        print(json.dumps({"error": f"bad job: {exc}"}))
        return 2
    print(json.dumps(run_job(job)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
