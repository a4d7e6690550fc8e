"""The lab's network: Linux network namespaces on a private bridge, standing in for a cluster network.

One namespace per deployment (``hardened``, ``exposed``) and one per probe
position (``gateway`` = the ingress controller, ``tenant`` = another tenant's
pod, ``monitoring`` = Prometheus), each with a veth into a bridge that lives
in its own ``switch`` namespace. Nothing is created in the host's namespace:
the test range (10.213.0.0/24) exists only on that bridge, so no route, no
address and no packet ever reaches a real network.

``hardened`` enforces its declared NetworkPolicy with iptables rules written
by hand below — deliberately not derived from the harness's model, because
the lab stands for a CNI that the harness must check, not trust. ``exposed``
declares the same policy and enforces nothing: the flannel case.

Everything created is written to ``<state_dir>/netns.json`` *before* it is
created, and every name carries a tag derived from the state directory, so
:func:`down` removes it all — after a crash too, even without the state file.
Needs root; :func:`available` says why not otherwise.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from nimwarden.lab.procs import running

SCHEMA = "nimwarden/lab-netns/v1"
STATE_FILE = "netns.json"
SUBNET = "10.213.0.0/24"  # exists only on the lab's bridge, inside the switch namespace
PREFIX = "nwl"

# name -> (last octet, model pod in nimwarden/lab/netpol/network.yaml)
POSITIONS = {
    "gateway": (10, "ingress-nginx/gateway"),
    "tenant": (20, "tenant-a/client"),
    "monitoring": (30, "monitoring/prometheus"),
    "hardened": (101, "nim-hardened/triton"),
    "exposed": (102, "nim-exposed/triton"),
}
ENFORCING = ("hardened",)


def available() -> tuple[bool, str]:
    """Whether this machine can build the lab network, and if not, why (for not_applicable)."""
    if os.geteuid() != 0:
        return False, f"network namespaces need root (running as uid {os.geteuid()}); the lab runs on loopback only"
    for tool in ("ip", "iptables-restore"):
        if shutil.which(tool) is None:
            return False, f"{tool} is not installed (Debian packages iproute2, iptables)"
    return True, "root, iproute2 and iptables present"


def tag_for(state_dir: Path) -> str:
    return hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:6]


def netns_name(tag: str, position: str) -> str:
    return f"{PREFIX}-{tag}-{position}"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=check)


def exec_prefix(ns: str) -> list[str]:
    return ["ip", "netns", "exec", ns]


def run_in(ns: str, argv: Sequence[str], user: int | None = None, group: int | None = None, **popen_kwargs) -> subprocess.Popen:
    """Start ``argv`` inside network namespace ``ns`` (optionally as ``user``/``group``).

    ``ip netns exec`` enters the namespace as root and execs the command (same
    PID); ``setpriv`` then drops privileges, so a server can run as nobody.
    """
    prefix = exec_prefix(ns)
    if user is not None:
        prefix += ["setpriv", f"--reuid={user}", f"--regid={group if group is not None else user}", "--clear-groups", "--"]
    return subprocess.Popen([*prefix, *argv], **popen_kwargs)


def hardened_rules(addresses: dict[str, str]) -> str:
    """The hand-written enforcement of the lab's declared policy (iptables-restore input).

    Declared (nimwarden/lab/netpol/network.yaml): ingress to the NIM API 8000/TCP and the NeMo
    Platform API 8080/TCP only from the ingress-nginx namespace, metrics 8002/TCP only from monitoring; egress
    only 443/TCP and DNS 53. Loopback stays open (a port-forward enters the pod's
    namespace, as ``kubectl port-forward`` does).
    """
    gw, mon = addresses["gateway"], addresses["monitoring"]
    return "\n".join(
        [
            "*filter",
            ":INPUT ACCEPT [0:0]",
            ":FORWARD ACCEPT [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            ":NIMWARDEN-IN - [0:0]",
            ":NIMWARDEN-OUT - [0:0]",
            "-A INPUT -j NIMWARDEN-IN",
            "-A OUTPUT -j NIMWARDEN-OUT",
            "-A NIMWARDEN-IN -i lo -j ACCEPT",
            "-A NIMWARDEN-IN -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            f"-A NIMWARDEN-IN -s {gw}/32 -p tcp --dport 8000 -j ACCEPT",
            f"-A NIMWARDEN-IN -s {mon}/32 -p tcp --dport 8002 -j ACCEPT",
            f"-A NIMWARDEN-IN -s {gw}/32 -p tcp --dport 8080 -j ACCEPT",
            "-A NIMWARDEN-IN -j DROP",
            "-A NIMWARDEN-OUT -o lo -j ACCEPT",
            "-A NIMWARDEN-OUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            "-A NIMWARDEN-OUT -p tcp --dport 443 -j ACCEPT",
            "-A NIMWARDEN-OUT -p tcp --dport 53 -j ACCEPT",
            "-A NIMWARDEN-OUT -p udp --dport 53 -j ACCEPT",
            "-A NIMWARDEN-OUT -j DROP",
            "COMMIT",
            "",
        ]
    )


def _record(state_path: Path, state: dict) -> None:
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(state_path)


def read_state(state_dir: Path) -> dict | None:
    try:
        return json.loads((Path(state_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def up(state_dir: Path) -> dict:
    """Build the topology; returns (and records) namespace names and addresses per position."""
    ok, why = available()
    if not ok:
        raise RuntimeError(f"lab network not available: {why}")
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    down(state_dir)  # a previous run's leftovers first
    tag = tag_for(state_dir)
    base = SUBNET.rsplit(".", 1)[0]
    switch = netns_name(tag, "switch")
    positions = {
        name: {"netns": netns_name(tag, name), "address": f"{base}.{octet}", "model_pod": pod, "enforcing": name in ENFORCING}
        for name, (octet, pod) in POSITIONS.items()
    }
    state: dict = {"schema": SCHEMA, "tag": tag, "subnet": SUBNET, "switch": switch, "positions": positions, "created": []}
    path = state_dir / STATE_FILE
    try:
        state["created"].append(switch)
        _record(path, state)
        _ip("netns", "add", switch)
        _ip("-n", switch, "link", "set", "lo", "up")
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for name, pos in positions.items():
            ns = pos["netns"]
            state["created"].append(ns)
            _record(path, state)
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            # Both veth ends are born inside namespaces: the host never sees an interface.
            _ip("-n", switch, "link", "add", f"v-{name}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", switch, "link", "set", f"v-{name}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{pos['address']}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        addresses = {n: p["address"] for n, p in positions.items()}
        for name in ENFORCING:
            subprocess.run([*exec_prefix(positions[name]["netns"]), "iptables-restore"], input=hardened_rules(addresses), text=True, capture_output=True, timeout=10, check=True)
        state["ready"] = True
        _record(path, state)
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        down(state_dir)
        raise RuntimeError(f"lab network: {detail.strip()}") from None
    return state


def existing(tag: str) -> list[str]:
    """Network namespaces with this tag that exist now."""
    out = _ip("netns", "list", check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(f"{PREFIX}-{tag}-")]


def _stop_processes(*namespaces: str) -> None:
    """Stop processes the lab started inside these namespaces (they would keep a namespace alive): all told
    to stop at once, then killed together after their grace period."""
    pids = [int(p) for ns in namespaces for p in _ip("netns", "pids", ns, check=False).stdout.split() if p.isdigit()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3.0
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if running(p)]
            time.sleep(0.05)
        if not pids:
            return


# -- port-forward: host loopback -> a namespace's loopback (what `kubectl port-forward` does) --------
CLONE_NEWNET = 0x40000000
FORWARD_MARK = "from nimwarden.lab.netns import main; main(['forward'"


def socket_in_netns(ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket that lives in network namespace ``ns`` (created on a thread that entered it).

    setns(CLONE_NEWNET) changes only the calling thread, and a socket keeps the
    namespace it was created in, so the rest of the process stays where it is.
    """
    box: dict = {}

    def enter() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/var/run/netns/{ns}", "rb") as f:
                if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {ns}: {os.strerror(err)}")
            box["sock"] = socket.socket(family, kind)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=enter, name=f"setns-{ns}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["sock"]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass  # either side closed: the connection is over
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _accept_forward(listener: socket.socket, ns: str, target: tuple[str, int]) -> None:
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket_in_netns(ns)
            upstream.settimeout(5.0)
            upstream.connect(target)
            upstream.settimeout(None)
        except OSError:
            client.close()
            continue
        threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()


def _target(value: int | str) -> tuple[str, int]:
    """A forward's target: a port on the namespace's loopback, or ``address:port`` inside the namespace."""
    if isinstance(value, int):
        return ("127.0.0.1", value)
    host, _, port = str(value).rpartition(":")
    return (host or "127.0.0.1", int(port))


def _serve_forward(ns: str, pairs: dict[int, int | str], bind: str = "127.0.0.1") -> None:
    for listen_port, target in pairs.items():
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((bind, listen_port))
        listener.listen(128)
        threading.Thread(target=_accept_forward, args=(listener, ns, _target(target)), daemon=True).start()
    print(json.dumps({"forwarding": {f"{bind}:{k}": "{} {}:{}".format(ns, *_target(v)) for k, v in pairs.items()}}), flush=True)
    threading.Event().wait()


def port_forward(state_dir: Path, position: str, pairs: dict[int, int | str], bind: str = "127.0.0.1") -> subprocess.Popen:
    """Forward host ``bind``:<listen> to <target> in a position's namespace, for each listen: target pair
    (a target is a port on the namespace's loopback, or ``address:port`` inside it).

    Like ``kubectl port-forward`` it enters the pod's namespace, so it bypasses
    the policy (loopback is always open): it serves the suites that probe a
    deployment directly, never the reachability probes. One process per call,
    recorded in the state so :func:`down` stops it. Returns once it listens.
    """
    state_dir = Path(state_dir)
    state = read_state(state_dir)
    if not state:
        raise RuntimeError("lab network is not up")
    ns = state["positions"][position]["netns"]
    spec = ",".join(f"{k}:{v}" for k, v in pairs.items())
    # -c rather than -m: nimwarden.lab may already import this module (runpy would warn).
    code = f"from nimwarden.lab.netns import main; main(['forward', {ns!r}, {spec!r}, '--bind', {bind!r}])"
    # stderr to DEVNULL: a long-lived forwarder must not hold the caller's terminal or pipe open.
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    state.setdefault("forwarders", []).append({"pid": proc.pid, "netns": ns, "ports": {str(k): v for k, v in pairs.items()}})
    _record(state_dir / STATE_FILE, state)
    line = proc.stdout.readline() if proc.stdout else ""
    if "forwarding" not in line:
        proc.kill()
        raise RuntimeError(f"port-forward into {ns} ({spec}) did not start (exit {proc.wait()})")
    return proc


def _stop_forwarders(state: dict) -> None:
    for fwd in state.get("forwarders", []):
        pid = int(fwd["pid"])
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if FORWARD_MARK in cmdline and fwd["netns"] in cmdline:  # not a reused PID
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def down(state_dir: Path) -> list[str]:
    """Remove everything :func:`up` created (recorded, or found by tag after a crash). Returns the names removed."""
    state_dir = Path(state_dir)
    state = read_state(state_dir) or {}
    _stop_forwarders(state)
    tag = state.get("tag") or tag_for(state_dir)
    names = list(dict.fromkeys([*state.get("created", []), *existing(tag)]))
    removed = []
    present = set(existing(tag))
    # Deployments and clients first, the switch last; deleting a namespace deletes
    # its veth end (and so the pair), its addresses and its iptables chains.
    _stop_processes(*(ns for ns in names if ns in present))
    for ns in sorted(names, key=lambda n: n.endswith("-switch")):
        if ns not in present:
            continue
        subprocess.run([*exec_prefix(ns), "iptables-restore"], input="*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n", text=True, capture_output=True, timeout=10, check=False)
        _ip("netns", "del", ns, check=False)
        removed.append(ns)
    try:
        (state_dir / STATE_FILE).unlink()
    except FileNotFoundError:
        pass
    return removed


def status(state_dir: Path) -> dict:
    state = read_state(Path(state_dir))
    tag = (state or {}).get("tag") or tag_for(Path(state_dir))
    present = existing(tag)
    return {"up": bool(state and state.get("ready")) and all(p["netns"] in present for p in state["positions"].values()), "namespaces": present, "state": state}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nimwarden.lab.netns", description="lab network helpers")
    sub = ap.add_subparsers(dest="cmd", required=True)
    fw = sub.add_parser("forward", help="forward host BIND:LISTEN to a namespace's 127.0.0.1:TARGET (or ADDRESS:TARGET)")
    fw.add_argument("netns")
    fw.add_argument("pairs", help="LISTEN:[ADDRESS:]TARGET[,LISTEN:[ADDRESS:]TARGET...]")
    fw.add_argument("--bind", default="127.0.0.1", help="host address to listen on (default 127.0.0.1)")
    args = ap.parse_args(argv)
    pairs = {}
    for p in args.pairs.split(","):
        listen, _, target = p.partition(":")
        pairs[int(listen)] = int(target) if target.isdigit() else target
    _serve_forward(args.netns, pairs, args.bind)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
