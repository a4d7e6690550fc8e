"""A real nginx in front of a lab deployment: the gateway the vendor guidance asks for.

``hardened``: TLS 1.2/1.3 only with a lab-CA certificate, bearer-token auth
checked by nginx itself, ``limit_req`` rate limiting (429), internal and
management paths blocked, plain HTTP redirected to HTTPS.

``exposed``: the usual mistakes: TLS 1.0 allowed (``@SECLEVEL=0``, legacy
ciphers), a self-signed certificate about to expire, no auth, no rate limit,
every path proxied.

nginx runs from Debian's package (``/usr/sbin/nginx``) as a non-daemon child in
its own session, with its configuration, pid file, logs and temp directories
in the lab state directory, so ``stop`` works from another process.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from nimwarden.lab import nemo_legacy
from nimwarden.lab.triton import free_port, running

NGINX = os.environ.get("NIMWARDEN_NGINX", "/usr/sbin/nginx")

# Paths the gateway never forwards (even with a valid token): Triton's
# management/admin APIs and NIM's disclosure endpoints (see docs/facts.md).
INTERNAL_PATHS = (
    "/v2/repository",
    "/v2/logging",
    "/v2/trace",
    "/v2/systemsharedmemory",
    "/v2/cudasharedmemory",
    "/v2/models/stats",
    "/metrics",
    "/v1/metrics",
    "/v1/metadata",
    "/v1/license",
    "/docs",
    "/openapi.json",
)

DEFAULT_RATE = "5r/s"
DEFAULT_BURST = 5

HARDENED_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
# The weak gateway accepts everything OpenSSL still has, anonymous and 3DES included.
EXPOSED_CIPHERS = "ALL:@SECLEVEL=0"


class GatewayError(RuntimeError):
    """nginx could not be configured or started; the message carries its error log."""


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def _upstream(upstream_http: str) -> str:
    up = upstream_http.rstrip("/")
    if not up.startswith("http://"):
        raise GatewayError(f"upstream must be a plain http:// URL inside the lab, got {upstream_http!r}")
    return up


def render_config(
    *,
    prefix: Path,
    host: str,
    https_port: int,
    http_port: int,
    upstream_http: str,
    cert: Path,
    key: Path,
    hardened: bool,
    token: str | None,
    rate: str = DEFAULT_RATE,
    burst: int = DEFAULT_BURST,
    client_ca: Path | None = None,
    routes: dict[str, str] | None = None,
) -> str:
    """The nginx.conf for one gateway. Pure: easy to read in a test.

    ``routes`` sends path prefixes to other upstreams (``{"/v1/": NIM front}``), the rest
    goes to ``upstream_http``; every route gets the same auth and rate limit.
    """
    up = _upstream(upstream_http)
    extra = {prefix_: _upstream(u) for prefix_, u in (routes or {}).items()}
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    listen = f"[{host}]" if ":" in host else host
    temp = "\n".join(
        f"    {d}_temp_path {prefix}/tmp/{d};" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    common_http = f"""
    access_log {prefix}/access.log;
    server_tokens off;
{temp}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_buffering off;              # SSE streams from the NIM front pass through unbuffered
    proxy_connect_timeout 5s;
    proxy_read_timeout 60s;
"""
    if hardened:
        if not token:
            raise GatewayError("a hardened gateway needs a token")
        internal = "|".join(p.lstrip("/").replace(".", r"\.") for p in INTERNAL_PATHS)
        mtls = ""
        if client_ca is not None:
            mtls = f"        ssl_client_certificate {client_ca};\n        ssl_verify_client optional;\n"
        routed = "".join(
            f"        location {p} {{\n            limit_req zone=nw_api burst={burst} nodelay;\n"
            f"            proxy_pass {u};\n        }}\n" for p, u in extra.items()
        )
        http_block = f"""
    map $http_authorization $nw_authorized {{
        default 0;
        "Bearer {token}" 1;
    }}
    limit_req_zone $binary_remote_addr zone=nw_api:1m rate={rate};
    limit_req_status 429;
    server {{
        listen {listen}:{http_port};
        return 308 https://$host:{https_port}$request_uri;
    }}
    server {{
        listen {listen}:{https_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {HARDENED_CIPHERS};
        ssl_prefer_server_ciphers on;
        ssl_session_tickets off;
{mtls}        add_header Strict-Transport-Security "max-age=63072000" always;
        # Authentication runs in the server's rewrite phase, before any
        # location: every path, internal ones included, answers 401 first.
        if ($nw_authorized = 0) {{
            return 401 '{{"error":"authentication required"}}';
        }}
        location ~ ^/({internal})(/|$) {{
            return 403 '{{"error":"not available through the gateway"}}';
        }}
{routed}        location / {{
            limit_req zone=nw_api burst={burst} nodelay;
            proxy_pass {up};
        }}
    }}
"""
    else:
        locations = "".join(f"        location {p} {{ proxy_pass {u}; }}\n" for p, u in extra.items())
        locations += f"        location / {{ proxy_pass {up}; }}\n"
        http_block = f"""
    server {{
        listen {listen}:{http_port};
{locations}    }}
    server {{
        listen {listen}:{https_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
        ssl_ciphers {EXPOSED_CIPHERS};
{locations}    }}
"""
    return f"""# generated by nimwarden.lab.gateway ({"hardened" if hardened else "exposed"})
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
{common_http}{http_block}}}
"""


def _wait_listening(host: str, port: int, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)


def prepare(name: str, state_dir: Path | str) -> Path:
    """The folder of one nginx (config, pid, logs, temp directories); raises when nginx is missing."""
    if not Path(NGINX).exists():
        raise GatewayError(f"nginx not found at {NGINX} (Debian package nginx-light)")
    prefix = Path(state_dir) / f"gateway-{name}"
    prefix.mkdir(parents=True, exist_ok=True)
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / d).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(prefix / "tmp" / d, "nobody", "nogroup")
    return prefix


def launch(name: str, prefix: Path, config: str, host: str, port: int, *, weak_tls: bool = False,
           timeout_s: float = 10.0) -> subprocess.Popen:
    """Write ``config`` (0600: it may hold a token) and run nginx on it until it listens on ``host:port``."""
    conf = prefix / "nginx.conf"
    _write_secret(conf, config)
    env = dict(os.environ)
    if weak_tls:
        # A distribution's system-wide MinProtocol would silently veto TLS 1.0: give
        # the weak gateway an empty OpenSSL config so it really is weak.
        (prefix / "openssl.cnf").write_text("# empty on purpose\n", encoding="utf-8")
        env["OPENSSL_CONF"] = str(prefix / "openssl.cnf")
    log = open(prefix / "nginx.out", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=env,
        )
    finally:
        log.close()
    _wait_listening(host, port, proc, time.monotonic() + timeout_s)
    if proc.poll() is not None:
        raise GatewayError(f"nginx for {name} exited with {proc.returncode}: {_tail(prefix)}")
    try:
        with socket.create_connection((host, port), timeout=1):
            pass
    except OSError as exc:
        stop({"pid": proc.pid, "conf": str(conf)})
        raise GatewayError(f"nginx for {name} did not listen on {host}:{port}: {exc}; {_tail(prefix)}") from None
    return proc


def start(
    name: str,
    upstream_http: str,
    state_dir: Path | str,
    hardened: bool,
    *,
    host: str = "127.0.0.1",
    https_port: int = 0,
    http_port: int = 0,
    cert: Path | str,
    key: Path | str,
    token: str | None = None,
    rate: str = DEFAULT_RATE,
    burst: int = DEFAULT_BURST,
    client_ca: Path | str | None = None,
    routes: dict[str, str] | None = None,
    timeout_s: float = 10.0,
) -> dict:
    """Start one nginx gateway; returns what the lab state file records about it.

    ``token`` defaults to a fresh random one for a hardened gateway; it is
    written to ``token_file`` (0600) and into nginx.conf (0600), nowhere else.
    """
    prefix = prepare(name, state_dir)
    https_port = https_port or free_port(host)
    http_port = http_port or free_port(host)
    token_file = None
    if hardened:
        token = token or secrets.token_urlsafe(24)
        token_file = prefix / "token"
        _write_secret(token_file, token + "\n")
    conf = prefix / "nginx.conf"
    proc = launch(name, prefix, render_config(
        prefix=prefix, host=host, https_port=https_port, http_port=http_port, upstream_http=upstream_http,
        cert=Path(cert), key=Path(key), hardened=hardened, token=token, rate=rate, burst=burst,
        client_ca=Path(client_ca) if client_ca else None, routes=routes,
    ), host, https_port, weak_tls=not hardened, timeout_s=timeout_s)
    return {
        "name": name,
        "pid": proc.pid,
        "host": host,
        "https_port": https_port,
        "http_port": http_port,
        "https_url": f"https://{host}:{https_port}",
        "http_url": f"http://{host}:{http_port}",
        "hardened": hardened,
        "token_file": str(token_file) if token_file else None,
        "conf": str(conf),
        "error_log": str(prefix / "error.log"),
        "cert": str(cert),
    }


def _tail(prefix: Path, n: int = 2000) -> str:
    text = ""
    for f in ("nginx.out", "error.log"):
        p = prefix / f
        if p.exists():
            text += p.read_text(encoding="utf-8", errors="replace")[-n:]
    return text.strip().replace("\n", " | ") or "(no log)"


def _is_our_nginx(pid: int, conf: str) -> bool:
    """Guard against a recycled pid: only signal the nginx started with our config.

    nginx rewrites its process title ("nginx: master process /usr/sbin/nginx -p … -c <conf> …"),
    so /proc/<pid>/cmdline is one space-separated string, not the original argv."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return "nginx" in cmdline and f" {conf} " in f" {cmdline.strip()} "


def stop(info: dict, timeout_s: float = 5.0) -> bool:
    """Stop a gateway started by :func:`start` (``info`` is what it returned). True if it was running."""
    pid, conf = int(info["pid"]), str(info["conf"])
    if not _is_our_nginx(pid, conf):
        return False
    os.kill(pid, signal.SIGTERM)  # nginx: TERM = fast shutdown of master and workers
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return True
        except ChildProcessError:
            if not running(pid):  # gone, or a zombie init has not reaped yet
                return True
        time.sleep(0.05)
    if _is_our_nginx(pid, conf):
        os.kill(pid, signal.SIGKILL)
    return True


# --------------------------------------------------------------------------- the lab's whole edge


# The NIM for LLMs release each lab stand-in reports (NIM-ENGINECVE-001): exposed 2.1.5 bundles vLLM 0.31.0,
# in range of CVE-2026-115911; hardened 2.1.6 bundles vLLM 0.32.0, past it (NIM for LLMs release notes).
LAB_NIM_RELEASE = {True: "2.1.6", False: "2.1.5"}


def up_edge(state_dir: Path | str, specs: list[dict], log=print, certs: dict | None = None) -> dict:
    """PKI, NIM stand-ins and one gateway per deployment, from specs like
    ``{"name": "hardened", "hardened": True, "host": "127.0.0.2", "upstream": "http://127.0.0.1:8000",
    "nim": True, "cert_hosts": ["127.0.0.1"]}``. ``nim: True`` starts the NIM stand-in (forwarding
    inference to ``upstream``) and routes ``/v1/`` to it while ``/v2`` goes to Triton;
    with ``nim_only: True`` the gateway fronts the stand-in alone. Returns the edge part of the lab state.
    ``certs``: a PKI made earlier with :func:`nimwarden.lab.pki.lab_pki` (the lab makes one
    before Triton starts, so its gRPC uses the same CA); made here when absent.
    """
    from nimwarden.lab import nimstub, pki

    state_dir = Path(state_dir)
    strong = {s["name"]: sorted({s["host"], "localhost", *s.get("cert_hosts", [])}) for s in specs}
    weak = {s["name"]: [s["host"]] for s in specs if not s["hardened"]}
    certs = certs or pki.lab_pki(state_dir / "pki", strong, weak_hosts=weak)
    out: dict = {"pki": certs, "deployments": {}}
    try:
        for s in specs:
            dep: dict = {}
            out["deployments"][s["name"]] = dep
            upstream = s["upstream"]
            routes = None
            if s.get("nim"):
                # hardened: the stand-in listens on the internal address only; exposed: on the edge address too
                stub_host = s.get("internal_host", "127.0.0.1") if s["hardened"] else s["host"]
                dep["nimstub"] = nimstub.start(s["name"], state_dir, host=stub_host, triton=upstream, leaky=not s["hardened"],
                                               release=LAB_NIM_RELEASE[s["hardened"]])
                log(f"lab: {s['name']} NIM stand-in on {dep['nimstub']['address']}")
                if s.get("nim_only"):
                    upstream = dep["nimstub"]["url"]  # a kind: nim deployment: the gateway fronts only the NIM
                else:
                    # NIM API beside Triton's /v2 behind one gateway
                    routes = {p: dep["nimstub"]["url"] for p in ("/v1/", "/docs", "/openapi.json")}
            if not s["hardened"]:
                # exposed runs a DCGM Exporter stand-in that serves /debug/pprof (DCGM Exporter 4.8.0/4.8.1)
                dep["dcgm"] = nimstub.start(f"{s['name']}-dcgm", state_dir, host=s["host"], leaky=True, role="dcgm")
                log(f"lab: {s['name']} DCGM Exporter stand-in on {dep['dcgm']['address']}")
            cert = certs["servers"][s["name"]] if s["hardened"] else certs["self_signed"][s["name"]]
            dep["gateway"] = start(s["name"], upstream, state_dir, s["hardened"], host=s["host"],
                                   cert=cert["cert"], key=cert["key"], routes=routes)
            log(f"lab: {s['name']} gateway {dep['gateway']['https_url']} (http {dep['gateway']['http_port']})")
    except BaseException:
        down_edge(out)
        raise
    return out


def down_edge(edge: dict) -> int:
    """Stop what :func:`up_edge` started; returns how many processes were stopped."""
    from nimwarden.lab import nimstub

    stopped = 0
    for dep in (edge or {}).get("deployments", {}).values():
        stopped += sum(1 for part in ("gateway", "nemo_gateway") if part in dep and stop(dep[part]))
        stopped += bool(dep.get("nemo_legacy")) and nemo_legacy.stop(dep["nemo_legacy"])
        for part in ("nimstub", "dcgm"):
            if part in dep and nimstub.stop(dep[part]):
                stopped += 1
    return stopped
