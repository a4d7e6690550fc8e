"""What the lab's real Kubernetes API server costs: its cold build, its start from the cache, its memory. JSON lines.

Usage: .venv/bin/python benchmarks/kube_lab.py [--repeat 3] [--lab]

- ``kube_build_cold``: the one-time build by scripts/build-kube, read from its stamp
  (``<cache>/kubernetes-1.20.2/.nimwarden-installed``) and, where it is still there, its log
  (``--build-log``, default ``<cache>/kubernetes.log``, where scripts/bootstrap keeps it: ``built <binary> in N s`` lines).
- ``kube_start``: ``nimwarden.lab.kube.up`` alone, binaries cached: seconds until the API server's
  /readyz, and until the node is Ready with the lab's CRDs and manifests applied and the Deployments'
  pods running; resident memory (VmRSS) of each process then, and again after ``--settle`` seconds.
- ``lab_up`` (``--lab``): the whole lab with and without its API server (``NIMWARDEN_KUBE_BIN`` at an
  empty folder), the difference being what the control plane adds to the lab's start.
Run it under the lab lock (flock /tmp/nimwarden-lab.lock) on a machine nobody else loads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(log_path: Path) -> dict:
    from nimwarden.lab.kube.control_plane import KUBE_VERSION, bin_dir

    stamp = bin_dir().parent / ".nimwarden-installed"
    out: dict = {"bench": "kube_build_cold", "version": KUBE_VERSION}
    try:
        version, when, seconds = stamp.read_text().split()
        out.update(built_at=when, seconds=int(seconds.rstrip("s")))
    except (OSError, ValueError):
        out["seconds"] = None
    try:
        out["per_binary_s"] = {m.group(1): int(m.group(2)) for m in re.finditer(r"built (\S+) in (\d+) s", log_path.read_text())}
    except OSError:
        pass
    sizes = {p.name: round(p.stat().st_size / 2**20, 1) for p in bin_dir().iterdir() if p.is_file() and not p.is_symlink()}
    out["binaries_mib"] = sizes
    return out


def start(repeat: int, settle: float) -> list[dict]:
    from nimwarden.lab import MANIFESTS, kube

    rows = []
    for i in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.monotonic()
            state = kube.up(Path(tmp), manifests=[MANIFESTS], stand_in_images=["*"], log=lambda *_: None)
            took = time.monotonic() - t0
            rss = kube.process_memory(Path(tmp))
            time.sleep(settle)
            settled = kube.process_memory(Path(tmp))
            kube.down(Path(tmp), log=lambda *_: None)
        rows.append({"bench": "kube_start", "run": i, "apiserver_ready_s": state["ready_s"], "up_s": round(took, 2),
                     "applied": state["applied"], "rss_mib": {k: round(v / 1024) for k, v in rss.items()},
                     "rss_mib_after_settle": {k: round(v / 1024) for k, v in settled.items()},
                     "rss_mib_total": round(sum(settled.values()) / 1024), "settle_s": settle})
    return rows


def lab_up(repeat: int) -> list[dict]:
    from nimwarden import lab

    rows = []
    for with_kube in (True, False):
        for i in range(repeat):
            saved = os.environ.get("NIMWARDEN_KUBE_BIN")
            with tempfile.TemporaryDirectory() as tmp:
                os.chmod(tmp, 0o755)
                if not with_kube:
                    os.environ["NIMWARDEN_KUBE_BIN"] = str(Path(tmp) / "no-kube")
                try:
                    t0 = time.monotonic()
                    state = lab.up(Path(tmp) / "lab", log=lambda *_: None)
                    took = time.monotonic() - t0
                    lab.down(Path(tmp) / "lab", log=lambda *_: None)
                finally:
                    if saved is None:
                        os.environ.pop("NIMWARDEN_KUBE_BIN", None)
                    else:
                        os.environ["NIMWARDEN_KUBE_BIN"] = saved
            rows.append({"bench": "lab_up", "api_server": with_kube, "run": i, "seconds": round(took, 2),
                         "kube_up_s": (state.get("kube") or {}).get("up_s")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds before the second memory reading")
    parser.add_argument("--build-log", type=Path, default=None, help="scripts/build-kube's log (default: <cache>/kubernetes.log)")
    parser.add_argument("--lab", action="store_true", help="also time the whole lab's start with and without its API server")
    args = parser.parse_args()
    from nimwarden.lab import kube
    from nimwarden.lab.cache import cache_dir

    machine = {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()}
    ok, why = kube.available()
    if not ok:
        print(json.dumps({"bench": "kube", "skipped": why, **machine}))
        return
    print(json.dumps({**build(args.build_log or cache_dir() / "kubernetes.log"), **machine}), flush=True)
    for row in start(args.repeat, args.settle):
        print(json.dumps({**row, **machine}), flush=True)
    if args.lab:
        for row in lab_up(args.repeat):
            print(json.dumps({**row, **machine}), flush=True)


if __name__ == "__main__":
    main()
