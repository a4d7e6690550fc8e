"""A real Kubernetes API server under the lab: control plane, lab node, the lab's manifests applied.

``up(directory)`` starts the control plane (:mod:`.control_plane`: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler — Kubernetes 1.20.2, the newest real API server Debian's
registry can build: bookworm's ``kubernetes`` source package; trixie's and sid's newer sources
build only kubectl, and PyPI and npm carry no API server binaries), then the lab node
(:mod:`.kubelet`), then applies the lab's own CRDs (:mod:`.crds <nimwarden.lab.kube.apply>`)
and the given manifests. The admin kubeconfig is ``<directory>/kubeconfig``; everything else,
logs included, is under ``<directory>/kube/``; ``down(directory)`` removes it all.

What a 1.20 API server cannot show (Pod Security admission, fields added after 1.20) stays with
the replay double in the tests; CronJob is served as ``batch/v1beta1`` only, which the live
reader falls back to.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from nimwarden.lab.kube import control_plane
from nimwarden.lab.kube.control_plane import KUBE_VERSION, NODE_NAME, ControlPlaneError, available, read_state

# The one image the lab node "has": a Python 3 image, played by this machine's /usr/bin/python3.
# Probe pods (NETPOL-ENFORCED-001 in a cluster) name it; every other image is a stand-in or ErrImagePull.
PYTHON_IMAGE = "docker.io/library/python:3.12-slim"
NODE_READY_TIMEOUT_S = 30.0
ROLLOUT_TIMEOUT_S = 30.0

__all__ = ["KUBE_VERSION", "NODE_NAME", "PYTHON_IMAGE", "ControlPlaneError", "available", "down", "read_state", "up",
           "Background", "place", "admin_api", "status"]


def admin_api(directory: Path):
    """A REST client for the lab's API server as its admin (``system:masters``)."""
    from nimwarden.lab.kube.rest import Api

    state = read_state(directory)
    if not state:
        raise ControlPlaneError(f"no control plane recorded in {directory}")
    admin = state["pki"]["admin"]
    return Api({"server": state["server"], "ca": state["pki"]["ca"], "cert": admin["cert"], "key": admin["key"]})


def _kubelet_config(directory: Path, state: dict, placement: dict, stand_in_images: list[str],
                    runnable_images: list[str]) -> Path:
    from nimwarden.lab.kube.kubelet import write_config

    folder = control_plane.kube_dir(directory)
    pki = state["pki"]
    return write_config(
        folder / "kubelet.json", server=state["server"], ca=pki["ca"], cert=pki["node"]["cert"], key=pki["node"]["key"],
        serving_cert=pki["kubelet"]["cert"], serving_key=pki["kubelet"]["key"], node=NODE_NAME, version=KUBE_VERSION,
        port=state["ports"]["kubelet"], log_dir=str(folder / "pods"), ready_file=str(folder / "kubelet.ready"),
        placement=placement, stand_in_images=stand_in_images, runnable_images=runnable_images)


def place(directory: Path, placement: dict | None = None, stand_in_images: list[str] | None = None,
          runnable_images: list[str] | None = None) -> None:
    """Change where the lab node puts pods (namespace → {netns, address}) and what it runs; read at once."""
    from nimwarden.lab.kube.kubelet import write_config

    path = control_plane.kube_dir(directory) / "kubelet.json"
    config = json.loads(path.read_text())
    for key, value in (("placement", placement), ("stand_in_images", stand_in_images), ("runnable_images", runnable_images)):
        if value is not None:
            config[key] = value
    write_config(path, **config)


def _start_kubelet(directory: Path, state: dict, config: Path) -> Callable[[float], float]:
    """Launch the lab node; returns the wait for its registration (it retries the API server meanwhile)."""
    folder = control_plane.kube_dir(directory)
    log_path = folder / "lab-kubelet.log"
    proc = control_plane.launch([sys.executable, "-m", "nimwarden.lab.kube.kubelet", str(config)], log_path,
                                env={"PYTHONPATH": str(Path(__file__).resolve().parents[3])})
    state["processes"]["lab-kubelet"] = {"pid": proc.pid, "start_time": control_plane.process_start_time(proc.pid), "log": str(log_path)}
    control_plane.write_state(directory, state)
    return lambda deadline: control_plane.wait_for(lambda: (folder / "kubelet.ready").exists(), {"lab-kubelet": (proc, log_path)},
                                                   "the lab node's registration", deadline, log_path)


def _node_ready(directory: Path, deadline: float) -> None:
    api = admin_api(directory)
    try:
        while True:
            status, node = api.call("GET", f"/api/v1/nodes/{NODE_NAME}")
            conditions = {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or ()}
            taints = [t.get("key") for t in (node.get("spec") or {}).get("taints") or ()]
            if status == 200 and conditions.get("Ready") == "True" and not taints:
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"node {NODE_NAME} not Ready and untainted in time (conditions {conditions}, taints {taints})")
            time.sleep(0.2)
    finally:
        api.close()


def up(directory: Path, manifests: Iterable[str | Path] = (), placement: Callable[[], dict] | dict | None = None,
       stand_in_images: list[str] | None = None, runnable_images: list[str] | None = None, log=print) -> dict:
    """Control plane, lab node, CRDs and ``manifests``; returns the state (``directory/kube.json``)."""
    from nimwarden.lab.kube.apply import apply_paths, wait_rollouts

    directory = Path(directory).resolve()
    t0 = time.monotonic()
    state = control_plane.start(directory, log)
    try:
        state["ports"]["kubelet"] = control_plane.free_port()
        where = placement() if callable(placement) else (placement or {})
        config = _kubelet_config(directory, state, where, list(stand_in_images or []), list(runnable_images or [PYTHON_IMAGE]))
        registered = _start_kubelet(directory, state, config)
        api = admin_api(directory)
        try:
            # Applying needs only the API server: it runs while the node registers and the controllers start.
            applied = apply_paths(api, manifests)
            registered(time.monotonic() + control_plane.START_TIMEOUT_S)
            control_plane.wait_components(directory)
            _node_ready(directory, time.monotonic() + NODE_READY_TIMEOUT_S)
            late = wait_rollouts(api, applied.docs, ROLLOUT_TIMEOUT_S)  # the Deployments' pods exist (and run on the node) when up returns
        finally:
            api.close()
        if late:
            log(f"lab: not ready in {ROLLOUT_TIMEOUT_S:g} s on the lab node: {'; '.join(late)}")
        state["applied"] = {"created": len(applied.created), "updated": len(applied.updated), "seconds": round(applied.seconds, 2)}
        state["up_s"] = round(time.monotonic() - t0, 2)
        control_plane.write_state(directory, state)
        log(f"lab: Kubernetes node {NODE_NAME} Ready; {len(applied.created)} object(s) applied in {applied.seconds:.1f}s "
            f"(control plane up in {state['up_s']:.1f}s)")
    except BaseException:
        control_plane.stop(directory)
        raise
    return state


def status(directory: Path) -> dict:
    """Whether the control plane recorded in ``directory`` runs: each process alive (same PID and start time), /readyz."""
    state = read_state(directory)
    if not state:
        return {"running": False}
    alive = {n: control_plane.process_start_time(int(p["pid"])) == p.get("start_time") for n, p in state["processes"].items()}
    admin = state["pki"]["admin"]
    ready = control_plane.https_get(f"{state['server']}/readyz",
                                    control_plane._tls_context(state["pki"]["ca"], admin["cert"], admin["key"]))[0] == 200
    return {"running": all(alive.values()) and ready, "server": state["server"], "kubeconfig": state["kubeconfig"],
            "processes": alive, "ready": ready}


def down(directory: Path, log=print) -> int:
    return control_plane.stop(Path(directory), log)


class Background:
    """``up`` on a thread, so that the lab starts its other parts meanwhile; ``result()`` joins it.

    ``result()`` returns the state, or raises what ``up`` raised. A lab that fails before joining
    calls ``down`` anyway (the thread's processes are recorded in ``kube.json`` at once).
    """

    def __init__(self, directory: Path, **kwargs):
        self._out: dict = {}
        self._thread = threading.Thread(target=self._run, args=(directory,), kwargs=kwargs, daemon=True, name="kube-up")
        self._thread.start()

    def _run(self, directory: Path, **kwargs) -> None:
        try:
            self._out["state"] = up(directory, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the joining thread
            self._out["error"] = exc

    def result(self, timeout_s: float = 180.0) -> dict:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise ControlPlaneError(f"the control plane did not come up within {timeout_s:g} s")
        if "error" in self._out:
            raise self._out["error"]
        return self._out["state"]


def process_memory(directory: Path) -> dict[str, int]:
    """Resident memory (kB) of each control-plane process now (``VmRSS``), for benchmarks."""
    out = {}
    for name, p in ((read_state(directory) or {}).get("processes") or {}).items():
        try:
            status = Path(f"/proc/{p['pid']}/status").read_text()
        except OSError:
            continue
        rss = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), None)
        if rss:
            out[name] = int(rss)
    return out

