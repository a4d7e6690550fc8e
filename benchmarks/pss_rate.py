"""Benchmark: Pod Security Standards evaluation rate (goal: 10,000 pods against restricted in < 1 s).

Generates a reproducible mix of pods (compliant, each kind of violation, init and ephemeral
containers, Windows pods) and evaluates them with nimwarden.families.pod_security.pss. Prints JSON lines:
one per repeat, then a summary with the best and median times and the rate.

    .venv/bin/python benchmarks/pss_rate.py [--pods 10000] [--repeats 5] [--level restricted]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nimwarden.families.pod_security.pss import MAX_VERSION, evaluate_pod  # noqa: E402

GOOD_CONTAINER = {"name": "nim", "image": "nvcr.io/nim/x:1", "ports": [{"containerPort": 8000}],
                  "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}}
GOOD_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "nim", "labels": {"app": "nim"}},
            "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [GOOD_CONTAINER], "volumes": [{"name": "m", "persistentVolumeClaim": {"claimName": "m"}}]}}

MUTATIONS = [
    lambda p: None,
    lambda p: p["spec"]["containers"][0]["securityContext"].update(privileged=True),
    lambda p: p["spec"].update(hostNetwork=True),
    lambda p: p["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/var/cache/nim"}}),
    lambda p: p["spec"]["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
    lambda p: p["spec"]["securityContext"].pop("runAsNonRoot"),
    lambda p: p["spec"]["securityContext"].update(runAsUser=0),
    lambda p: p["spec"]["securityContext"].pop("seccompProfile"),
    lambda p: p["spec"]["containers"][0]["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
    lambda p: p["spec"].update(initContainers=[copy.deepcopy(GOOD_CONTAINER) | {"name": "init"}]),
    lambda p: p["spec"].update(ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
    lambda p: p["spec"].update(os={"name": "windows"}),
    lambda p: p["spec"]["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
    lambda p: p["spec"]["containers"].append(copy.deepcopy(GOOD_CONTAINER) | {"name": "sidecar"}),
]


def generate(n: int, seed: int = 42) -> list[dict]:
    rng = random.Random(seed)
    pods = []
    for i in range(n):
        pod = copy.deepcopy(GOOD_POD)
        pod["metadata"]["name"] = f"p{i}"
        for m in rng.sample(MUTATIONS, k=rng.randint(1, 3)):
            m(pod)
        pods.append(pod)
    return pods


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--level", default="restricted")
    ap.add_argument("--version", default="latest")
    args = ap.parse_args()
    pods = generate(args.pods)
    times, allowed = [], 0
    for r in range(args.repeats):
        t0 = time.perf_counter()
        results = [evaluate_pod(p, args.level, args.version) for p in pods]
        elapsed = time.perf_counter() - t0
        times.append(elapsed)
        allowed = sum(1 for x in results if x.allowed)
        print(json.dumps({"benchmark": "pss_rate", "repeat": r, "pods": args.pods, "seconds": round(elapsed, 4),
                          "pods_per_s": round(args.pods / elapsed)}), flush=True)
    best, median = min(times), statistics.median(times)
    print(json.dumps({"benchmark": "pss_rate", "summary": True, "pods": args.pods, "level": args.level,
                      "policy_version": args.version if args.version != "latest" else f"latest (v1.{MAX_VERSION[1]})",
                      "allowed": allowed, "denied": args.pods - allowed, "best_s": round(best, 4), "median_s": round(median, 4),
                      "pods_per_s_median": round(args.pods / median), "goal_s": 1.0, "goal_met": median < 1.0,
                      "python": platform.python_version(), "machine": platform.machine()}), flush=True)
    return 0 if median < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
