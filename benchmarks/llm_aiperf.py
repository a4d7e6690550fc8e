#!/usr/bin/env python3
"""PERF-LLM-001's streaming metrics next to NVIDIA AIPerf on the lab's NIM stand-in (JSON lines on stdout).

Issue 18, goal 2. One stand-in, paced like a model (``--first-token-ms`` before the first token,
``--token-delay-ms`` between tokens, answers cut at the request's output length), serves both
tools in one run, alternating (ours, AIPerf, AIPerf, ours ...) at each concurrency with the same
request: the same prompt, the same output length (ours sends ``max_tokens``, AIPerf
``max_completion_tokens``; the stand-in honours either), one new connection per stream (the
stand-in closes each). Compared per concurrency, ours / AIPerf's (goal: within 5 %):

* time to first token, mean: both from just before the request is sent to the first content
  event (AIPerf: ``request.start_perf_ns`` to the first content response);
* inter-token latency, mean: ours is the mean gap between content events over all tokens;
  AIPerf's is per request ``(request latency - TTFT) / (output tokens - 1)``, its request latency
  ending at the last content response, i.e. the mean gap of that request, then averaged over
  requests. With the same token count per request the two are the same number;
* output tokens/s: ours counts content events of the requests completed in the measured windows
  over those windows; AIPerf counts tokens with a tokenizer over its whole run (first request
  sent to last response);
* requests/s: ours over the measured windows (closed loop, after a warm-up), AIPerf's over its
  whole run (after its warm-up requests).

AIPerf counts output tokens with a tokenizer. No download from a model hub is allowed here, so
the benchmark builds one: a word-level tokenizer (``WordLevel`` model, ``WhitespaceSplit``
pre-tokenizer) over the stand-in's vocabulary and the prompt, so that one token is one
whitespace-separated word, which is what one stand-in SSE event carries. AIPerf 0.13.0 refuses
a local tokenizer *path* when ``HF_HUB_OFFLINE`` is set (it looks the path up as a hub repo id
in the cache), so the tokenizer is laid out as a hub cache entry
(``.nimwarden/aiperf-hf/hub/models--nimwarden--stand-in-words``) and named by its repo id, with
``HF_HOME`` pointing there and ``HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1``. Each run checks
that AIPerf's per-request output token counts equal the tokens the stand-in wrote.

The stand-in records its own times per request (``--timings``), so each comparison carries the
server's time to first token, inter-token gap and token count over the same run: a difference
between the tools is then told apart from one in what the server did.

AIPerf runs from its own virtualenv (``.nimwarden/aiperf-venv``, git-ignored), created here when
missing (``--setup-only`` does just that, outside any lock).

    .venv/bin/python benchmarks/llm_aiperf.py --setup-only
    flock /tmp/nimwarden-lab.lock .venv/bin/python benchmarks/llm_aiperf.py [--concurrency 1,4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nimwarden.lab import nimstub  # noqa: E402

AIPERF_VENV = REPO / ".nimwarden" / "aiperf-venv"
AIPERF_HF_HOME = REPO / ".nimwarden" / "aiperf-hf"
AIPERF_VERSION = "0.13.0"  # the version this benchmark was verified with
TOKENIZER_REPO = "nimwarden/stand-in-words"
PROMPT = "Write one sentence about inference servers."
UNK = "[UNK]"
GOAL = 0.05
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
# our figure, AIPerf's export key, its statistic, the factor from AIPerf's unit to ours
METRICS = {
    "ttft_ms": ("time_to_first_token", "avg"),
    "itl_ms": ("inter_token_latency", "avg"),
    "output_tokens_per_s": ("output_token_throughput", "avg"),
    "requests_per_s": ("request_throughput", "avg"),
}
HTTP_PHASES = ("blocked", "connecting", "sending", "waiting", "receiving")
AIPERF_UNITS = {"time_to_first_token": "ms", "inter_token_latency": "ms",
                "output_token_throughput": "tokens/sec", "request_throughput": "requests/sec"}


def emit(**record) -> None:
    print(json.dumps({"bench": "llm_aiperf", **record}), flush=True)


# -- the tokenizer --------------------------------------------------------------------------------

def stand_in_words(prompt: str = PROMPT) -> list[str]:
    """Every word the stand-in can stream and the prompt's words, each once, in a fixed order."""
    said = [*nimstub.VOCAB, *"stand-in answer (no backend)".split(), *prompt.split()]
    return list(dict.fromkeys(said))


def tokenizer_files(words: list[str]) -> dict[str, dict]:
    """A Hugging Face fast tokenizer (``tokenizer.json`` + ``tokenizer_config.json``) in which a
    token is one whitespace-separated word: WordLevel over ``words``, anything else ``[UNK]``
    (still one token). Written as plain JSON: no library needed to make it."""
    vocab = {UNK: 0}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 0, "content": UNK, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}],
        "normalizer": None, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": None, "decoder": None,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": UNK},
    }
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": UNK, "model_max_length": 1_000_000,
              "clean_up_tokenization_spaces": False}
    return {"tokenizer.json": tokenizer, "tokenizer_config.json": config}


def write_tokenizer_cache(hf_home: Path, words: list[str], repo: str = TOKENIZER_REPO) -> Path:
    """Lay the tokenizer out as an offline hub cache entry under ``hf_home``; returns the snapshot dir.

    ``HF_HOME=hf_home HF_HUB_OFFLINE=1`` then resolves ``repo`` to it without any network.
    """
    entry = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
    snapshot = entry / "snapshots" / "local"
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, content in tokenizer_files(words).items():
        (snapshot / name).write_text(json.dumps(content, indent=1) + "\n")
    (entry / "refs").mkdir(exist_ok=True)
    (entry / "refs" / "main").write_text("local")
    return snapshot


# -- AIPerf ---------------------------------------------------------------------------------------

def ensure_aiperf(venv: Path = AIPERF_VENV) -> tuple[Path, dict]:
    """The ``aiperf`` binary (installing the pinned version into its own venv when missing) and what
    the install cost (seconds, size), ``{}`` when it was already there."""
    binary = venv / "bin" / "aiperf"
    cost: dict = {}
    if not binary.exists():
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        f"aiperf=={AIPERF_VERSION}"], check=True)
        cost = {"install_s": round(time.monotonic() - t0, 1)}
    if not binary.exists():
        raise SystemExit(f"aiperf=={AIPERF_VERSION} installed no aiperf binary")
    if cost:
        du = subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True).stdout.split()
        cost["venv_mb"] = int(du[0]) if du else None
    return binary, cost


def aiperf_env(hf_home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    return {**env, **OFFLINE_ENV, "HF_HOME": str(hf_home), "PYTHONUNBUFFERED": "1"}


def aiperf_command(binary: Path, url: str, model: str, concurrency: int, requests: int, max_tokens: int,
                   input_file: Path, artifact_dir: Path, warmup: int) -> list[str]:
    return [str(binary), "profile", "-m", model, "--url", url, "--endpoint-type", "chat", "--streaming",
            "--tokenizer", TOKENIZER_REPO, "--concurrency", str(concurrency), "--request-count", str(requests),
            "--warmup-request-count", str(warmup), "--input-file", str(input_file),
            "--custom-dataset-type", "single_turn", "--output-tokens-mean", str(max_tokens),
            "--output-tokens-stddev", "0", "--artifact-dir", str(artifact_dir), "--ui-type", "none",
            "--no-gpu-telemetry", "--random-seed", "1"]


def parse_aiperf_export(artifact_dir: Path) -> dict:
    """Our four figures (ms, tokens/s, requests/s) and the per-request output token counts from
    AIPerf's ``profile_export_aiperf.json`` (summary) and ``profile_export.jsonl`` (records).

    Raises ValueError naming what is missing or in another unit: a changed export format must
    stop the comparison, not pass a wrong number along."""
    summary_path = artifact_dir / "profile_export_aiperf.json"
    if not summary_path.exists():
        raise ValueError(f"no {summary_path.name} in {artifact_dir}")
    summary = json.loads(summary_path.read_text())
    out: dict = {"aiperf_version": summary.get("aiperf_version"), "schema_version": summary.get("schema_version")}
    for ours, (key, stat) in METRICS.items():
        metric = summary.get(key)
        if not isinstance(metric, dict) or not isinstance(metric.get(stat), (int, float)):
            raise ValueError(f"AIPerf export has no {key}.{stat}")
        if metric.get("unit") != AIPERF_UNITS[key]:
            raise ValueError(f"AIPerf export's {key} is in {metric.get('unit')!r}, expected {AIPERF_UNITS[key]!r}")
        out[ours] = float(metric[stat])
    for key, name in (("time_to_first_token", "ttft_p50_ms"), ("inter_token_latency", "itl_p50_ms")):
        out[name] = summary[key].get("p50")
    # AIPerf's own breakdown of a request's start (k6's names, ms): where its TTFT goes before the server
    out["http_ms"] = {k: round(float(summary[f"http_req_{k}"]["avg"]), 3) for k in HTTP_PHASES
                      if isinstance(summary.get(f"http_req_{k}"), dict) and isinstance(summary[f"http_req_{k}"].get("avg"), (int, float))}
    out["request_count"] = int((summary.get("request_count") or {}).get("avg") or 0)
    out["benchmark_duration_s"] = (summary.get("benchmark_duration") or {}).get("avg")
    out["errors"] = len(summary.get("error_summary") or [])
    osl: list[int] = []
    starts: list[tuple[str, int, float]] = []
    records = artifact_dir / "profile_export.jsonl"
    if records.exists():
        for line in records.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            if (rec.get("metadata") or {}).get("benchmark_phase", "profiling") != "profiling":
                continue
            metrics, meta = rec.get("metrics") or {}, rec.get("metadata") or {}
            value = (metrics.get("output_sequence_length") or {}).get("value")
            if value is not None:
                osl.append(int(value))
            ttft = metrics.get("time_to_first_token") or {}
            if meta.get("x_request_id") and meta.get("request_start_ns") and ttft.get("unit") == "ms":
                starts.append((meta["x_request_id"], int(meta["request_start_ns"]), float(ttft["value"])))
    out["output_tokens_per_request"] = osl
    out["request_starts"] = starts  # (X-Request-ID, wall-clock start ns, TTFT ms) per profiling request
    return out


def run_aiperf(binary: Path, env: dict, url: str, concurrency: int, args, workdir: Path) -> dict:
    art = Path(tempfile.mkdtemp(prefix=f"aiperf-c{concurrency}-", dir=workdir))
    input_file = workdir / "prompt.jsonl"
    input_file.write_text(json.dumps({"text": args.prompt}) + "\n")
    requests = args.requests_per_stream * concurrency
    cmd = aiperf_command(binary, url, nimstub.MODEL, concurrency, requests, args.max_tokens, input_file, art, concurrency)
    t0 = time.monotonic_ns()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.aiperf_timeout_s, cwd=str(workdir))
    t1 = time.monotonic_ns()
    base = {"tool": "aiperf", "span_ns": (t0, t1)}
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        return {**base, "error": f"aiperf exited {proc.returncode}: {' | '.join(tail)[-400:]}"}
    try:
        got = parse_aiperf_export(art)
    except ValueError as exc:
        return {**base, "error": str(exc)}
    shutil.rmtree(art, ignore_errors=True)
    return {**base, **got}


# -- ours -----------------------------------------------------------------------------------------

def run_ours(url: str, concurrency: int, args) -> dict:
    from nimwarden.families.performance import llm
    from nimwarden.families.performance.loadgen import LoadSpec

    ep = llm.StreamEndpoint(url, nimstub.MODEL, timeout_s=30, prompt=args.prompt, max_tokens=args.max_tokens)
    spec = LoadSpec(concurrency=concurrency, window_s=args.window_s, max_windows=args.max_windows,
                    tolerance=args.stability / 100, warmup_s=args.warmup_s)
    t0 = time.monotonic_ns()
    m = llm.measure_stream(ep, spec)
    t1 = time.monotonic_ns()
    return {"tool": "nimwarden", "span_ns": (t0, t1), "stable": m.stable, "windows": len(m.windows), "errors": m.errors,
            "ttft_ms": m.ttft.avg_us / 1000 if m.ttft else None, "itl_ms": m.inter_token.avg_us / 1000 if m.inter_token else None,
            "ttft_p50_ms": m.ttft.p50_us / 1000 if m.ttft else None,
            "itl_p50_ms": m.inter_token.p50_us / 1000 if m.inter_token else None,
            "output_tokens_per_s": m.output_tokens_per_s, "requests_per_s": m.requests_per_s}


# -- the server's own view ------------------------------------------------------------------------

def server_view(timings: Path, span_ns: tuple[int, int]) -> dict:
    """What the stand-in recorded for the streams it read within ``span_ns`` (its monotonic clock)."""
    lo, hi = span_ns
    recs = []
    if timings.exists():
        for line in timings.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if lo <= r["read_ns"] <= hi and r["token_ns"]:
                    recs.append(r)
    if not recs:
        return {"server_requests": 0}
    gaps = [b - a for r in recs for a, b in zip(r["token_ns"], r["token_ns"][1:])]
    counts = [len(r["token_ns"]) for r in recs]
    return {"server_requests": len(recs),
            "server_ttft_ms": round(statistics.fmean(r["token_ns"][0] - r["read_ns"] for r in recs) / 1e6, 3),
            "server_itl_ms": round(statistics.fmean(gaps) / 1e6, 3) if gaps else None,
            "server_request_ms": round(statistics.fmean(r["token_ns"][-1] - r["read_ns"] for r in recs) / 1e6, 3),
            "server_tokens_per_request": sorted(set(counts)),
            "server_tokens": sum(counts)}


def ttft_split(timings: Path, starts: list[tuple[str, int, float]]) -> dict:
    """AIPerf's TTFT per request, lined up with the stand-in's record of the same request (by its
    X-Request-ID), split into: AIPerf's start to the server having read the request (connect,
    send, the client's own scheduling), the server's read to its first token written, and that
    write to AIPerf's first-token stamp (delivery and the client's parsing). Means, ms."""
    server = {}
    if timings.exists():
        for line in timings.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if r.get("request_id") and r.get("read_wall_ns") and r["token_ns"]:
                    server[r["request_id"]] = r
    pre, mid, post = [], [], []
    for rid, start_wall, ttft_ms in starts:
        r = server.get(rid)
        if r is None:
            continue
        first_wall = r["read_wall_ns"] + (r["token_ns"][0] - r["read_ns"])
        pre.append((r["read_wall_ns"] - start_wall) / 1e6)
        mid.append((r["token_ns"][0] - r["read_ns"]) / 1e6)
        post.append((start_wall + ttft_ms * 1e6 - first_wall) / 1e6)
    if not pre:
        return {"matched": 0}
    return {"matched": len(pre), "to_server_read_ms": round(statistics.fmean(pre), 3),
            "server_ms": round(statistics.fmean(mid), 3), "after_server_write_ms": round(statistics.fmean(post), 3)}


def compare(ours: dict, theirs: dict, goal: float = GOAL) -> dict:
    """Per metric: both figures, ours / AIPerf's, and whether that is within ``goal``."""
    out = {}
    for name in METRICS:
        a, b = ours.get(name), theirs.get(name)
        if a is None or not b:
            out[name] = {"ours": a, "aiperf": b, "ratio": None, "within": False}
            continue
        ratio = a / b
        out[name] = {"ours": round(a, 3), "aiperf": round(b, 3), "ratio": round(ratio, 4), "within": abs(ratio - 1) <= goal}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", default="1,4")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--first-token-ms", type=float, default=50.0, help="the stand-in's delay before the first token")
    ap.add_argument("--token-delay-ms", type=float, default=10.0, help="the stand-in's time between tokens")
    ap.add_argument("--max-tokens", type=int, default=32, help="output length, both tools")
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--window-s", type=float, default=4.0, help="ours: measurement window")
    ap.add_argument("--max-windows", type=int, default=6)
    ap.add_argument("--warmup-s", type=float, default=1.0)
    ap.add_argument("--stability", type=int, default=10, help="ours: percent")
    ap.add_argument("--requests-per-stream", type=int, default=40, help="AIPerf: requests = this x concurrency")
    ap.add_argument("--aiperf-timeout-s", type=float, default=240.0)
    ap.add_argument("--setup-only", action="store_true", help="create the AIPerf venv and the tokenizer, measure nothing")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stand-in on the way out

    try:
        binary, cost = ensure_aiperf()
    except (OSError, subprocess.CalledProcessError) as exc:
        emit(status="skip", reason=f"AIPerf could not be installed: {type(exc).__name__}: {exc}")
        return 0
    snapshot = write_tokenizer_cache(AIPERF_HF_HOME, stand_in_words(args.prompt))
    env = aiperf_env(AIPERF_HF_HOME)
    version = subprocess.run([str(binary.parent / "python"), "-c", "import aiperf, importlib.metadata as m; print(m.version('aiperf'))"],
                             capture_output=True, text=True, env=env).stdout.strip()
    emit(event="setup", aiperf=version, aiperf_venv=str(AIPERF_VENV.relative_to(REPO)), tokenizer=TOKENIZER_REPO,
         tokenizer_dir=str(snapshot.relative_to(REPO)), **cost)
    if args.setup_only:
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="nimwarden-llm-aiperf-"))
    timings = workdir / "stand-in-timings.jsonl"
    stub = nimstub.start("llm-aiperf", workdir, first_token_ms=args.first_token_ms, token_delay_ms=args.token_delay_ms,
                         output_tokens=max(args.max_tokens * 4, 256), timings=str(timings))
    emit(event="start", cpus=os.cpu_count(), load_average=[round(x, 2) for x in os.getloadavg()], aiperf=version,
         stand_in={"first_token_ms": args.first_token_ms, "token_delay_ms": args.token_delay_ms},
         max_tokens=args.max_tokens, rounds=args.rounds, window_s=args.window_s,
         aiperf_requests_per_stream=args.requests_per_stream)
    all_met = True
    try:
        # one stream through each tool's path first, so that neither pays the first-request costs
        run_ours(stub["url"], 1, argparse.Namespace(**{**vars(args), "window_s": 0.5, "max_windows": 3, "warmup_s": 0.2,
                                                      "stability": 100}))
        for c in (int(x) for x in args.concurrency.split(",")):
            runs: dict[str, list[dict]] = {"nimwarden": [], "aiperf": []}
            for r in range(args.rounds):
                for tool in (("nimwarden", "aiperf") if r % 2 == 0 else ("aiperf", "nimwarden")):
                    res = run_ours(stub["url"], c, args) if tool == "nimwarden" else run_aiperf(binary, env, stub["url"], c, args, workdir)
                    server = server_view(timings, res.pop("span_ns"))
                    starts = res.pop("request_starts", None)
                    if starts is not None:
                        res["aiperf_ttft_split"] = ttft_split(timings, starts)
                    osl = res.pop("output_tokens_per_request", None)
                    if osl is not None:
                        # AIPerf's tokenizer counts against the tokens the stand-in wrote
                        res["token_counts"] = {"aiperf": sorted(set(osl)), "server": server.get("server_tokens_per_request"),
                                               "aiperf_total": sum(osl), "match": sorted(set(osl)) == server.get("server_tokens_per_request")}
                    rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}
                    emit(concurrency=c, round=r, **rounded, **server)
                    runs[tool].append({**res, **server})
            ok = [x for x in runs["nimwarden"] if x.get("ttft_ms")], [x for x in runs["aiperf"] if "error" not in x]
            if not ok[0] or not ok[1]:
                reasons = sorted({x.get("error", "no figures") for x in runs["aiperf"] if "error" in x})
                emit(concurrency=c, verdict="no_comparison", reason="; ".join(reasons) or "a tool produced no figures")
                all_met = False
                continue
            med = [{name: statistics.median(x[name] for x in group) for name in (*METRICS, "server_ttft_ms", "server_itl_ms")
                    if all(x.get(name) is not None for x in group)} for group in ok]
            cmp = compare(med[0], med[1])
            met = all(v["within"] for v in cmp.values())
            all_met &= met
            explain = {
                # what each tool adds to the server's own time to first token: connect, send, parse
                "ttft_client_overhead_ms": {"ours": round(med[0]["ttft_ms"] - med[0]["server_ttft_ms"], 3),
                                            "aiperf": round(med[1]["ttft_ms"] - med[1]["server_ttft_ms"], 3)},
                "server_itl_ms": {"during_ours": med[0].get("server_itl_ms"), "during_aiperf": med[1].get("server_itl_ms")},
                "token_counts_match": all(x.get("token_counts", {}).get("match") for x in ok[1]),
                "aiperf_http_ms": ok[1][-1].get("http_ms"),
                "aiperf_ttft_split_ms": ok[1][-1].get("aiperf_ttft_split"),
            }
            emit(concurrency=c, verdict="met" if met else "missed", goal=f"each within {GOAL:.0%} of AIPerf's",
                 metrics=cmp, explain=explain, rounds={"nimwarden": len(ok[0]), "aiperf": len(ok[1])},
                 stable_rounds=sum(bool(x.get("stable")) for x in ok[0]))
    finally:
        nimstub.stop(stub)
        shutil.rmtree(workdir, ignore_errors=True)
    emit(event="end", load_average=[round(x, 2) for x in os.getloadavg()], all_goals_met=all_met)
    return 0


if __name__ == "__main__":
    sys.exit(main())
