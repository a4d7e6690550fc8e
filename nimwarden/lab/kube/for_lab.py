"""The lab's side of its API server: started first and on a thread by ``nimwarden lab up``, its node placing
pods in the lab network's namespaces once that is up, joined at the end; and the lab profile's
``kubernetes`` section as the lab can serve it — live, or from its manifests where no API server runs."""

from __future__ import annotations

from pathlib import Path

from nimwarden.lab import kube


class Cluster:
    """The control plane starting on a thread; its node learns the lab network's placement when that is up."""

    def __init__(self, directory: Path, manifests: Path, log):
        import threading

        self._net: dict | None = None
        self._decided = threading.Event()
        self.background = kube.Background(directory, manifests=[manifests], placement=self._placement, stand_in_images=["*"], log=log)

    def network(self, net: dict | None) -> None:
        if not self._decided.is_set():
            self._net = net
            self._decided.set()

    def cancel(self) -> None:
        """The lab failed: let the thread finish (bounded) before ``down`` removes what it started."""
        self.network(None)
        try:
            self.background.result()
        except Exception:  # noqa: BLE001, S110 - down() stops whatever it started
            pass

    def _placement(self) -> dict:
        """Each namespace of the lab network at its namespace's address (pods there are the lab's processes)."""
        self._decided.wait(60)
        positions = (self._net or {}).get("positions", {})
        return {p["model_pod"].split("/")[0]: {"netns": p["netns"], "address": p["address"]} for p in positions.values()}


def start(directory: Path, manifests: Path, log) -> Cluster | None:
    ok, why = kube.available()
    if not ok:
        log(f"lab: no Kubernetes API server: {why}; the lab's cluster state is read from its manifests")
        return None
    return Cluster(directory, manifests, log)


def join(cluster: Cluster | None, directory: Path, log) -> dict:
    """The lab state's ``kube`` entry: where the API server is, or why there is none (the profile then reads manifests)."""
    if cluster is None:
        return {"running": False, "reason": kube.available()[1]}
    try:
        st = cluster.background.result()
    except Exception as exc:  # noqa: BLE001 - the lab runs on without it: one line, and the manifests stand in
        kube.down(directory, log=lambda *_: None)
        reason = " ".join(str(exc).split())[:400]
        log(f"lab: no Kubernetes API server: {reason}; the lab's cluster state is read from its manifests")
        return {"running": False, "reason": reason}
    return {"running": True, "version": st["version"], "server": st["server"], "kubeconfig": st["kubeconfig"],
            "node": st["node"], "up_s": st.get("up_s"), "applied": st.get("applied")}


def kubernetes_section(section: dict, state: dict, base: Path) -> dict:
    """A lab profile's ``kubernetes`` section (paths relative to ``base``) as this lab can serve it: read live
    from the lab's API server (its kubeconfig), or — where none runs — from the manifests it lists in
    ``paths``, the same objects."""
    out = dict(section)
    out["paths"] = [str((base / p).resolve()) for p in section.get("paths") or ()]
    if section.get("source") != "live":
        return out
    cluster = state.get("kube") or {}
    if cluster.get("running"):
        out["kubeconfig"] = cluster["kubeconfig"]
        return out
    out.pop("kubeconfig", None)
    out.pop("context", None)
    out["source"] = "manifests"
    return out


def profile_for(target_file: Path, state: dict) -> Path:
    """``targets/lab.yaml`` when the lab's API server runs; otherwise a copy beside the lab state that reads
    the same cluster from its manifests (:func:`kubernetes_section`), so that the audit judges the same
    objects instead of failing every cluster control on a missing kubeconfig."""
    import yaml

    if (state.get("kube") or {}).get("running"):
        return target_file
    profile = yaml.safe_load(target_file.read_text(encoding="utf-8"))
    base = target_file.resolve().parent
    if (profile.get("kubernetes") or {}).get("source") != "live":
        return target_file
    profile["kubernetes"] = kubernetes_section(profile["kubernetes"], state, base)
    profile["lab"] = {"state_file": str(Path(state["dir"]) / "state.json")}
    if "waivers" in profile:
        profile["waivers"] = str((base / profile["waivers"]).resolve())
    out = Path(state["dir"]) / "lab-manifests.yaml"
    out.write_text(f"# {target_file.name} with the lab's manifests as its cluster state: no Kubernetes API server "
                   f"runs here ({(state.get('kube') or {}).get('reason', '')})\n" + yaml.safe_dump(profile, sort_keys=False))
    return out
