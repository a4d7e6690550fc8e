"""The lab node's pods: one process per container where the image is runnable, their status and their logs.

Part of the lab kubelet (:mod:`nimwarden.lab.kube.kubelet`, whose docstring says what it runs and why).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Container:
    """One container of one pod: its process (when run), its log file, its state for the pod status."""

    def __init__(self, name: str, log: Path):
        self.name = name
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.state: dict = {"waiting": {"reason": "ContainerCreating"}}
        self.ready = False
        self.started: bool | None = False


class PodRun:
    def __init__(self, body: dict, log_dir: Path):
        meta = body["metadata"]
        self.uid = meta["uid"]
        self.namespace, self.name = meta["namespace"], meta["name"]
        self.body = body
        self.dir = log_dir / f"{self.namespace}_{self.name}_{self.uid}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.containers = [Container(c["name"], self.dir / f"{c['name']}.log") for c in body["spec"]["containers"]]
        self.started_at = time.time()
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.pod_ip = "127.0.0.1"
        self.reported: str | None = None  # the last status sent (JSON), to send only changes
        self.lock = threading.Lock()

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)


def argv(run: PodRun, c: dict, place: dict) -> list[str]:
    """The container's command line: into its namespace's network namespace, as its user, with the local python3."""
    out: list[str] = []
    if place.get("netns") and not run.body["spec"].get("hostNetwork"):
        out += ["ip", "netns", "exec", place["netns"]]
    sc = {**(run.body["spec"].get("securityContext") or {}), **(c.get("securityContext") or {})}
    uid = sc.get("runAsUser")
    if uid is not None and os.geteuid() == 0 and shutil.which("setpriv"):
        gid = sc.get("runAsGroup", uid)
        out += ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
    command = [*(c.get("command") or ()), *(c.get("args") or ())]
    if command and command[0] == "python3":
        command[0] = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    return out + command

def run_container(run: PodRun, c: dict, container: Container, place: dict) -> None:
    command = argv(run, c, place)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": run.name}
    env.update({e["name"]: str(e.get("value", "")) for e in c.get("env") or () if "name" in e and "valueFrom" not in e})
    deadline = run.body["spec"].get("activeDeadlineSeconds")
    with open(container.log, "wb") as log:
        try:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    cwd="/", start_new_session=True)
        except OSError as exc:
            log.write(f"{exc}\n".encode())
            with run.lock:
                container.state = {"terminated": {"exitCode": 128, "reason": "StartError", "message": str(exc)[:300],
                                                  "startedAt": now(), "finishedAt": now()}}
            return
    with run.lock:
        container.proc = proc
        container.state = {"running": {"startedAt": now()}}
        container.started = True
    try:
        code = proc.wait(timeout=float(deadline) if deadline else None)
        reason = "Completed" if code == 0 else "Error"
    except subprocess.TimeoutExpired:
        killpg(proc)
        code = proc.wait()
        reason = "DeadlineExceeded"
        with run.lock:
            run.reason, run.message = "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
    term: dict = {"exitCode": code, "reason": reason, "startedAt": container.state.get("running", {}).get("startedAt", now()),
                  "finishedAt": now()}
    if code != 0 and c.get("terminationMessagePolicy") == "FallbackToLogsOnError":
        lines = container.log.read_text(errors="replace").splitlines()[-80:]
        term["message"] = "\n".join(lines)[-2048:]
    with run.lock:
        container.proc = None
        container.state = {"terminated": term}
        container.started = False

def killpg(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def pod_status(run: PodRun) -> dict:
    with run.lock:
        states = [dict(c.state) for c in run.containers]
        statuses = [{"name": c.name, "state": c.state, "lastState": {}, "ready": c.ready, "restartCount": 0,
                     "image": spec.get("image", ""), "imageID": "", "started": bool(c.started),
                     **({"containerID": f"nimwarden-lab://{run.uid[:8]}-{c.name}"} if "waiting" not in c.state else {})}
                    for c, spec in zip(run.containers, run.body["spec"]["containers"])]
        reason, message = run.reason, run.message
    terminated = [s["terminated"] for s in states if "terminated" in s]
    policy = run.body["spec"].get("restartPolicy", "Always")
    phase = run.phase
    if reason == "DeadlineExceeded":
        phase = "Failed"
    elif len(terminated) == len(states) and policy != "Always":
        phase = "Succeeded" if all(t["exitCode"] == 0 for t in terminated) else "Failed"
    elif any("running" in s for s in states):
        phase = "Running"
    containers_ready = all(c.ready for c in run.containers)
    gates = [g.get("conditionType") for g in run.body["spec"].get("readinessGates") or ()]
    current = {c.get("type"): c.get("status") for c in (run.body.get("status") or {}).get("conditions") or ()}
    ready = containers_ready and all(current.get(g) == "True" for g in gates)
    at = now()
    conditions = [{"type": "Initialized", "status": "True", "lastTransitionTime": at},
                  {"type": "ContainersReady", "status": str(containers_ready), "lastTransitionTime": at},
                  {"type": "Ready", "status": str(ready), "lastTransitionTime": at}]
    status = {"phase": phase, "hostIP": "127.0.0.1", "podIP": run.pod_ip, "podIPs": [{"ip": run.pod_ip}],
              "startTime": dt.datetime.fromtimestamp(run.started_at, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "conditions": conditions, "containerStatuses": statuses, "qosClass": "Burstable"}
    if reason:
        status.update(reason=reason, message=message)
    return status


def log_server(pods: dict, node: str, config: dict) -> ThreadingHTTPServer:
    """The kubelet endpoint the API server proxies ``pods/log`` to (``/containerLogs/{namespace}/{pod}/{container}``)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code: int, text: str, ctype: str = "text/plain") -> None:
            data = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            url = urlparse(self.path)
            parts = [p for p in url.path.split("/") if p]
            if parts == ["healthz"]:
                return self._send(200, "ok")
            if len(parts) != 4 or parts[0] != "containerLogs":
                return self._send(404, "not found")
            _, namespace, name, container_name = parts
            run = next((r for r in list(pods.values()) if (r.namespace, r.name) == (namespace, name)), None)
            container = run.container(container_name) if run else None
            if container is None:
                return self._send(404, f'pod "{name}" or container "{container_name}" not found on node {node}')
            if "waiting" in container.state:
                return self._send(400, f'container "{container_name}" in pod "{name}" is waiting to start: '
                                       f"{container.state['waiting'].get('reason', '')}")
            try:
                text = container.log.read_text(errors="replace")
            except OSError:
                text = ""
            query = parse_qs(url.query)
            if "tailLines" in query:
                n = int(query["tailLines"][0])
                text = "".join(text.splitlines(keepends=True)[-n:]) if n > 0 else ""
            if "limitBytes" in query:
                text = text[: int(query["limitBytes"][0])]
            return self._send(200, text)

    server = ThreadingHTTPServer(("127.0.0.1", int(config["port"])), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config["serving_cert"], config["serving_key"])
    ctx.load_verify_locations(config["ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED  # only the API server (its kubelet-client certificate) reads logs
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server
