#!/usr/bin/env python3
"""Accuracy of nimwarden's load generator against perf_analyzer (JSON lines on stdout).

On one private lab server (the lab's ``add`` model), in one run, alternate
perf_analyzer and our generator at concurrency 1, 4 and 16 over gRPC, with
the same window length and stability rule, and compare throughput (goal:
ours >= 0.95 x perf_analyzer's) and p50 latency (goal: within 10 %). Each
record also carries the server's own average request time over the same
windows (perf_analyzer's "Server: Avg request latency", our Triton metrics
delta), so that a client-side difference can be told apart from a server one.
Alternating rounds (A B A B) keep slow drifts of a shared machine from
favouring one tool; each level's verdict uses the median over rounds.

perf_analyzer comes from the ``tritonclient==2.41.0`` wheel, installed into a
separate benchmark virtualenv (``.nimwarden/bench-venv``, git-ignored) that
this script creates; it needs Debian's ``libb64-0d`` and a ``libcudart.so.12``
(a link to the one inside ``nvidia_pytriton.libs``), see docs/benchmarks.md.

    .venv/bin/python benchmarks/perf_accuracy.py [--rounds 2] [--window-ms 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nimwarden.families.performance import inputs, loadgen, model_info  # noqa: E402
from nimwarden.families.performance.transport import Endpoint  # noqa: E402
from tests import perf_devserver as devserver  # noqa: E402

BENCH_VENV = REPO / ".nimwarden" / "bench-venv"
BENCH_LIB = REPO / ".nimwarden" / "bench-lib"
REFERENCE_WHEEL = "tritonclient==2.41.0"


def emit(**record) -> None:
    print(json.dumps({"bench": "perf_accuracy", **record}), flush=True)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def ensure_perf_analyzer() -> tuple[Path, dict[str, str]]:
    """The perf_analyzer binary and the environment it runs in; builds the bench venv when missing."""
    binary = BENCH_VENV / "bin" / "perf_analyzer"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "-q", REFERENCE_WHEEL], check=True)
    if not binary.exists():
        raise SystemExit(f"{REFERENCE_WHEEL} installed no perf_analyzer binary")
    if "libb64.so.0d" not in subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout:
        raise SystemExit("perf_analyzer needs Debian's libb64-0d: apt-get install libb64-0d")
    import pytriton  # noqa: PLC0415

    libs = Path(pytriton.__file__).resolve().parent.parent / "nvidia_pytriton.libs"
    cudart = sorted(libs.glob("libcudart-*.so.12*"))
    if not cudart:
        raise SystemExit(f"no libcudart-*.so.12 in {libs}")
    BENCH_LIB.mkdir(parents=True, exist_ok=True)
    link = BENCH_LIB / "libcudart.so.12"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(cudart[0])
    env = dict(os.environ, LD_LIBRARY_PATH=str(BENCH_LIB))
    return binary, env


def run_perf_analyzer(binary: Path, env: dict, url: str, model: str, concurrency: int, args) -> dict:
    cmd = [str(binary), "-m", model, "-u", url, "-i", "grpc", "--concurrency-range", str(concurrency),
           "--measurement-interval", str(args.window_ms), "--stability-percentage", str(args.stability),
           "--max-trials", str(args.max_windows)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    out = proc.stdout + proc.stderr

    def grab(pattern: str) -> float | None:
        m = re.search(pattern, out)
        return float(m.group(1)) if m else None

    tput = grab(r"Throughput: ([\d.]+) infer/sec")
    return {"tool": "perf_analyzer", "stable": proc.returncode == 0 and tput is not None,
            "throughput": tput, "p50_us": grab(r"p50 latency: ([\d.]+) usec"),
            "p99_us": grab(r"p99 latency: ([\d.]+) usec"), "avg_us": grab(r"Avg latency: ([\d.]+) usec"),
            "server_avg_request_us": grab(r"Avg request latency: ([\d.]+) usec"),
            **({} if tput is not None else {"error": out.strip().splitlines()[-1][:200] if out.strip() else "no output"})}


def run_nimwarden(endpoint: Endpoint, payload, concurrency: int, args, processes: int = 1,
                  metrics_url: str | None = None) -> dict:
    spec = loadgen.LoadSpec(concurrency=concurrency, window_s=args.window_ms / 1000, max_windows=args.max_windows,
                            tolerance=args.stability / 100, warmup_s=0.0, processes=processes)
    m = loadgen.measure(endpoint, payload, spec, metrics_url=metrics_url)
    lat = m.latency
    return {"tool": "nimwarden" if processes == 0 else f"nimwarden-p{processes}",
            "worker_processes": spec.worker_processes(), "stable": m.stable, "throughput": round(m.throughput, 2),
            "p50_us": lat.p50_us if lat else None, "p99_us": lat.p99_us if lat else None,
            "avg_us": round(lat.avg_us, 1) if lat else None, "windows": len(m.windows), "errors": m.errors,
            "server_avg_request_us": round(m.server.avg_request_us, 1) if m.server and m.server.avg_request_us else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--window-ms", type=int, default=5000)
    ap.add_argument("--max-windows", type=int, default=10)
    ap.add_argument("--stability", type=int, default=10, help="percent, both tools")
    ap.add_argument("--compute-ms", type=float, default=0.0, help="the lab model's compute time")
    ap.add_argument("--processes", default="0,1",
                    help="worker-process variants of our generator: 0 = its default (auto), n = n processes")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out

    binary, env = ensure_perf_analyzer()
    reason = devserver.available()
    if reason:
        emit(status="skip", reason=reason)
        return 0
    emit(event="start", cpus=os.cpu_count(), load_average=load_average(), window_ms=args.window_ms,
         rounds=args.rounds, compute_ms=args.compute_ms, reference=REFERENCE_WHEEL)
    server = devserver.start(compute_ms=args.compute_ms)
    ok = True
    try:
        endpoint = Endpoint("grpc", server.grpc_url)
        info = model_info.fetch(endpoint, server.model)
        payload = inputs.build_payload(server.model, inputs.specs_from_metadata(info.metadata))
        # warm both paths once so that neither tool pays the server's first-request costs
        run_nimwarden(endpoint, payload, 4, argparse.Namespace(window_ms=1000, max_windows=3, stability=100))
        for c in (int(x) for x in args.concurrency.split(",")):
            auto = loadgen.LoadSpec(concurrency=c).worker_processes()
            # a variant equal to what auto picks at this level would measure the same thing twice
            variants = [p for p in (int(x) for x in args.processes.split(",")) if p == 0 or p != auto]
            ours = ["nimwarden" if p == 0 else f"nimwarden-p{p}" for p in variants]
            rounds: dict[str, list[dict]] = {"perf_analyzer": [], **{name: [] for name in ours}}
            for r in range(args.rounds):
                order = ["perf_analyzer", *ours] if r % 2 == 0 else [*ours[::-1], "perf_analyzer"]
                for tool in order:
                    t0 = time.monotonic()
                    res = (run_perf_analyzer(binary, env, server.grpc_url, server.model, c, args) if tool == "perf_analyzer"
                           else run_nimwarden(endpoint, payload, c, args, variants[ours.index(tool)], server.metrics_url))
                    res.update(concurrency=c, round=r, wall_s=round(time.monotonic() - t0, 1), load_average=load_average())
                    emit(**res)
                    rounds[tool].append(res)
            pa = [x for x in rounds["perf_analyzer"] if x["throughput"]]
            for name in ours:
                us = [x for x in rounds[name] if x["throughput"]]
                if not pa or not us:
                    emit(concurrency=c, generator=name, verdict="no_comparison",
                         reason="a tool produced no figures at this level")
                    ok = False
                    continue
                ratio = statistics.median(x["throughput"] for x in us) / statistics.median(x["throughput"] for x in pa)
                p50_diff = statistics.median(x["p50_us"] for x in us) / statistics.median(x["p50_us"] for x in pa) - 1
                met = ratio >= 0.95 and abs(p50_diff) <= 0.10
                ok &= met or name != "nimwarden"  # the goal is for the generator's default
                emit(concurrency=c, generator=name, verdict="met" if met else "missed", throughput_ratio=round(ratio, 3),
                     p50_difference=round(p50_diff, 3), goal="throughput ratio >= 0.95 and |p50 difference| <= 0.10",
                     stable_rounds={"perf_analyzer": sum(x["stable"] for x in rounds["perf_analyzer"]),
                                    name: sum(x["stable"] for x in rounds[name])})
    finally:
        server.stop()
    emit(event="end", load_average=load_average(), all_goals_met=ok)
    return 0


if __name__ == "__main__":
    sys.exit(main())
