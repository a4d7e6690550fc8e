"""A minimal NIM-compatible **stand-in** for the lab. It is not NVIDIA NIM.

No NIM container can run on the lab's machines (no Docker, no GPU), so this
small HTTP server exists only to exercise the harness: it serves the paths the
NIM documentation lists (health, models, metadata, version, license, metrics,
OpenAPI explorer, chat/completions incl. SSE streaming, completions) in the
documented shapes, and forwards every inference to the lab's real Triton
(the ``add`` model) when given one, so a request really crosses the stack.

Like a real NIM it has no authentication of its own: that is the gateway's job.
In ``--leaky`` mode it makes the mistakes the nim-api suite must catch: its
metadata carries a repository override with a credential in the URL, and it
answers CORS preflights by echoing any Origin with credentials allowed (what
``NIM_CORS_ALLOW_ORIGINS=*`` behind a permissive proxy does). Otherwise it sends
no CORS headers at all.

With ``--role dcgm`` the same program stands in for NVIDIA's DCGM Exporter instead (no GPU, so no
real one can run here): ``/metrics`` in DCGM's format with a fake GPU UUID and pod label, ``/health``,
and in ``--leaky`` mode ``/debug/pprof/`` as DCGM Exporter 4.8.0 and 4.8.1 serve it (bulletin 5857).

For load measurements (PERF-LLM-001, benchmarks/llm_aiperf.py) it can pace its stream like a model
does: ``--first-token-ms`` before the first token, ``--token-delay-ms`` between tokens, and
``--output-tokens N`` to answer N tokens (words of :data:`VOCAB`) instead of its one-line answer.
A streamed answer is one token per SSE event, a token being one word followed by a space, and is
cut at the request's ``max_tokens`` (or ``max_completion_tokens``) as a model's would be.
``--timings FILE`` appends, per streamed request, the server's own times (``time.monotonic_ns()``,
the clock clients' ``perf_counter_ns`` reads on Linux): request read, each token written, done;
with the wall-clock time of the read and the request's ``X-Request-ID``, so that a client's own
per-request records can be lined up with the server's.

``--release`` sets the NIM for LLMs release it *reports* (``/v1/version`` ``release``, ``/v1/metadata``
``version``) so that NIM-ENGINECVE-001 has a release to map to its bundled engine: the lab's ``exposed``
stand-in reports 2.1.5 (vLLM 0.31.0 inside, in range of CVE-2026-115911), ``hardened`` 2.1.6 (vLLM 0.32.0,
past it). The stand-in runs no vLLM: the release is a label for the harness, said so in its metadata.

Run: ``python -m nimwarden.lab.nimstub --host 127.0.0.1 --port 0 --triton http://127.0.0.1:8000``
(prints ``LISTENING host:port`` once bound).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STAND_IN = "nimwarden lab NIM stand-in (not NVIDIA NIM)"
MODEL = "nimwarden/lab-stand-in"
VERSION = "0.0.0-stand-in"
# The words a long (``--output-tokens``) answer is made of, in turn: one word is one token.
VOCAB = ("the", "stand-in", "streams", "one", "word", "per", "event", "as", "a", "model", "streams",
         "tokens", "to", "measure", "time", "first", "token", "and", "inter-token", "latency", "of",
         "an", "inference", "server", "under", "load")


DCGM_METRICS = (
    "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"
    'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-00000000-1111-2222-3333-nimwardenlab",device="nvidia0",modelName="lab stand-in",'
    'Hostname="lab",container="triton",namespace="nim-exposed",pod="triton-exposed-0"} 0\n'
)


class _State:
    def __init__(self, triton: str | None, model: str, leaky: bool, role: str = "nim", *,
                 first_token_ms: float = 0.0, token_delay_ms: float = 0.0, output_tokens: int | None = None,
                 timings: str | None = None, release: str | None = None):
        self.role = role
        self.release = release or VERSION
        self.first_token_s = max(0.0, first_token_ms) / 1000
        self.token_delay_s = max(0.0, token_delay_ms) / 1000
        self.output_tokens = output_tokens
        self.timings = open(timings, "a", buffering=1) if timings else None  # noqa: SIM115 - lives as long as the server
        self.triton = triton.rstrip("/") if triton else None
        self.model = model
        self.leaky = leaky
        self.started = int(time.time())
        self.requests = 0
        self.lock = threading.Lock()
        # A fake, lab-only credential: the leak the suite has to find and redact.
        self.fake_key = "nvapi-" + secrets.token_urlsafe(32) if leaky else None


def _triton_add(state: _State, timeout_s: float = 5.0) -> list[float] | None:
    """One real inference on the lab Triton's ``add`` model; None when no Triton was given."""
    if not state.triton:
        return None
    body = json.dumps({"inputs": [
        {"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]},
        {"name": "INPUT1", "shape": [4], "datatype": "FP32", "data": [10, 20, 30, 40]},
    ]}).encode()
    req = urllib.request.Request(f"{state.triton}/v2/models/add/infer", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - lab-internal http:// URL
        out = json.loads(resp.read())
    return out["outputs"][0]["data"]


def _metadata(state: _State) -> dict:
    meta = {
        "assetInfo": [f"{state.model}:stand-in"],
        "licenseInfo": {"name": "stand-in licence (lab only)", "type": "file", "path": "/opt/nim/LICENSE"},
        "modelInfo": [{"modelUrl": f"ngc://nim/{state.model}", "shortName": state.model}],
        "profile": {"id": "stand-in-cpu", "tags": {"precision": "fp32", "backend": "triton-python"}},
        "repository_override": None,
        "version": state.release,
        "stand_in": STAND_IN + (f"; reports NIM release {state.release} for the harness, runs no vLLM" if state.release != VERSION else ""),
    }
    if state.leaky:
        meta["repository_override"] = f"https://nim:{state.fake_key}@models.internal.example/nim/"
    return meta


def _openapi() -> dict:
    paths = {p: {"get": {"summary": p}} for p in ("/v1/health/live", "/v1/health/ready", "/v1/models", "/v1/metadata",
                                                  "/v1/version", "/v1/license", "/v1/metrics")}
    paths.update({p: {"post": {"summary": p}} for p in ("/v1/chat/completions", "/v1/completions")})
    return {"openapi": "3.0.2", "info": {"title": STAND_IN, "version": VERSION}, "paths": paths}


class Handler(BaseHTTPRequestHandler):
    server_version = "nim-stand-in"
    sys_version = ""
    state: _State  # set by serve()

    def log_message(self, fmt, *args):  # quiet: the lab keeps no access log for the stand-in
        return

    def _json(self, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _text(self, status: int, text: str, ctype: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_OPTIONS(self):  # noqa: N802 - a CORS preflight: runs nothing
        origin = self.headers.get("Origin")
        self.send_response(204)
        if self.state.leaky and origin:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", self.headers.get("Access-Control-Request-Headers", "*"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _dcgm_get(self, path: str):
        if path == "/metrics":
            return self._text(200, DCGM_METRICS, "text/plain; version=0.0.4")
        if path == "/health":
            return self._text(200, "OK", "text/plain")
        if path.startswith("/debug/pprof") and self.state.leaky:
            return self._text(200, "<html><body>/debug/pprof/ (lab stand-in: index only)</body></html>", "text/html")
        return self._text(404, "404 page not found", "text/plain")

    def do_GET(self):  # noqa: N802 - http.server's naming
        st = self.state
        with st.lock:
            st.requests += 1
        path = self.path.split("?", 1)[0]
        if st.role == "dcgm":
            return self._dcgm_get(path)
        if path == "/v1/health/live":
            return self._json(200, {"object": "health.response", "message": "Service is live."})
        if path == "/v1/health/ready":
            try:
                _triton_add(st, 2.0)
            except (OSError, urllib.error.URLError, ValueError, KeyError):
                return self._json(503, {"object": "health.response", "message": "Service is not ready."})
            return self._json(200, {"object": "health.response", "message": "Service is ready."})
        if path == "/v1/models":
            return self._json(200, {"object": "list", "data": [
                {"id": st.model, "object": "model", "created": st.started, "owned_by": "system", "root": st.model}]})
        if path == "/v1/metadata":
            return self._json(200, _metadata(st))
        if path == "/v1/version":
            return self._json(200, {"release": st.release, "api": "1.0.0"})
        if path == "/v1/license":
            return self._json(200, {"name": "stand-in licence (lab only)", "path": "/opt/nim/LICENSE", "type": "file",
                                    "content": "This is the nimwarden lab stand-in, not an NVIDIA product."})
        if path in ("/v1/metrics", "/metrics"):
            return self._text(200, f"# TYPE num_requests_total counter\nnum_requests_total{{model_name=\"{st.model}\"}} {st.requests}\n",
                              "text/plain; version=0.0.4")
        if path == "/openapi.json":
            return self._json(200, _openapi())
        if path == "/docs":
            return self._text(200, f"<!doctype html><title>{STAND_IN} - Swagger UI</title><div id=swagger-ui></div>"
                                   "<script>/* openapi.json */</script>", "text/html")
        return self._json(404, {"detail": "Not Found"})

    def do_POST(self):  # noqa: N802
        t_read = time.monotonic_ns()  # the request line and headers are in
        t_read_wall = time.time_ns()
        st = self.state
        with st.lock:
            st.requests += 1
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1_000_000:
            return self._json(413, {"detail": "request too large"})
        try:
            req = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._json(400, {"detail": "invalid JSON"})
        if path not in ("/v1/chat/completions", "/v1/completions"):
            return self._json(404 if not path.startswith("/v1/") else 405, {"detail": "Not Found"})
        try:
            out = _triton_add(st)
        except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
            return self._json(502, {"detail": f"backend error: {type(exc).__name__}"})
        text = f"stand-in answer (triton add -> {out})" if out is not None else "stand-in answer (no backend)"
        text = " ".join(answer_tokens(text, st.output_tokens, req))
        chat = path == "/v1/chat/completions"
        rid = "cmpl-" + secrets.token_hex(8)
        if req.get("stream"):
            return self._stream(rid, text, chat, (t_read, t_read_wall))
        choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"} if chat
                  else {"index": 0, "text": text, "finish_reason": "stop"})
        return self._json(200, {"id": rid, "object": "chat.completion" if chat else "text_completion",
                                "created": int(time.time()), "model": st.model, "choices": [choice],
                                "usage": {"prompt_tokens": 1, "completion_tokens": len(text.split()), "total_tokens": 1 + len(text.split())}})

    def _stream(self, rid: str, text: str, chat: bool, t_read: tuple[int, int]) -> None:
        st = self.state
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        t_headers = time.monotonic_ns()
        emitted: list[int] = []
        # tokens on a fixed schedule from the first one (as a model's decode steps), so that a slow
        # write does not push every later token back
        t_first = t_headers + int(st.first_token_s * 1e9)
        for i, word in enumerate(text.split(" ")):
            due = t_first + int(i * st.token_delay_s * 1e9)
            wait = (due - time.monotonic_ns()) / 1e9
            if wait > 0:
                time.sleep(wait)
            delta = {"index": 0, "delta": {"content": word + " "}} if chat else {"index": 0, "text": word + " "}
            chunk = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion", "model": st.model, "choices": [delta]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            emitted.append(time.monotonic_ns())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        t_done = time.monotonic_ns()
        self.close_connection = True
        if st.timings is not None:
            record = {"id": rid, "request_id": self.headers.get("X-Request-ID"), "read_ns": t_read[0],
                      "read_wall_ns": t_read[1], "headers_ns": t_headers, "token_ns": emitted, "done_ns": t_done}
            with st.lock:
                st.timings.write(json.dumps(record) + "\n")


def answer_tokens(text: str, output_tokens: int | None, req: dict) -> list[str]:
    """The tokens (words) of an answer: ``text``'s, or ``output_tokens`` of :data:`VOCAB` in turn,
    cut at the request's ``max_completion_tokens`` / ``max_tokens`` (at least one token)."""
    words = text.split(" ") if output_tokens is None else [VOCAB[i % len(VOCAB)] for i in range(max(1, output_tokens))]
    limit = req.get("max_completion_tokens") or req.get("max_tokens")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        words = words[:limit]
    return words


def serve(host: str, port: int, triton: str | None, model: str = MODEL, leaky: bool = False, role: str = "nim",
          **pacing) -> ThreadingHTTPServer:
    """``pacing``: ``first_token_ms``, ``token_delay_ms``, ``output_tokens``, ``timings`` (see the module's doc)."""
    handler = type("BoundHandler", (Handler,), {"state": _State(triton, model, leaky, role, **pacing)})
    return ThreadingHTTPServer((host, port), handler)


def start(name: str, state_dir, *, host: str = "127.0.0.1", port: int = 0, triton: str | None = None,
          leaky: bool = False, timeout_s: float = 10.0, role: str = "nim", first_token_ms: float = 0.0,
          token_delay_ms: float = 0.0, output_tokens: int | None = None, timings: str | None = None,
          release: str | None = None) -> dict:
    """Start the stand-in as its own process (own session, outlives the caller); returns its lab state."""
    import os
    import subprocess
    from pathlib import Path

    workdir = Path(state_dir) / f"nimstub-{name}"
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "nimstub.log"
    # --workdir only names the lab directory on the command line, so that a lab `down`
    # after a crash finds this process like its other leftovers
    cmd = [sys.executable, "-m", "nimwarden.lab.nimstub", "--host", host, "--port", str(port), "--workdir", str(workdir)]
    if triton:
        cmd += ["--triton", triton]
    if leaky:
        cmd.append("--leaky")
    if role != "nim":
        cmd += ["--role", role]
    if first_token_ms:
        cmd += ["--first-token-ms", str(first_token_ms)]
    if token_delay_ms:
        cmd += ["--token-delay-ms", str(token_delay_ms)]
    if output_tokens is not None:
        cmd += ["--output-tokens", str(output_tokens)]
    if timings:
        cmd += ["--timings", str(Path(timings).resolve())]
    if release:
        cmd += ["--release", release]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=str(workdir))
    deadline = time.monotonic() + timeout_s
    address = None
    while time.monotonic() < deadline and address is None:
        if proc.poll() is not None:
            break
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("LISTENING "):
                address = line.split(" ", 1)[1].strip()
        time.sleep(0.05)
    if address is None:
        proc.kill()
        raise RuntimeError(f"{role} stand-in {name} did not start: {log_path.read_text(errors='replace')[-1000:]}")
    return {"name": name, "pid": proc.pid, "address": address, "url": f"http://{address}", "log": str(log_path),
            "stand_in": STAND_IN if role == "nim" else "nimwarden lab DCGM Exporter stand-in (not NVIDIA DCGM Exporter)",
            "leaky": leaky, "role": role, "timings": str(Path(timings).resolve()) if timings else None, "release": release}


def stop(info: dict, timeout_s: float = 5.0) -> bool:
    """Stop a stand-in started by :func:`start`, after checking the pid is still ours."""
    import os
    import signal
    from pathlib import Path

    from nimwarden.lab.triton import running

    pid = int(info["pid"])
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if b"nimwarden.lab.nimstub" not in cmdline:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return True
        except ChildProcessError:
            if not running(pid):  # gone, or a zombie init has not reaped yet
                return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=STAND_IN)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--triton", help="the lab Triton's HTTP URL, e.g. http://127.0.0.1:8000")
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--leaky", action="store_true", help="make the disclosure mistakes the nim-api suite must catch")
    ap.add_argument("--workdir", help="the lab directory this stand-in belongs to (identification only)")
    ap.add_argument("--role", choices=("nim", "dcgm"), default="nim", help="stand in for a NIM (default) or a DCGM Exporter")
    ap.add_argument("--first-token-ms", type=float, default=0.0, help="delay before a stream's first token")
    ap.add_argument("--token-delay-ms", type=float, default=0.0, help="time between a stream's tokens")
    ap.add_argument("--output-tokens", type=int, help="answer this many tokens (words), up to the request's max_tokens")
    ap.add_argument("--timings", help="append each streamed request's server times to this JSON-lines file")
    ap.add_argument("--release", help="the NIM for LLMs release to report (/v1/version); the stand-in runs no engine")
    args = ap.parse_args(argv)
    srv = serve(args.host, args.port, args.triton, args.model, args.leaky, args.role, first_token_ms=args.first_token_ms,
                token_delay_ms=args.token_delay_ms, output_tokens=args.output_tokens, timings=args.timings, release=args.release)
    print(f"LISTENING {srv.server_address[0]}:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
