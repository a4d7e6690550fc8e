"""The lab kubelet: one Node, kept Ready, that runs the pods the real scheduler binds to it.

A lab part, not a Kubernetes kubelet: there is no container runtime here (a real kubelet with
containerd needs privileges this sandbox lacks), so it does what a kubelet does through the API
and runs pods the way the lab can:

- **Node**: registers ``nimwarden-lab`` (InternalIP 127.0.0.1, its log port as the kubelet
  endpoint) and keeps it Ready: a Lease renewal in ``kube-node-lease`` and a status heartbeat
  every 10 s (without them the node controller marks it NotReady after 40 s).
- **Pods** bound to the node (polled every ``poll_s``, ``spec.nodeName`` field selector) get one of
  three treatments, decided by image:

  * an image in ``runnable_images``: each container's ``command + args`` runs as a local process
    (``python3`` is this machine's ``/usr/bin/python3``, the "image's" interpreter), as the pod's
    ``runAsUser`` (``setpriv``, when root), inside the network namespace its Kubernetes
    namespace is placed in (``placement``), killed at ``activeDeadlineSeconds``; stdout and
    stderr are its log; the exit status its ``terminated`` state (with the log's tail as the
    message under ``FallbackToLogsOnError``). This is how NETWORK-POLICY probe pods run.
  * an image in ``stand_in_images`` (``*``: any image not run): the lab's own process plays the
    container (tritonserver in its network namespace, for the lab's Deployments): the pod is
    reported Running at the placement's address, nothing is started.
  * anything else stays Waiting with ``ErrImagePull`` (no registry, no runtime) — as a node
    that cannot pull the image would say.

- **Status** goes back through the ``pods/status`` subresource (strategic merge, so conditions
  that others own — readiness gates — stay). A pod being deleted (``deletionTimestamp``) has its
  processes killed and is then deleted with grace period 0, as the kubelet's status manager does.
- **Logs**: the API server proxies ``GET pods/{name}/log`` to the node's kubelet endpoint; this
  serves ``/containerLogs/{namespace}/{pod}/{container}`` over HTTPS with the lab CA's
  certificate, and only to clients presenting a certificate from that CA (the API server's
  kubelet-client certificate). Serving the real path, rather than reading termination messages,
  keeps the harness's log read — and its RBAC (``pods/log``) — the one a real cluster sees.

Run as ``python -m nimwarden.lab.kube.kubelet CONFIG.json`` (started and stopped by
:mod:`nimwarden.lab.kube`); the config is re-read when it changes (tests move the placement).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from nimwarden.lab.kube.pods import PodRun, killpg, log_server, micro_now, now, pod_status, run_container
from nimwarden.lab.kube.rest import Api

HEARTBEAT_S = 10.0
TERMINAL = ("Succeeded", "Failed")


class LabKubelet:
    def __init__(self, config_path: Path):
        self.config_path = Path(config_path)
        self._mtime = 0.0
        self.config: dict = {}
        self.reload()
        self.api = Api(self.config)
        self.node = self.config["node"]
        self.log_dir = Path(self.config["log_dir"])
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.pods: dict[str, PodRun] = {}
        self.stopping = threading.Event()
        self.errors: list[str] = []

    # -- config ------------------------------------------------------------------------------
    def reload(self) -> None:
        try:
            mtime = self.config_path.stat().st_mtime
        except OSError:
            return
        if mtime != self._mtime:
            self.config = json.loads(self.config_path.read_text())
            self._mtime = mtime

    def placement(self, namespace: str) -> dict:
        return (self.config.get("placement") or {}).get(namespace) or {}

    # -- node ----------------------------------------------------------------------------------
    def node_status(self) -> dict:
        at = now()
        ready = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "the lab kubelet is posting ready status",
                 "lastHeartbeatTime": at, "lastTransitionTime": self._ready_since}
        pressure = [{"type": t, "status": "False", "reason": f"KubeletHas{r}", "message": "", "lastHeartbeatTime": at,
                     "lastTransitionTime": self._ready_since}
                    for t, r in (("MemoryPressure", "SufficientMemory"), ("DiskPressure", "NoDiskPressure"), ("PIDPressure", "SufficientPID"))]
        # A GPU node as the GPU Operator's device plugin advertises it: the lab's manifests request nvidia.com/gpu.
        capacity = {"cpu": "64", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi", "nvidia.com/gpu": "8"}
        return {
            "capacity": capacity, "allocatable": capacity, "conditions": [*pressure, ready],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.node}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": int(self.config["port"])}},
            "nodeInfo": {"machineID": "nimwarden-lab", "systemUUID": "nimwarden-lab", "bootID": "nimwarden-lab",
                         "kernelVersion": os.uname().release, "osImage": "nimwarden lab", "containerRuntimeVersion": "nimwarden-lab://0",
                         "kubeletVersion": f"v{self.config.get('version', '1.20.2')}", "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64"},
        }

    def register(self, timeout_s: float = 30.0) -> None:
        self._ready_since = now()
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node, "kubernetes.io/os": "linux",
                                                           "kubernetes.io/arch": "amd64", "nimwarden.dev/lab-node": "true"}},
                "spec": {}, "status": self.node_status()}
        deadline = time.monotonic() + timeout_s
        while True:
            status, body = self.api.call("POST", "/api/v1/nodes", node)
            if status in (201, 409):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot register node {self.node}: HTTP {status}: {body.get('message', '')}")
            time.sleep(0.5)
        self.heartbeat()

    def heartbeat(self) -> None:
        self.api.call("PATCH", f"/api/v1/nodes/{self.node}/status", {"status": self.node_status()},
                      content_type="application/strategic-merge-patch+json")
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node}"
        lease_spec = {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": micro_now()}
        status, _ = self.api.call("PATCH", path, {"spec": lease_spec}, content_type="application/merge-patch+json")
        if status == 404:
            self.api.call("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                          {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": self.node, "namespace": "kube-node-lease"}, "spec": lease_spec})

    def heartbeats(self) -> None:
        while not self.stopping.wait(HEARTBEAT_S):
            try:
                self.heartbeat()
            except Exception as exc:  # noqa: BLE001 - a lost heartbeat is retried; the node goes NotReady if they all fail
                self.errors.append(f"heartbeat: {exc}")

    # -- pods ----------------------------------------------------------------------------------
    def pod_address(self) -> str:
        """An address of the node's pod range (10.244.0.0/24) for a pod whose namespace has no network position:
        nothing listens there, but Endpoints accept it (they refuse loopback)."""
        self._next_ip = getattr(self, "_next_ip", 1) % 254 + 1
        return f"10.244.0.{self._next_ip}"

    def sync(self) -> None:
        self.reload()
        status, body = self.api.call("GET", "/api/v1/pods", params={"fieldSelector": f"spec.nodeName={self.node}"})
        if status != 200:
            return
        seen = set()
        for pod in body.get("items") or ():
            meta = pod.get("metadata") or {}
            uid = meta.get("uid")
            if not uid:
                continue
            seen.add(uid)
            run = self.pods.get(uid)
            if run is not None:
                run.body = pod  # conditions others own (readiness gates) as they are now
            if meta.get("deletionTimestamp"):
                self.finish_deletion(pod, run)
                continue
            if run is None:
                if (pod.get("status") or {}).get("phase") in TERMINAL:
                    continue  # finished before this kubelet started: nothing to run
                run = self.pods[uid] = PodRun(pod, self.log_dir)
                self.start(run)
            self.report(run)
        for uid in set(self.pods) - seen:  # deleted at once (grace period 0): stop what still runs
            self.kill(self.pods.pop(uid))

    def start(self, run: PodRun) -> None:
        spec = run.body["spec"]
        place = self.placement(run.namespace)
        run.pod_ip = "127.0.0.1" if spec.get("hostNetwork") else place.get("address") or self.pod_address()
        runnable = set(self.config.get("runnable_images") or ())
        stand_ins = set(self.config.get("stand_in_images") or ())
        images = [c.get("image", "") for c in spec["containers"]]
        if images and all(i in runnable for i in images):
            for c, container in zip(spec["containers"], run.containers):
                threading.Thread(target=run_container, args=(run, c, container, place), daemon=True).start()
            run.phase = "Running"
        elif images and ("*" in stand_ins or all(i in stand_ins for i in images)):
            for container in run.containers:
                container.state = {"running": {"startedAt": now()}}
                container.ready, container.started = True, True
                container.log.write_text(f"(the lab's own process plays this container; image {images} is not run here)\n")
            run.phase = "Running"
        else:
            for c, container in zip(spec["containers"], run.containers):
                if c.get("image") not in runnable:
                    container.state = {"waiting": {"reason": "ErrImagePull", "message":
                                                   f"the lab node has no container runtime and cannot pull {c.get('image')}"}}

    def kill(self, run: PodRun) -> None:
        for container in run.containers:
            proc = container.proc
            if proc is not None and proc.poll() is None:
                killpg(proc)
        shutil.rmtree(run.dir, ignore_errors=True)

    def finish_deletion(self, pod: dict, run: PodRun | None) -> None:
        meta = pod["metadata"]
        if run is not None:
            self.kill(self.pods.pop(meta["uid"], run))
        self.api.call("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                      {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}})

    def report(self, run: PodRun) -> None:
        status = pod_status(run)
        key = json.dumps({k: v for k, v in status.items() if k != "conditions"}, sort_keys=True) + \
            json.dumps([(c["type"], c["status"]) for c in status["conditions"]])
        if key == run.reported:
            return
        code, body = self.api.call("PATCH", f"/api/v1/namespaces/{run.namespace}/pods/{run.name}/status", {"status": status},
                                   content_type="application/strategic-merge-patch+json")
        if code == 200:
            run.reported = key
            run.body["status"] = body.get("status") or status

    def pods_loop(self) -> None:
        poll_s = float(self.config.get("poll_s", 0.3))
        while not self.stopping.is_set():
            try:
                self.sync()
            except Exception as exc:  # noqa: BLE001 - one bad round must not stop the node; the next retries
                self.errors.append(f"sync: {type(exc).__name__}: {exc}")
            self.stopping.wait(poll_s)

    # -- lifetime ------------------------------------------------------------------------------
    def serve(self) -> None:
        server = log_server(self.pods, self.node, self.config)
        threading.Thread(target=server.serve_forever, daemon=True, name="logs").start()
        self.register()
        threading.Thread(target=self.heartbeats, daemon=True, name="heartbeats").start()

        def stop(*_):
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        Path(self.config["ready_file"]).write_text(now())
        try:
            self.pods_loop()
        finally:
            for run in list(self.pods.values()):
                self.kill(run)
            server.shutdown()


def write_config(path: Path, **config: Any) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m nimwarden.lab.kube.kubelet CONFIG.json", file=sys.stderr)
        return 2
    LabKubelet(Path(args[0])).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
