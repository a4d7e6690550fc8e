"""The real NeMo Platform and NeMo Guardrails server in the lab (the NeMo half of the mission).

Each lab deployment runs, inside its network namespace like a pod:

- a real **NeMo Platform** (the PyPI ``nemo-platform`` package, pinned; every NeMo service on one port,
  ``/apis/<service>/v2/...``; SQLite storage in the deployment's own folder; telemetry off).
  ``hardened``: authentication on (``auth.enabled``), tokens validated as OIDC JWTs against the lab's
  identity provider, unsigned JWTs refused; not published: only the deployment's NeMo gateway
  (:mod:`nimwarden.lab.nemo_edge`) reaches it, through a port-forward as an in-cluster proxy would.
  ``exposed``: the platform as shipped (``auth.enabled: false``) and published on the edge address, seeded
  with a workspace, a fileset and a fake, per-run secret (canaries the leak checks look for).
- a real **NeMo Guardrails server** (``nemoguardrails``, the version the platform pins), configured with no
  dialog rails (nothing to download) and an OpenAI-compatible upstream of the lab's own (a NIM stand-in in
  the same namespace), called with the server's own key. ``exposed``: the CLI's ``nemoguardrails server``,
  which binds 0.0.0.0, with CORS on and published; ``hardened``: the same app bound to the pod's
  loopback, reachable only through its gateway.

**Stand-in** (labelled as such): the lab's OIDC identity provider — a static discovery document and JWKS
served inside the hardened namespace, and RS256 tokens minted here for the audit's own principal. No real
IdP can run here; the platform's own JWT validation against it is real.

The runtime is a Python 3.12/3.13 virtualenv of its own (``scripts/bootstrap`` installs it outside the
clone in ``<cache>/nemo-platform-<version>``, :mod:`nimwarden.lab.cache`), or named by ``NIMWARDEN_NEMO``
(its ``nemo`` executable). Its processes are stopped by PID and start time, and by the lab's generic
clean-up (processes naming the lab's folder, processes left in the namespaces).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from nimwarden.lab import netns, triton
from nimwarden.lab.cache import cache_dir, runtime

NEMO_PLATFORM_VERSION = "0.6.0"
PLATFORM_PORT = 8080  # the platform's documented single API port, inside the namespace
GUARDRAILS_PORT = 7331  # the NeMo Guardrails port of the seed's port table, inside the namespace
IDP_PORT = 5556
UPSTREAM_PORT = 9001  # the guardrails server's OpenAI-compatible upstream, on the namespace's loopback
# The services the lab runs: `deployments` needs Docker, `intake`/`insights` need ClickHouse.
SERVICES = ("auth", "entities", "files", "secrets", "models", "inference-gateway", "jobs", "guardrails", "evaluator", "customization")
# No controllers (jobs, models, entities): they run jobs and model deployments the lab never asks for, and cost
# ~6 % of a core each platform while idle (10 % with them, 3 % without, on this project's machine); the API
# and its security answers are the same.
CONTROLLERS: tuple[str, ...] = ()
CLIENT_ID = "nimwarden-lab"
AUDITOR = ("nimwarden-auditor", "auditor@nimwarden.invalid")  # the audit's own principal: no role anywhere
IDP_STAND_IN = "nimwarden lab OIDC identity provider stand-in (not a real IdP)"


def venv_dir() -> Path:
    return cache_dir() / f"nemo-platform-{NEMO_PLATFORM_VERSION}"


def find_runtime() -> Path:
    """The ``nemo`` executable; raises RuntimeError saying how to get one."""
    return runtime("NIMWARDEN_NEMO", venv_dir(), "nemo", "NeMo Platform runtime for the lab",
                   f"nemo-platform[all]=={NEMO_PLATFORM_VERSION} with Python 3.12 or 3.13")


def bundled_config(nemo: Path) -> dict:
    """The platform's own bundled configuration (``nmp/platform_runner/config/local.yaml``), as shipped."""
    for found in sorted(nemo.resolve().parent.parent.glob("lib/python3*/site-packages/nmp/platform_runner/config/local.yaml")):
        return yaml.safe_load(found.read_text(encoding="utf-8")) or {}
    raise RuntimeError(f"the NeMo Platform runtime next to {nemo} has no bundled local.yaml")


# --------------------------------------------------------------------------- the IdP stand-in


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class LabIdP:
    """STAND-IN: an OIDC issuer reduced to its public documents (discovery and JWKS) and a signing key."""

    def __init__(self, issuer: str):
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.issuer = issuer.rstrip("/")
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)

    def jwks(self) -> dict:
        numbers = self.key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {"keys": [{"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": _b64(n), "e": _b64(e)}]}

    def write(self, directory: Path) -> None:
        (directory / ".well-known").mkdir(parents=True, exist_ok=True)
        (directory / "jwks.json").write_text(json.dumps(self.jwks()))
        (directory / ".well-known" / "openid-configuration").write_text(json.dumps({
            "issuer": self.issuer, "jwks_uri": f"{self.issuer}/jwks.json", "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint": f"{self.issuer}/token", "response_types_supported": ["code"], "subject_types_supported": ["public"]}))

    def mint(self, subject: str, email: str, ttl_s: int = 12 * 3600) -> str:
        """An RS256 access token for ``subject``, as the IdP would issue it."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        claims = {"iss": self.issuer, "sub": subject, "email": email, "aud": CLIENT_ID, "iat": now, "exp": now + ttl_s,
                  "jti": secrets.token_hex(8)}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"


# --------------------------------------------------------------------------- configuration


def platform_config(nemo: Path, workdir: Path, hardened: bool, issuer: str | None) -> dict:
    """The platform's configuration: the bundled one as shipped, with the lab's paths; hardened turns
    authentication on the way NVIDIA's access-control documentation asks for production (OIDC JWTs
    validated against the IdP's keys, unsigned JWTs refused, a bootstrap admin nobody holds a token for)."""
    config = bundled_config(nemo)
    base = f"http://127.0.0.1:{PLATFORM_PORT}"
    config.setdefault("platform", {})["base_url"] = base
    jobs_dir = str(workdir / "jobs")
    for executor in (config.get("jobs") or {}).get("executors") or []:
        if executor.get("backend") == "subprocess":
            executor.setdefault("config", {})["working_directory"] = jobs_dir
    subprocess_defaults = ((config.get("jobs") or {}).get("executor_defaults") or {}).get("subprocess")
    if subprocess_defaults is not None:
        subprocess_defaults["working_directory"] = jobs_dir
    auth = config.setdefault("auth", {})
    auth["policy_decision_point_base_url"] = base
    if hardened:
        assert issuer
        auth.update(enabled=True, allow_unsigned_jwt=False, admin_email="lab-admin@nimwarden.invalid",
                    oidc={"enabled": True, "issuer": issuer, "jwks_uri": f"{issuer}/jwks.json", "client_id": CLIENT_ID,
                          "audience": CLIENT_ID})
    return config


def guardrails_config(directory: Path, model: str) -> Path:
    """A rails configuration with no dialog rails and no embeddings: nothing to download."""
    config = directory / "lab"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.yml").write_text(yaml.safe_dump({
        "models": [{"type": "main", "engine": "openai", "model": model}],
        "instructions": [{"type": "general", "content": "You are the nimwarden lab's assistant."}],
        "rails": {"input": {"flows": []}, "output": {"flows": []}},
    }))
    return directory


def _env(workdir: Path) -> dict[str, str]:
    home = workdir / "home"
    for d in (home, workdir / "data", workdir / "jobs"):
        d.mkdir(parents=True, exist_ok=True)
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local/share"), "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_STATE_HOME": str(home / ".local/state"), "NMP_DATA_DIR": str(workdir / "data"), "LANG": "C.UTF-8",
            "NEMO_TELEMETRY_ENABLED": "false", "DO_NOT_TRACK": "1", "NEMO_GUARDRAILS_NO_USAGE_STATS": "1"}


def _launch(argv: list[str], log_path: Path, env: dict[str, str], cwd: Path, netns_name: str | None) -> subprocess.Popen:
    prefix = ["ip", "netns", "exec", netns_name] if netns_name else []
    with open(log_path, "wb") as log:
        return subprocess.Popen([*prefix, *argv], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=str(cwd), start_new_session=True)


# --------------------------------------------------------------------------- one deployment's NeMo parts


def start(name: str, hardened: bool, workdir: Path, netns_name: str | None, ports: dict[str, int] | None = None,
          bind: str = "0.0.0.0", config: dict | None = None) -> dict:
    """Start the IdP stand-in (hardened), the platform, the guardrails upstream and the guardrails server for
    one deployment; returns its part of the lab state (PIDs first, so `down` finds them after a crash).

    With ``netns_name`` every process runs inside that namespace on the documented ports, the platform on all
    of the namespace's addresses as in a pod; without, on this host on ``ports`` (``platform``, ``guardrails``,
    ``idp``, ``upstream``), the platform and an exposed guardrails server bound to ``bind``. ``config`` replaces
    the platform configuration the lab would write (a platform configured some other way, for tests)."""
    nemo = find_runtime()
    python = nemo.parent / "python"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    ports = ports or {"platform": PLATFORM_PORT, "guardrails": GUARDRAILS_PORT, "idp": IDP_PORT, "upstream": UPSTREAM_PORT}
    env = _env(workdir)
    out: dict = {"workdir": str(workdir), "version": NEMO_PLATFORM_VERSION, "auth": "oidc" if hardened else "off",
                 "ports": ports, "processes": {}}

    def record(part: str, proc: subprocess.Popen) -> None:
        out["processes"][part] = {"pid": proc.pid, "start_time": triton.process_start_time(proc.pid)}

    issuer = None
    if hardened:
        issuer = f"http://127.0.0.1:{ports['idp']}"
        idp = LabIdP(issuer)
        idp.write(workdir / "idp")
        token_file = workdir / "auditor-token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(idp.mint(*AUDITOR) + "\n")
        out.update(token_file=str(token_file), issuer=issuer, idp=IDP_STAND_IN)
        record("idp", _launch([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(ports["idp"]),
                               "--directory", str(workdir / "idp")], workdir / "idp.log", env, workdir, netns_name))
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config if config is not None else platform_config(nemo, workdir, hardened, issuer)))
    record("platform", _launch([str(nemo), "services", "run", "--config", str(config_path), "--host", bind if not netns_name else "0.0.0.0",
                                "--port", str(ports["platform"]), "--instance", f"nimwarden-{name}",
                                "--services", ",".join(SERVICES), *(["--controllers", ",".join(CONTROLLERS)] if CONTROLLERS else [])],
                               workdir / "platform.log", env, workdir, netns_name))
    # The guardrails server's upstream: an OpenAI-compatible NIM stand-in of the lab's own, in the same namespace.
    record("upstream", _launch([sys.executable, "-m", "nimwarden.lab.nimstub", "--host", "127.0.0.1", "--port",
                                str(ports["upstream"]), "--workdir", str(workdir)], workdir / "upstream.log",
                               {**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}, workdir, netns_name))
    server_key = f"sk-canary{secrets.token_hex(16)}"  # the server's own upstream key: fake, per run, a canary
    out["guardrails_key_canary"] = server_key
    genv = {**env, "OPENAI_API_KEY": server_key, "MAIN_MODEL_ENGINE": "openai",
            "MAIN_MODEL_BASE_URL": f"http://127.0.0.1:{ports['upstream']}/v1"}
    configs = guardrails_config(workdir / "guardrails", "nim-stand-in")
    if hardened or not netns_name:
        # The same app the CLI serves, on a chosen address: the pod's loopback (hardened), or, on a host
        # without namespaces, never all of the host's interfaces.
        code = ("import sys, uvicorn; from nemoguardrails.server import api; "
                "from nemoguardrails.telemetry import DeploymentTypeEnum, set_deployment_type; "
                "set_deployment_type(DeploymentTypeEnum.API.value); api.app.rails_config_path = sys.argv[1]; "
                "uvicorn.run(api.app, host=sys.argv[3], port=int(sys.argv[2]), log_level='info')")
        argv = [str(python), "-c", code, str(configs), str(ports["guardrails"]), "127.0.0.1" if hardened else bind]
        genv["NEMO_GUARDRAILS_DISABLE_CHAT_UI"] = "true"
    else:  # as its CLI does: on 0.0.0.0
        argv = [str(nemo.parent / "nemoguardrails"), "server", "--config", str(configs), "--port", str(ports["guardrails"])]
        genv["NEMO_GUARDRAILS_SERVER_ENABLE_CORS"] = "true"  # origins default to *: any Origin is echoed
    record("guardrails", _launch(argv, workdir / "guardrails.log", genv, workdir, netns_name))
    return out


def _status(url: str, netns_name: str | None, timeout: float = 2.0) -> int:
    """The HTTP status of GET ``url`` from this host, or from inside ``netns_name`` (where the namespace's loopback
    is: a socket made there, no process started per poll); 0 when nothing answers."""
    if not netns_name:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (OSError, urllib.error.URLError):
            return 0
    u = urllib.parse.urlsplit(url)
    try:
        with netns.socket_in_netns(netns_name) as sock:
            sock.settimeout(timeout)
            sock.connect((u.hostname or "127.0.0.1", u.port or 80))
            sock.sendall(f"GET {u.path or '/'} HTTP/1.0\r\nHost: {u.netloc}\r\n\r\n".encode())
            words = sock.makefile("rb").readline().split()
    except OSError:
        return 0
    return int(words[1]) if len(words) > 1 and words[1].isdigit() else 0


def wait(part: dict, netns_name: str | None, timeout_s: float = 120.0) -> float:
    """Wait until the platform says it is ready and the guardrails server answers; returns the seconds taken."""
    t0 = time.monotonic()
    workdir = Path(part["workdir"])
    ports = part["ports"]
    pending = {"platform": f"http://127.0.0.1:{ports['platform']}/health/ready",
               "guardrails": f"http://127.0.0.1:{ports['guardrails']}/v1/rails/configs"}
    while pending:
        for what, url in list(pending.items()):
            if _status(url, netns_name) == 200:
                del pending[what]
        for what, info in part["processes"].items():
            if triton.process_start_time(info["pid"]) != info["start_time"]:
                log = workdir / f"{what}.log"
                tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
                raise RuntimeError(f"the lab's NeMo {what} exited while starting; its log ({log}) ends: {tail}")
        if not pending:
            break
        if time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"the lab's NeMo {', '.join(pending)} did not become ready in {timeout_s:.0f} s (logs in {workdir})")
        time.sleep(0.5)
    return time.monotonic() - t0


def seed(base_url: str, timeout: float = 10.0) -> dict:
    """What a team keeps in an exposed platform, for a reader of the report to see what leaks: a workspace,
    a fileset with one file, and a secret. The secret's value and the file's content are fake, random per
    run and worthless anywhere: canaries that must never appear in an artifact (the probes never read them)."""
    workspace, secret, fileset = "lab-team", "hf-token", "training-data"
    canary = f"hf_canary{secrets.token_hex(12)}"

    def call(method: str, path: str, body: dict | bytes | None = None, ctype: str = "application/json") -> int:
        data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method, headers={"Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            if exc.code == 409:  # already there (a re-seed)
                return exc.code
            raise RuntimeError(f"seeding the exposed NeMo Platform: {method} {path} answered {exc.code}: "
                               f"{exc.read()[:300]!r}") from None

    call("POST", "/apis/entities/v2/workspaces", {"name": workspace, "description": "the lab's team workspace"})
    call("POST", f"/apis/secrets/v2/workspaces/{workspace}/secrets", {"name": secret, "value": canary,
                                                                      "description": "a Hugging Face token (fake, per run)"})
    call("POST", f"/apis/files/v2/workspaces/{workspace}/filesets", {"name": fileset, "description": "fine-tuning data"})
    file_canary = f"canary-row-{secrets.token_hex(8)}"
    call("PUT", f"/apis/files/v2/workspaces/{workspace}/filesets/{fileset}/-/train.jsonl",
         (json.dumps({"prompt": "hello", "completion": file_canary}) + "\n").encode(), "application/octet-stream")
    return {"workspace": workspace, "secret": secret, "fileset": fileset, "canaries": {"secret_value": canary, "file_content": file_canary}}


# --------------------------------------------------------------------------- the lab's deployments


def start_parts(specs, state: dict, net: dict | None, files: Path, edge_hosts: dict[str, str], internal_host: str,
                save, log) -> list:
    """A real NeMo Platform and Guardrails server per lab deployment that asks for them, started while the
    servers start; returns what :func:`ready_parts` needs."""
    parts = []
    for spec in (s for s in specs if s.nemo):
        dep = state["deployments"][spec.name]
        position = (net or {}).get("positions", {}).get(spec.name)
        workdir = files / spec.name / "nemo"
        if position:
            part = start(spec.name, spec.hardened, workdir, position["netns"])
        else:
            ports = {k: triton.free_port() for k in ("platform", "guardrails", "idp", "upstream")}
            part = start(spec.name, spec.hardened, workdir, None, ports,
                         bind=internal_host if spec.hardened else edge_hosts.get(spec.name, internal_host))
        dep["nemo_parts"] = part
        save()  # PIDs at once, so `down` finds them after a crash
        log(f"lab: starting {spec.name} NeMo Platform {NEMO_PLATFORM_VERSION} "
            f"({'authentication on, OIDC tokens' if spec.hardened else 'authentication off, as shipped'}) and NeMo Guardrails server"
            + (f" in {position['netns']}" if position else ""))
        parts.append((spec, part, position))
    return parts


def ready_parts(directory: Path, parts: list, state: dict, edge_hosts: dict[str, str], internal_host: str, save, log) -> None:
    """Wait for each deployment's NeMo parts, publish them (exposed) or forward them to loopback for the
    gateway (hardened), and seed the exposed platform with what a team keeps there."""
    for spec, part, position in parts:
        took = wait(part, position["netns"] if position else None)
        dep = state["deployments"][spec.name]
        edge = edge_hosts.get(spec.name, internal_host)
        bind = internal_host if spec.hardened else edge
        if position:
            p, g = triton.free_port(bind), triton.free_port(bind)
            netns.port_forward(directory, spec.name, {p: PLATFORM_PORT, g: GUARDRAILS_PORT}, bind=bind)
        else:
            p, g = part["ports"]["platform"], part["ports"]["guardrails"]
        dep.update(nemo=f"{bind}:{p}", nemo_version=part["version"], nemo_auth=part["auth"])
        if spec.hardened:
            dep.update(nemo_token_file=part["token_file"], guardrails_upstream=f"{bind}:{g}")
        else:
            dep["guardrails"] = f"{bind}:{g}"
            dep["nemo_seed"] = seed(f"http://{dep['nemo']}")
        save()
        log(f"lab: {spec.name} NeMo Platform and Guardrails server ready in {took:.1f}s (platform {dep['nemo']}"
            + (", seeded with a workspace, a fileset and a canary secret)" if not spec.hardened else ", behind its NeMo gateway)"))


def stop(part: dict) -> int:
    """Stop one deployment's NeMo processes (PID and start time checked); returns how many were running."""
    stopped = 0
    for info in (part or {}).get("processes", {}).values():
        if triton.stop_pid(int(info["pid"]), info.get("start_time"), grace_s=5.0):
            stopped += 1
    return stopped
