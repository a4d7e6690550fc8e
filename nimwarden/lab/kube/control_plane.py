"""The lab's Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager and kube-scheduler.

Real binaries (Kubernetes 1.20.2 built from Debian bookworm's ``kubernetes`` source package by
``scripts/build-kube``, and Debian's etcd), each its own process, all on 127.0.0.1 at free ports,
in their own session so that they outlive the command that started them. Everything they need
lives in ``<lab dir>/kube/``: a CA of their own and the certificates issued from it, a
service-account signing key (so the controller manager's tokens controller writes real
ServiceAccount token Secrets, as 1.20 does), etcd's data, kubeconfigs and one log per process.
An admin kubeconfig (client certificate in ``system:masters``) is written to ``<lab dir>/kubeconfig``.

Authorization is ``Node,RBAC`` (the lab node's identity is ``system:node:nimwarden-lab``), with the
``NodeRestriction`` admission plugin; privileged pods are allowed (the lab's ``exposed`` deployment
runs one on purpose). The API server advertises 127.0.0.1, which needs
``--endpoint-reconciler-type=none`` (the ``kubernetes`` Service gets no endpoints).

Every wait is bounded; a process that dies or a server that does not answer in time is a
:class:`ControlPlaneError` naming the log to read. :func:`stop` stops the processes by PID and
start time (and any leftover whose command line names the folder) and removes the folder.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from nimwarden.lab.cache import cache_dir
from nimwarden.lab.kube.certs import NODE_NAME, kubeconfig, make_pki
from nimwarden.lab.triton import free_port, process_start_time, processes_under, running

KUBE_VERSION = "1.20.2"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
SERVICE_CIDR = "10.96.0.0/16"  # apart from the lab network's 10.213.0.0/24
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
STATE_FILE = "kube.json"
SCHEMA = "nimwarden/lab-kube/v1"
START_TIMEOUT_S = 60.0  # the API server is ready in ~4 s alone; a busy 2-core machine starting the whole lab needs more


class ControlPlaneError(RuntimeError):
    """The control plane could not start; the message is one line naming the log to read."""


def bin_dir() -> Path:
    """Where the binaries are: ``$NIMWARDEN_KUBE_BIN``, else the cache ``scripts/build-kube`` fills."""
    named = os.environ.get("NIMWARDEN_KUBE_BIN")
    return Path(named).expanduser() if named else cache_dir() / f"kubernetes-{KUBE_VERSION}" / "bin"


def available() -> tuple[bool, str]:
    """Whether the control plane can run here, and if not, why (one line, saying how to get it)."""
    where = bin_dir()
    missing = [b for b in BINARIES if not os.access(where / b, os.X_OK)]
    if missing:
        how = ("set NIMWARDEN_KUBE_BIN to a folder holding them" if os.environ.get("NIMWARDEN_KUBE_BIN")
               else "build them once with scripts/build-kube (as root: it uses apt-get)")
        return False, f"no Kubernetes {KUBE_VERSION} control plane in {where} (missing {', '.join(missing)}); {how}"
    return True, f"Kubernetes {KUBE_VERSION} binaries in {where}"


def kube_dir(directory: Path) -> Path:
    return Path(directory) / "kube"


def read_state(directory: Path) -> dict | None:
    try:
        return json.loads((Path(directory) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def write_state(directory: Path, state: dict) -> None:
    tmp = Path(directory) / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(Path(directory) / STATE_FILE)


def _audit_policy(folder: Path) -> Path:
    """The API server's audit policy: every request of a client (user, verb, resource, answer) at Metadata level,
    once it is answered; the control plane's own components and the lab node are left out (their traffic is
    constant and nobody audits them here). ``audit.log`` is how tests prove what the harness asked."""
    policy = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived", "ResponseStarted"],
              "rules": [{"level": "None", "users": ["system:kube-controller-manager", "system:kube-scheduler", "system:apiserver"]},
                        {"level": "None", "userGroups": ["system:nodes", "system:serviceaccounts:kube-system"]},
                        {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*", "/version"]},
                        {"level": "Metadata"}]}
    path = folder / "audit-policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def audit_events(directory: Path, user: str | None = None) -> list[dict]:
    """The audit log's events (newest last), those of ``user`` when given."""
    path = kube_dir(directory) / "audit.log"
    out = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line being written
        if user is None or (event.get("user") or {}).get("username") == user:
            out.append(event)
    return out


# ----------------------------------------------------------------------------------- processes


def launch(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, cwd=str(log_path.parent), start_new_session=True)
    finally:
        log.close()


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(" ".join(ln.split())[:240] for ln in text[-lines:]) or "(empty log)"


def _tls_context(ca: str, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    if cert and key:
        ctx.load_cert_chain(cert, key)
    return ctx


def https_get(url: str, ctx: ssl.SSLContext, timeout_s: float = 2.0) -> tuple[int, bytes]:
    """(status, body); status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout_s) as resp:  # noqa: S310 - our own loopback server
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, ssl.SSLError):
        return 0, b""


def wait_for(check, procs: dict[str, tuple[subprocess.Popen, Path]], what: str, deadline: float, log_hint: Path) -> float:
    """Poll ``check()`` until it is true; a process of ``procs`` that exits first, or the deadline, is an error."""
    t0 = time.monotonic()
    while True:
        if check():
            return time.monotonic() - t0
        for name, (proc, log) in procs.items():
            if proc.poll() is not None:
                raise ControlPlaneError(f"{name} exited with status {proc.returncode} while waiting for {what}; its log {log}: {tail(log)}")
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"{what} not within {START_TIMEOUT_S:g} s; see {log_hint}: {tail(log_hint)}")
        time.sleep(0.1)


def stop_pid(pid: int, start_time: int | None, grace_s: float = 5.0) -> bool:
    """SIGTERM (its whole session), SIGKILL after ``grace_s``; only if the PID is still that process."""
    import signal

    if start_time is None or process_start_time(pid) != start_time:
        return False
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return True
        t0 = time.monotonic()
        while time.monotonic() - t0 < wait:
            try:
                os.waitpid(pid, os.WNOHANG)  # our own child: reap it
            except ChildProcessError:
                pass
            if not running(pid):
                return True
            time.sleep(0.05)
    return True


# ----------------------------------------------------------------------------------- start and stop


def start(directory: Path, log=print) -> dict:
    """Start etcd, the API server, the controller manager and the scheduler; wait until the API server
    is ready. Returns (and records in ``directory/kube.json``) ports, PIDs, paths. ControlPlaneError on failure."""
    ok, why = available()
    if not ok:
        raise ControlPlaneError(why)
    directory = Path(directory).resolve()
    folder = kube_dir(directory)
    stop(directory)  # a previous run's leftovers first
    folder.mkdir(parents=True)
    os.chmod(folder, 0o700)
    bins = bin_dir()
    t0 = time.monotonic()
    certs = make_pki(folder / "pki")
    ports = {"etcd": free_port(), "etcd_peer": free_port(), "apiserver": free_port(), "controller_manager": free_port(),
             "scheduler": free_port()}
    server = f"https://127.0.0.1:{ports['apiserver']}"
    state: dict = {"schema": SCHEMA, "version": KUBE_VERSION, "dir": str(folder), "server": server, "ports": ports,
                   "pki": certs, "node": NODE_NAME, "processes": {}, "kubeconfig": str(directory / "kubeconfig"),
                   "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    configs = {}
    for who in ("controller-manager", "scheduler", "node"):
        configs[who] = str(kubeconfig(folder / f"{who}.kubeconfig", server, certs["ca"], certs[who]["cert"], certs[who]["key"], who))
    kubeconfig(directory / "kubeconfig", server, certs["ca"], certs["admin"]["cert"], certs["admin"]["key"], "nimwarden-lab-admin", embed=True)
    state["kubeconfigs"] = configs
    apiserver, cert = certs["apiserver"], certs["apiserver-kubelet-client"]
    argv = {
        "etcd": [str(bins / "etcd"), "--name", NODE_NAME, "--data-dir", str(folder / "etcd"),
                 "--listen-client-urls", f"http://127.0.0.1:{ports['etcd']}", "--advertise-client-urls", f"http://127.0.0.1:{ports['etcd']}",
                 "--listen-peer-urls", f"http://127.0.0.1:{ports['etcd_peer']}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{ports['etcd_peer']}",
                 "--initial-cluster", f"{NODE_NAME}=http://127.0.0.1:{ports['etcd_peer']}", "--log-level", "warn"],
        "kube-apiserver": [
            str(bins / "kube-apiserver"), "--advertise-address=127.0.0.1", "--bind-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}", "--insecure-port=0", f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--endpoint-reconciler-type=none",
            f"--tls-cert-file={apiserver['cert']}", f"--tls-private-key-file={apiserver['key']}", f"--client-ca-file={certs['ca']}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction", "--allow-privileged=true",
            f"--service-account-issuer={SA_ISSUER}", f"--service-account-signing-key-file={certs['sa']['key']}",
            f"--service-account-key-file={certs['sa']['pub']}",
            f"--kubelet-certificate-authority={certs['ca']}", f"--kubelet-client-certificate={cert['cert']}",
            f"--kubelet-client-key={cert['key']}", "--kubelet-preferred-address-types=InternalIP",
            f"--audit-policy-file={_audit_policy(folder)}", f"--audit-log-path={folder / 'audit.log'}",
            "--audit-log-maxsize=200", "--audit-log-maxbackup=1",
            "--profiling=false", "--v=0"],
        "kube-controller-manager": [
            str(bins / "kube-controller-manager"), f"--kubeconfig={configs['controller-manager']}",
            f"--authentication-kubeconfig={configs['controller-manager']}", f"--authorization-kubeconfig={configs['controller-manager']}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['controller_manager']}", "--port=0",
            f"--tls-cert-file={apiserver['cert']}", f"--tls-private-key-file={apiserver['key']}",
            "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={certs['sa']['key']}", f"--root-ca-file={certs['ca']}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--pvclaimbinder-sync-period=1s",  # claims bound in a second, not 15
            # Its client's default 20 requests/s throttle the discovery of a dozen CRD groups and the start of each
            # controller (with its own ServiceAccount): the persistent-volume binder started 7 s after the API server.
            "--kube-api-qps=200", "--kube-api-burst=400",
            "--profiling=false", "--v=0"],
        "kube-scheduler": [
            str(bins / "kube-scheduler"), f"--kubeconfig={configs['scheduler']}",
            f"--authentication-kubeconfig={configs['scheduler']}", f"--authorization-kubeconfig={configs['scheduler']}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['scheduler']}", "--port=0",
            f"--tls-cert-file={apiserver['cert']}", f"--tls-private-key-file={apiserver['key']}",
            "--leader-elect=false", "--profiling=false", "--v=0"],
    }
    procs: dict[str, tuple[subprocess.Popen, Path]] = {}

    def run(name: str) -> None:
        log_path = folder / f"{name}.log"
        proc = launch(argv[name], log_path)
        procs[name] = (proc, log_path)
        state["processes"][name] = {"pid": proc.pid, "start_time": process_start_time(proc.pid), "log": str(log_path)}
        write_state(directory, state)  # PIDs at once, so that stop() finds them after a crash

    try:
        run("etcd")
        run("kube-apiserver")  # it retries etcd until etcd answers
        deadline = time.monotonic() + START_TIMEOUT_S
        admin = _tls_context(certs["ca"], certs["admin"]["cert"], certs["admin"]["key"])
        wait_for(lambda: https_get(f"{server}/readyz", admin)[0] == 200, procs, "the API server's /readyz", deadline,
                 folder / "kube-apiserver.log")
        # Only now: started earlier they read the authentication ConfigMap before RBAC's bootstrap
        # roles exist, and exit.
        run("kube-controller-manager")
        run("kube-scheduler")
        state["ready_s"] = round(time.monotonic() - t0, 2)
        write_state(directory, state)
        log(f"lab: Kubernetes {KUBE_VERSION} API server ready at {server} in {state['ready_s']:.1f}s (admin kubeconfig {directory / 'kubeconfig'})")
    except BaseException:
        stop(directory)
        raise
    return state


def wait_components(directory: Path, timeout_s: float = START_TIMEOUT_S) -> float:
    """Until the controller manager and the scheduler answer /healthz (they reach the API server on their own)."""
    state = read_state(directory) or {}
    certs, ports = state["pki"], state["ports"]
    ctx = _tls_context(certs["ca"])
    procs = {n: (_Pid(p["pid"]), Path(p["log"])) for n, p in state["processes"].items()}
    deadline = time.monotonic() + timeout_s
    took = 0.0
    for name, port in (("kube-controller-manager", ports["controller_manager"]), ("kube-scheduler", ports["scheduler"])):
        took = max(took, wait_for(lambda port=port: https_get(f"https://127.0.0.1:{port}/healthz", ctx)[0] == 200, procs,
                                  f"{name}'s /healthz", deadline, Path(state["processes"][name]["log"])))
    return took


class _Pid:
    """The poll() of a Popen for a process recorded by PID (started by another call)."""

    def __init__(self, pid: int):
        self.pid, self.start_time, self.returncode = pid, process_start_time(pid), None

    def poll(self):
        if process_start_time(self.pid) != self.start_time or not running(self.pid):
            self.returncode = "gone"
            return self.returncode
        return None


def stop(directory: Path, log=lambda *_: None) -> int:
    """Stop every control-plane process (recorded, or left over under the folder) and remove the folder."""
    directory = Path(directory).resolve()
    folder = kube_dir(directory)
    state = read_state(directory)
    stopped = 0
    # the kubelet first (it writes to the API server), etcd last (the others write to it)
    order = ("lab-kubelet", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")
    recorded = (state or {}).get("processes", {})
    for name in sorted(recorded, key=lambda n: order.index(n) if n in order else -1):
        p = recorded[name]
        if stop_pid(int(p["pid"]), p.get("start_time")):
            stopped += 1
            log(f"lab: stopped {name} (pid {p['pid']})")
    if folder.exists():
        for pid in processes_under(folder):  # what a crashed lab left: command lines naming the folder
            if stop_pid(pid, process_start_time(pid), grace_s=2.0):
                stopped += 1
                log(f"lab: stopped leftover control-plane process {pid}")
    shutil.rmtree(folder, ignore_errors=True)
    for path in (directory / STATE_FILE, directory / "kubeconfig"):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    return stopped
