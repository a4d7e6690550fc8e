"""STAND-IN for the legacy per-port NeMo microservices (not NVIDIA software).

Before the NeMo Platform, each NeMo microservice ran as a container of its own on its own port — Data
Store 3000 (Hugging Face-compatible), Entity Store 8000, Customizer 8000 (+ callback 9009), Evaluator 7331,
Guardrails 7331, Deployment Management, NIM Proxy — with no notion of a user and no rate limit. They exist
only as containers, which cannot run here. This stand-in serves their read routes so that the nemo
family's probes meet the real paths: the GET routes of NVIDIA's client SDK for them
(``nemo-microservices`` 1.5.0 on PyPI: each resource's ``list`` and ``retrieve`` paths), and the Data
Store's Hugging Face-compatible ``/v1/hf`` API (documented, not in the SDK). Lists answer empty pages;
named resources answer 404. Like the real services it asks for no credential: that is what the probes
must find when such a port is reachable.

``python -m nimwarden.lab.nemo_legacy --host H --services datastore,entitystore,...`` listens on one
port per service and prints ``LISTENING {"datastore": "H:P", ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STAND_IN = "nimwarden lab stand-in for the legacy NeMo microservices (not NVIDIA software)"

# service -> (its list routes from the SDK; a path under any of them with more segments is a named resource)
ROUTES: dict[str, tuple[str, ...]] = {
    "datastore": ("/v1/hf/api/models", "/v1/hf/api/datasets"),  # HfApi(endpoint=f"{DATA_STORE}/v1/hf"): list_models / list_datasets
    "entitystore": ("/v1/namespaces", "/v1/projects", "/v1/datasets", "/v1/models"),
    "customizer": ("/v1/customization/configs", "/v1/customization/targets", "/v1/customization/jobs"),
    "evaluator": ("/v1/evaluation/configs", "/v1/evaluation/targets", "/v1/evaluation/jobs", "/v1/evaluation/results",
                  "/v2/evaluation/jobs"),
    "guardrails": ("/v1/guardrail/configs", "/v1/guardrail/models"),
    "deployment": ("/v1/deployment/configs", "/v1/deployment/model-deployments"),
    "nimproxy": ("/v1/models",),
}


def _handler(service: str) -> type[BaseHTTPRequestHandler]:
    lists = ROUTES[service]

    class Handler(BaseHTTPRequestHandler):
        server_version = f"nimwarden-nemo-legacy-{service}"

        def log_message(self, fmt, *args):  # quiet
            pass

        def _json(self, status: int, body) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0].rstrip("/")
            if path in ("/health", "/v1/health/ready", "/v1/health/live"):
                return self._json(200, {"status": "healthy"})
            if path in lists:
                return self._json(200, {"object": "list", "data": [], "pagination": {"page": 1, "page_size": 10, "total_results": 0}})
            if any(path.startswith(p + "/") for p in lists):
                return self._json(404, {"detail": "Not found"})
            return self._json(404, {"detail": "Not Found"})

    return Handler


def serve(host: str, services: list[str]) -> dict[str, ThreadingHTTPServer]:
    out = {}
    for s in services:
        srv = ThreadingHTTPServer((host, 0), _handler(s))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        out[s] = srv
    return out


def start(name: str, state_dir, *, host: str, services: tuple[str, ...] = tuple(ROUTES), timeout_s: float = 10.0) -> dict:
    """The stand-in as its own process (one port per service on ``host``); returns its lab state."""
    import os
    import subprocess
    import time
    from pathlib import Path

    workdir = Path(state_dir) / f"nemo-legacy-{name}"
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "nemo-legacy.log"
    cmd = [sys.executable, "-m", "nimwarden.lab.nemo_legacy", "--host", host, "--services", ",".join(services),
           "--workdir", str(workdir)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"), cwd=str(workdir))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("LISTENING "):
                return {"name": name, "pid": proc.pid, "addresses": json.loads(line.split(" ", 1)[1]), "stand_in": STAND_IN,
                        "log": str(log_path)}
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the legacy NeMo stand-in {name} did not start: {log_path.read_text(errors='replace')[-800:]}")


def stop(info: dict) -> bool:
    import os
    import signal
    from pathlib import Path

    pid = int(info["pid"])
    try:
        if b"nimwarden.lab.nemo_legacy" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return False
    except OSError:
        return False
    os.kill(pid, signal.SIGTERM)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=STAND_IN)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--services", default=",".join(ROUTES))
    ap.add_argument("--workdir", help="the lab directory this stand-in belongs to (identification only)")
    args = ap.parse_args(argv)
    servers = serve(args.host, [s for s in args.services.split(",") if s])
    print("LISTENING " + json.dumps({s: f"{srv.server_address[0]}:{srv.server_address[1]}" for s, srv in servers.items()}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
