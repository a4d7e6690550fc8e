#!/usr/bin/env python3
"""Harness CPU per 1,000 inference requests, per client engine (JSON lines on stdout).

On one private lab server, each engine drives the same closed loop for the
same time; client CPU (user + system of this process and of its finished
children: worker processes, perf_analyzer) is divided by the requests the *server* counted
(nv_inference_request_success), so warm-up and in-flight requests are on
the same footing for every engine. Engines: ``h2`` (the load generator's
default), ``grpcio`` (blocking stub per thread), ``http.client``,
``tritonclient-aio`` (the naive asyncio client docs/benchmarks.md compares) and,
when the benchmark venv of perf_accuracy.py exists, perf_analyzer itself.

    .venv/bin/python benchmarks/perf_overhead.py [--seconds 6] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nimwarden.families.performance import inputs, loadgen, metrics, model_info  # noqa: E402
from nimwarden.families.performance.transport import Endpoint  # noqa: E402
from tests import perf_devserver as devserver  # noqa: E402


def emit(**record) -> None:
    print(json.dumps({"bench": "perf_overhead", **record}), flush=True)


def cpu_self() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def cpu_children() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def served(server) -> float:
    return metrics.scrape(server.metrics_url, server.model).model["nv_inference_request_success"]


def naive_aio(url: str, model: str, specs, concurrency: int, seconds: float) -> None:
    import numpy as np
    import tritonclient.grpc.aio as aio

    async def run():
        client = aio.InferenceServerClient(url)
        arrays = {s.name: inputs.random_tensor(s, np.random.default_rng(0)) for s in specs}
        stop = time.monotonic() + seconds

        async def worker():
            while time.monotonic() < stop:
                ins = []
                for s in specs:
                    t = aio.InferInput(s.name, list(s.shape), s.datatype)
                    t.set_data_from_numpy(arrays[s.name])
                    ins.append(t)
                await client.infer(model, ins)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await client.close()

    asyncio.run(run())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    reason = devserver.available()
    if reason:
        emit(status="skip", reason=reason)
        return 0
    emit(event="start", cpus=os.cpu_count(), load_average=[round(x, 2) for x in os.getloadavg()], **vars(args))
    server = devserver.start(compute_ms=0)
    pa = REPO / ".nimwarden" / "bench-venv" / "bin" / "perf_analyzer"
    pa_lib = REPO / ".nimwarden" / "bench-lib"
    try:
        info = model_info.fetch(Endpoint("grpc", server.grpc_url), server.model)
        specs = inputs.specs_from_metadata(info.metadata)
        payload = inputs.build_payload(server.model, specs)
        spec = loadgen.LoadSpec(concurrency=args.concurrency, window_s=args.seconds / 3, max_windows=3, warmup_s=0,
                                tolerance=10.0, processes=1)
        auto = loadgen.LoadSpec(concurrency=args.concurrency, window_s=args.seconds / 3, max_windows=3, warmup_s=0,
                                tolerance=10.0)
        engines = {
            "h2": lambda: loadgen.measure(Endpoint("grpc", server.grpc_url), payload, spec, engine="h2"),
            f"h2 x {auto.worker_processes()} processes (default)":
                lambda: loadgen.measure(Endpoint("grpc", server.grpc_url), payload, auto, engine="h2"),
            "grpcio": lambda: loadgen.measure(Endpoint("grpc", server.grpc_url), payload, spec, engine="grpcio"),
            "http.client": lambda: loadgen.measure(Endpoint("http", server.http_url), payload, spec),
            "tritonclient-aio": lambda: naive_aio(server.grpc_url, server.model, specs, args.concurrency, args.seconds),
        }
        if pa.exists() and (pa_lib / "libcudart.so.12").exists():
            env = dict(os.environ, LD_LIBRARY_PATH=str(pa_lib))
            engines["perf_analyzer"] = lambda: subprocess.run(
                [str(pa), "-m", server.model, "-u", server.grpc_url, "-i", "grpc", "--concurrency-range",
                 str(args.concurrency), "-p", str(int(args.seconds * 1000 / 3)), "--max-trials", "3",
                 "--stability-percentage", "1000"], capture_output=True, env=env, check=False)
        engines["h2"]()  # warm the server
        for r in range(args.rounds):
            for name, run in engines.items():
                n0, c0, k0, t0 = served(server), cpu_self(), cpu_children(), time.monotonic()
                run()
                wall = time.monotonic() - t0
                n = served(server) - n0
                cpu = (cpu_children() - k0) + (cpu_self() - c0)  # worker processes and perf_analyzer are children
                emit(engine=name, round=r, concurrency=args.concurrency, requests=int(n),
                     throughput=round(n / wall, 1), client_cpu_s=round(cpu, 3),
                     cpu_ms_per_1000_requests=round(cpu / n * 1e6, 1) if n else None,
                     load_average=[round(x, 2) for x in os.getloadavg()])
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
