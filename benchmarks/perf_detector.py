#!/usr/bin/env python3
"""Record runs for the regression detector's benchmark (JSON lines).

Two private lab servers: release A whose lab model does ``I`` iterations of CPU work per request
(``--compute cpu``, the default: compute-bound, as inference is) and release B doing
``round(I * (1 + slowdown))``. ``I`` is calibrated *once*, here, and handed to both model configs
(``compute_iterations``), so B does exactly 5 % more work than A; letting each server calibrate
itself at start-up on a busy machine had made them differ by 50 % the other way. With
``--compute sleep`` the model sleeps ``compute_ms`` (A) and ``compute_ms * (1 + slowdown)`` (B).

Only one server is loaded at a time. A run is what a nightly comparison costs per model and load
level: ``--warmup-s`` then ``--windows`` windows of ``--window-s`` (default 1.5 s + 12 x 1 s, about
15 s). The sequence is nightly reality: ``--baseline-runs`` runs of A seed the pool, then each trial
measures A ("unchanged") and B ("slower"); a candidate is later judged against the runs of A that
came before it (benchmarks/perf_statistics.py), which is what ``--perf-update-baseline`` keeps.

Every run is one JSON line on ``--record FILE`` (appended) with every window: throughput, p99, average
latency, CPU steal (``/proc/stat``), the load generator's busy share and, with ``--noise``, the share
of the window the CPU hog was running. ``--noise`` starts ``--noise-procs`` busy-loop processes that
switch on (1-4 s) and off (2-8 s) at random (seeded): the shared machine, on purpose.

``--interleave`` records instead, per trial, rounds of one window each on A, on a second server of A
(A2, to count false alarms) and on B, in turn: interleaved A/B, which needs both releases side by side.

    flock /tmp/nimwarden-lab.lock .venv/bin/python benchmarks/perf_detector.py --record runs.jsonl [--trials 20] [--noise]
    flock /tmp/nimwarden-lab.lock .venv/bin/python benchmarks/perf_detector.py --record ab.jsonl --interleave --windows 6
    .venv/bin/python benchmarks/perf_statistics.py runs.jsonl    # every statistic on the same recordings
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nimwarden.families.performance import inputs, loadgen, model_info  # noqa: E402
from nimwarden.families.performance.transport import Endpoint  # noqa: E402
from tests import perf_devserver as devserver  # noqa: E402


def emit(**record) -> None:
    print(json.dumps({"bench": "perf_detector", **record}), flush=True)


class NoisyNeighbour:
    """CPU-bound processes that switch on and off together at random (seeded), logging when they ran.

    On for 1-4 s, off for 2-8 s, so some windows of some runs are slowed and others are not,
    the way another job on the box slows them.
    """

    def __init__(self, seed: int, procs: int = 2):
        import random
        import subprocess

        self.rng = random.Random(seed)
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(procs)]
        self._signal(signal.SIGSTOP)
        self.on: list[list[float]] = []  # [start, end] perf_counter intervals the hog ran
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._toggle, daemon=True)
        self.thread.start()

    def _signal(self, sig) -> None:
        for p in self.procs:
            os.kill(p.pid, sig)

    def _toggle(self) -> None:
        while not self.stop_event.is_set():
            if self.stop_event.wait(self.rng.uniform(2, 8)):
                break
            self._signal(signal.SIGCONT)
            self.on.append([time.perf_counter(), float("inf")])
            self.stop_event.wait(self.rng.uniform(1, 4))
            self._signal(signal.SIGSTOP)
            self.on[-1][1] = time.perf_counter()

    def share(self, start: float, end: float) -> float:
        """Share of [start, end] during which the hog ran."""
        if end <= start:
            return 0.0
        busy = sum(max(0.0, min(end, b) - max(start, a)) for a, b in list(self.on))
        return min(1.0, busy / (end - start))

    def close(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)
        for p in self.procs:
            p.kill()
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", required=True, help="JSON lines file the runs are appended to")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--compute", choices=("sleep", "cpu"), default="cpu")
    ap.add_argument("--compute-ms", type=float, default=20.0)
    ap.add_argument("--iterations", type=int, default=0,
                    help="cpu: A's iteration count (B's is round(I * (1 + slowdown))); 0 = calibrate to --compute-ms here")
    ap.add_argument("--slowdown", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--window-s", type=float, default=1.0)
    ap.add_argument("--windows", type=int, default=12, help="windows per run (the detector's samples)")
    ap.add_argument("--warmup-s", type=float, default=1.5)
    ap.add_argument("--baseline-runs", type=int, default=5, help="runs of A measured before the first trial")
    ap.add_argument("--noise", action="store_true", help="run CPU hogs that switch on and off at random")
    ap.add_argument("--noise-procs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--interleave", action="store_true",
                    help="instead: per trial one run of --windows rounds, each a window on A, on a second server "
                         "of A (A2) and on B, in turn (interleaved A/B windows; needs both releases side by side)")
    ap.add_argument("--label", default="", help="free text stored with every run (e.g. quiet, noise)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    reason = devserver.available()
    if reason:
        emit(status="skip", reason=reason)
        return 0
    iterations = {}
    if args.compute == "cpu":
        base = args.iterations or devserver.cpu_iterations(args.compute_ms)
        iterations = {"A": base, "B": int(round(base * (1 + args.slowdown)))}
    start = {"event": "start", "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
             **vars(args), "compute_iterations": iterations}
    emit(**start)
    out = open(args.record, "a", encoding="utf-8")  # noqa: SIM115 - closed in finally
    out.write(json.dumps({"kind": "start", **start}) + "\n")
    servers = {}
    noise = None
    try:
        releases = (("A", 1.0), ("A2", 1.0), ("B", 1.0 + args.slowdown)) if args.interleave else (("A", 1.0), ("B", 1.0 + args.slowdown))
        iterations["A2"] = iterations.get("A", 0)
        for rel, factor in releases:
            servers[rel] = devserver.start(compute_ms=round(args.compute_ms * factor, 3), compute_kind=args.compute,
                                           compute_iterations=iterations.get(rel, 0))
        eps = {rel: Endpoint("grpc", s.grpc_url) for rel, s in servers.items()}
        info = model_info.fetch(eps["A"], servers["A"].model)
        payload = inputs.build_payload(servers["A"].model, inputs.specs_from_metadata(info.metadata))
        spec = loadgen.LoadSpec(concurrency=args.concurrency, window_s=args.window_s, max_windows=args.windows,
                                min_windows=args.windows, tolerance=0.05, warmup_s=args.warmup_s)
        short = loadgen.LoadSpec(concurrency=args.concurrency, window_s=args.window_s, max_windows=3, min_windows=3,
                                 warmup_s=args.warmup_s)
        for ep in eps.values():  # first requests on a fresh server are slower: keep them out
            loadgen.measure(ep, payload, short)
        noise = NoisyNeighbour(args.seed, args.noise_procs) if args.noise else None
        seq = 0

        def run(rel: str, role: str, trial: int | None) -> None:
            nonlocal seq
            ends: list[float] = []
            t0 = time.monotonic()
            m = loadgen.measure(eps[rel], payload, spec, on_window=lambda w: ends.append(time.perf_counter()))
            windows = []
            for w, end in zip(m.windows, ends):
                d = w.as_dict()
                d["client_busy"] = None if w.client_cpu_s is None else round(w.client_cpu_s / w.duration_s, 3)
                d["noise"] = None if noise is None else round(noise.share(end - w.duration_s, end), 3)
                windows.append(d)
            rec = {"kind": "run", "seq": seq, "release": rel, "role": role, "trial": trial, "label": args.label,
                   "noise": args.noise, "run_s": round(time.monotonic() - t0, 2), "errors": m.errors,
                   "stable": m.stable, "throughput": round(m.throughput, 2), "windows": windows,
                   "load_average": [round(x, 2) for x in os.getloadavg()]}
            out.write(json.dumps(rec) + "\n")
            out.flush()
            seq += 1
            emit(seq=rec["seq"], release=rel, role=role, trial=trial, run_s=rec["run_s"],
                 throughput=[w["throughput"] for w in windows], noise_share=[w["noise"] for w in windows],
                 steal_max=max([w["steal"] or 0 for w in windows] + [0]))

        def interleaved(trial: int) -> None:
            """Rounds of one window per server, in turn (the order rotating each round), only one loaded at a time."""
            from nimwarden.families.performance.transport import Transport  # noqa: PLC0415
            from nimwarden.families.performance.windows import cpu_times, steal_between, window_from_slices  # noqa: PLC0415
            from nimwarden.families.performance.workers import ThreadPool  # noqa: PLC0415

            t0 = time.monotonic()
            transports = {rel: Transport(ep, payload) for rel, ep in eps.items()}
            for tr in transports.values():
                tr.preflight()
            got: dict[str, list] = {rel: [] for rel in eps}
            order = list(eps)
            for rnd in range(args.windows):
                for rel in order[rnd % len(order):] + order[:rnd % len(order)]:
                    pool = ThreadPool(transports[rel], args.concurrency)
                    pool.start()
                    try:
                        time.sleep(0.25)  # the pipeline fills; these requests are not counted
                        pool.collect()
                        t_a, cpu_a = time.perf_counter(), cpu_times()
                        time.sleep(args.window_s)
                        t_b, cpu_b = time.perf_counter(), cpu_times()
                        w = window_from_slices(rnd, t_b - t_a, *pool.collect(), steal=steal_between(cpu_a, cpu_b))
                    finally:
                        pool.stop()
                    d = w.as_dict()
                    d["noise"] = None if noise is None else round(noise.share(t_a, t_b), 3)
                    got[rel].append(d)
            rec = {"kind": "interleaved", "trial": trial, "label": args.label, "noise": args.noise,
                   "run_s": round(time.monotonic() - t0, 2), "windows": got,
                   "load_average": [round(x, 2) for x in os.getloadavg()]}
            out.write(json.dumps(rec) + "\n")
            out.flush()
            emit(trial=trial, interleaved={rel: [w["throughput"] for w in ws] for rel, ws in got.items()}, run_s=rec["run_s"])

        if args.interleave:
            for trial in range(args.trials):
                interleaved(trial)
        else:
            try:
                for _ in range(args.baseline_runs):
                    run("A", "baseline", None)
                for trial in range(args.trials):
                    run("A", "unchanged", trial)
                    run("B", "slower", trial)
            except Exception as exc:  # noqa: BLE001 - a lab server that died: report it and stop, keep the runs
                emit(aborted=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}",
                     server_logs={rel: _log_tail(s) for rel, s in servers.items()})
    finally:
        if noise is not None:
            noise.close()
        for s in servers.values():
            s.stop()
        out.close()
    emit(event="done", record=args.record, load_average=[round(x, 2) for x in os.getloadavg()])
    return 0


def _log_tail(server, n: int = 600) -> str:
    """The end of a private server's tritonserver log: why it stopped answering, before stop() removes it."""
    try:
        return Path(server.deployment["log"]).read_text(errors="replace")[-n:]
    except (OSError, KeyError):
        return ""


if __name__ == "__main__":
    sys.exit(main())
