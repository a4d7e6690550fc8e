"""What the embedded lab costs once set up: start time, memory per part, stop time. Prints JSON lines.

Usage: .venv/bin/python benchmarks/lab_cost.py [--repeat 2] [--without-nemo] [--without-ray]

Memory is read from /proc for every process of this lab (those inside its network namespaces, and those
whose command line names its folder or its namespaces' tag), grouped by part: the resident set (RSS, what
`ps` shows; shared pages counted once per process) and the proportional set (PSS, shared pages split
between the processes that share them: the sum is what the lab really occupies).
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
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARTS = (  # (part, a pattern of its command line), first match wins
    ("tritonserver", r"tritonserver|triton_python_backend_stub"),
    ("ray", r"ray-\d|/ray/|raylet|gcs_server|dashboard|ray::|default_worker|log_monitor|runtime_env"),
    ("nemo-platform", r"services run"),
    ("nemo-guardrails", r"nemoguardrails|uvicorn"),
    ("kubernetes", r"kube-apiserver|kube-controller|kube-scheduler|etcd"),
    ("nginx", r"nginx"),
    ("stand-ins", r"nimstub|nemo_legacy|http\.server"),
    ("port-forwards", r"netns import main"),
)


def _netns_inodes(tag: str) -> set[str]:
    out = set()
    for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else ():
        if tag in name:
            try:
                out.add(str(os.stat(f"/run/netns/{name}").st_ino))
            except OSError:
                pass
    return out


def lab_memory(directory: Path, tag: str) -> dict:
    inodes = _netns_inodes(tag)
    rss: Counter = Counter()
    pss: Counter = Counter()
    count: Counter = Counter()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ns = os.readlink(entry / "ns" / "net").split("[")[-1].rstrip("]")
            roll = (entry / "smaps_rollup").read_text()
        except OSError:
            continue
        if ns not in inodes and str(directory) not in cmd and tag not in cmd:
            continue
        part = next((p for p, pattern in PARTS if re.search(pattern, cmd)), "other")
        rss[part] += int(re.search(r"^Rss:\s+(\d+)", roll, re.M).group(1))
        pss[part] += int(re.search(r"^Pss:\s+(\d+)", roll, re.M).group(1))
        count[part] += 1
    return {"parts": {p: {"processes": count[p], "rss_mb": round(rss[p] / 1024), "pss_mb": round(pss[p] / 1024)} for p in sorted(count)},
            "rss_mb": round(sum(rss.values()) / 1024), "pss_mb": round(sum(pss.values()) / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--without-nemo", action="store_true", help="start the lab without its NeMo parts")
    parser.add_argument("--without-ray", action="store_true", help="start the lab without its Ray heads")
    args = parser.parse_args()
    from nimwarden import lab
    from nimwarden.lab import netns

    machine = {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
               "with_nemo": not args.without_nemo, "with_ray": not args.without_ray}
    specs = tuple(lab.ServerSpec(s.name, s.hardened, ray=None if args.without_ray else s.ray, nemo=s.nemo and not args.without_nemo)
                  for s in lab.DEFAULT_SPECS)
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp) / "lab"
            os.chmod(tmp, 0o755)
            lines: list[tuple[float, str]] = []
            t0 = time.monotonic()
            state = lab.up(directory, specs=specs, log=lambda m, lines=lines, t0=t0: lines.append((time.monotonic() - t0, m)))
            up_s = time.monotonic() - t0
            ready = {m.split(" ready in")[0].removeprefix("lab: "): round(t, 1) for t, m in lines if " ready in " in m}
            print(json.dumps({"bench": "lab_up", "run": run, "seconds": round(up_s, 2), "ready_at_s": ready, **machine}), flush=True)
            time.sleep(5)  # let start-up settle: what stays resident
            mem = lab_memory(directory.resolve(), netns.tag_for(directory))
            print(json.dumps({"bench": "lab_memory", "run": run, **mem, **machine}), flush=True)
            t0 = time.monotonic()
            lab.down(directory, log=lambda *_: None)
            print(json.dumps({"bench": "lab_down", "run": run, "seconds": round(time.monotonic() - t0, 2), **machine}), flush=True)
            del state


if __name__ == "__main__":
    main()
