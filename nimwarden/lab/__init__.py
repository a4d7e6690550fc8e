"""The embedded lab: real tritonserver processes standing in for a hardened and an exposed deployment.

`nimwarden lab up|down|status`; ``./scripts/audit`` with no argument uses it.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from nimwarden.lab import gateway, kube, nemo, nemo_edge, netns, pki, ray, triton
from nimwarden.lab.kube import for_lab
from nimwarden.lab.kube.for_lab import kubernetes_section, profile_for  # noqa: F401 - the CLI's and the tests' entry points

STATE_SCHEMA = "nimwarden/lab/v1"
MANIFESTS = Path(__file__).resolve().parent / "manifests"  # applied to the lab's API server (nimwarden.lab.kube)
DEFAULT_DIR = Path(".nimwarden") / "lab"
LAB_USER = "nobody"  # the hardened server's user when the lab runs as root


def lab_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    return Path(explicit or os.environ.get("NIMWARDEN_LAB_DIR") or DEFAULT_DIR).resolve()


@dataclass
class ServerSpec:
    """One lab deployment: how its tritonserver is configured."""

    name: str
    hardened: bool
    compute_ms: float = 0.0
    extra_args: list[str] = field(default_factory=list)
    compute_kind: str = "sleep"  # or "cpu": calibrated CPU work instead of a sleep (benchmarks of compute-bound noise)
    compute_iterations: int = 0  # cpu: a fixed iteration count instead of the start-up calibration
    ray: str | None = None  # "open" or "token": a real Ray head next to the server (nimwarden.lab.ray)
    nemo: bool = False  # a real NeMo Platform and Guardrails server next to the server (nimwarden.lab.nemo)


DEFAULT_SPECS = (ServerSpec("hardened", True, ray="token", nemo=True), ServerSpec("exposed", False, ray="open", nemo=True))

RESTRICTED = "model-repository,model-config,shared-memory,statistics,trace,logging"


# Ports inside a deployment's network namespace (its own address, like a pod's). SageMaker's default 8080
# is the NeMo Platform's documented port, which the lab's NeMo Platform uses in the same namespace.
NETNS_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002, "sagemaker": 8085}

# Each deployment's external address on the host: its nginx gateway listens there (and,
# for exposed, its NIM stand-in too: published by mistake), so a port scan of one
# deployment's edge does not see the other's. Internal services stay on 127.0.0.1.
EDGE_HOSTS = {"hardened": "127.0.0.2", "exposed": "127.0.0.3"}
INTERNAL_HOST = "127.0.0.1"


def grpc_tls_args(tls: dict) -> list[str]:
    """Triton's own gRPC TLS, client certificates required (mutual TLS)."""
    return ["--grpc-use-ssl=true", "--grpc-use-ssl-mutual=true", f"--grpc-root-cert={tls['ca']}",
            f"--grpc-server-cert={tls['cert']}", f"--grpc-server-key={tls['key']}"]


def server_args(spec: ServerSpec, ports: dict[str, int], repo: Path, backends: Path, workdir: Path, key: str | None,
                bind: str = "127.0.0.1", grpc_tls: dict | None = None) -> list[str]:
    common = [
        f"--model-repository={repo}",
        f"--backend-directory={backends}",
        f"--http-port={ports['http']}",
        f"--grpc-port={ports['grpc']}",
        f"--metrics-port={ports['metrics']}",
        "--log-verbose=0",
        "--exit-timeout-secs=5",
    ]
    if spec.hardened:
        assert key is not None
        return common + [
            f"--http-address={bind}",
            f"--grpc-address={bind}",
            "--model-control-mode=none",
            f"--http-restricted-api={RESTRICTED}:admin-key={key}",
            f"--grpc-restricted-protocol={RESTRICTED}:admin-key={key}",
            "--allow-metrics=false",
            "--allow-sagemaker=false",
            "--allow-vertex-ai=false",
            "--trace-config=level=OFF",
            "--exit-on-error=true",
            "--strict-readiness=true",
            "--disable-auto-complete-config",
            *(grpc_tls_args(grpc_tls) if grpc_tls else []),
            *spec.extra_args,
        ]
    # Defaults and the usual mistakes: explicit model control with nothing restricted,
    # metrics on every interface, SageMaker front end left on, tracing to a file.
    return common + [
        "--model-control-mode=explicit",
        "--load-model=add",
        "--allow-metrics=true",
        "--metrics-address=0.0.0.0",
        "--allow-sagemaker=true",
        f"--sagemaker-port={ports['sagemaker']}",
        "--trace-config=level=TIMESTAMPS",
        "--trace-config=rate=1000",
        f"--trace-config=triton,file={workdir / 'trace.json'}",
        *spec.extra_args,
    ]


def _run_as_user(runtime: triton.TritonRuntime, paths: list[Path]) -> tuple[tuple[int, int] | None, str]:
    if os.geteuid() != 0:
        return None, f"uid {os.geteuid()} (the lab is not running as root)"
    if not runtime.system_python:
        return None, "root (no world-readable Python runtime for the backend stub: install python3-numpy)"
    if not all(triton.world_traversable(p) for p in paths):
        return None, "root (the tritonserver wheel is not readable by other users)"
    pw = pwd.getpwnam(LAB_USER)
    return (pw.pw_uid, grp.getgrnam("nogroup").gr_gid if _has_group("nogroup") else pw.pw_gid), LAB_USER


def _has_group(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def read_state(directory: Path) -> dict | None:
    try:
        return json.loads((directory / "state.json").read_text())
    except (OSError, ValueError):
        return None


def _write_state(directory: Path, state: dict) -> None:
    tmp = directory / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(directory / "state.json")


def runtime_dir(directory: Path) -> Path:
    """Where the servers' own files live: the lab directory itself when any user can reach it;
    otherwise (a 0700 parent such as `mktemp -d`, and root dropping the hardened server to
    `nobody`) a world-traversable directory under /tmp named after the lab directory, so that
    `down` finds it again even after a crash."""
    if os.geteuid() != 0 or triton.world_traversable(directory):
        return directory
    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"nimwarden-lab-{digest}"


def up(directory: Path, compute_ms: float = 0.0, specs: tuple[ServerSpec, ...] = DEFAULT_SPECS, log=print) -> dict:
    """Start every lab deployment; returns the state written to ``directory/state.json``."""
    if read_state(directory):
        down(directory, log=lambda *_: None)
    runtime = triton.find_runtime()
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    files = runtime_dir(directory)
    files.mkdir(parents=True, exist_ok=True)
    os.chmod(files, 0o755)
    if os.geteuid() == 0:
        runtime = triton.reachable_runtime(runtime, files / "runtime")
    backends = triton.prepare_backends(runtime, files / "backends")
    run_as, run_as_label = _run_as_user(runtime, [runtime.binary, runtime.libs, backends, files])
    state: dict = {
        "schema": STATE_SCHEMA,
        "dir": str(directory),
        "runtime_dir": str(files),
        "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "triton_python": f"{runtime.python_version} ({'system' if runtime.system_python else 'harness'} interpreter)",
        "deployments": {},
    }
    procs = []
    net = None
    net_ok, net_why = netns.available()
    cluster = for_lab.start(directory, MANIFESTS, log)  # first: the slowest part to start runs beside the others
    try:
        if net_ok:
            net = netns.up(directory)
            log(f"lab: network namespaces up ({net['subnet']} on a private bridge; hardened enforces its policy with iptables, exposed does not)")
        else:
            log(f"lab: no network namespaces: {net_why}")
        if cluster is not None:
            cluster.network(net)
        state["network"] = {"namespaces": net is not None, "reason": net_why if net is None else "network namespaces on a private bridge"}
        # One lab CA for the gateways and Triton's gRPC; the hardened certificate names every
        # address clients use: loopback (the port-forward), its edge, its namespace address.
        positions = (net or {}).get("positions", {})
        certs = pki.lab_pki(
            files / "pki",
            {s.name: sorted({INTERNAL_HOST, "localhost", EDGE_HOSTS.get(s.name, INTERNAL_HOST),
                             *([positions[s.name]["address"]] if s.name in positions else [])}) for s in specs if s.hardened},
            weak_hosts={s.name: [EDGE_HOSTS.get(s.name, INTERNAL_HOST)] for s in specs if not s.hardened},
        )
        state["pki"] = certs
        for spec in specs:
            spec.compute_ms = spec.compute_ms or compute_ms
            workdir = files / spec.name
            if workdir.exists():
                shutil.rmtree(workdir)
            workdir.mkdir(parents=True)
            parameters = None
            if not spec.hardened:
                # A mistake on purpose, and a canary for secret hygiene: a cloud-storage key and a
                # Hugging Face token in the model's config.pbtxt, which the unrestricted model-config
                # API discloses. Random per run, shaped like the real thing, worthless anywhere.
                parameters = {"s3_secret_access_key": secrets.token_urlsafe(30), "weights_source": f"hf_canary{secrets.token_hex(12)}"}
            repo = triton.write_model_repository(workdir, spec.compute_ms, parameters, compute_kind=spec.compute_kind,
                                                 compute_iterations=spec.compute_iterations)
            ports = {p: triton.free_port() for p in ("http", "grpc", "metrics", "sagemaker")}
            key = None
            dep_state: dict = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
            if spec.hardened:
                key = secrets.token_urlsafe(24)
                key_file = workdir / "admin-key"
                key_file.write_text(key + "\n")
                os.chmod(key_file, 0o600)
                dep_state["admin_key_file"] = str(key_file)
            user = run_as if spec.hardened else None
            if not spec.hardened:
                os.chmod(workdir, 0o777)  # a mistake on purpose: world-writable server directory
            grpc_tls = None
            if spec.hardened:
                grpc_tls = {"ca": certs["ca"], **certs["servers"][spec.name]}
                if user:  # the key is 0600: hand it to the user the server runs as
                    os.chown(grpc_tls["key"], *user)
                dep_state.update(grpc_client_cert=certs["clients"][spec.name]["cert"],
                                 grpc_client_key=certs["clients"][spec.name]["key"])
            dep_state.update(ca_file=certs["ca"], edge_host=EDGE_HOSTS.get(spec.name, INTERNAL_HOST))
            log_path = workdir / "tritonserver.log"
            position = (net or {}).get("positions", {}).get(spec.name)
            if position:
                # Inside its namespace the server listens on its own address like a pod; the
                # policy (iptables for hardened), not the bind address, decides who reaches it.
                args = server_args(spec, NETNS_PORTS, repo, backends, workdir, key, bind="0.0.0.0", grpc_tls=grpc_tls)
                log(f"lab: starting {spec.name} tritonserver in {position['netns']} ({position['address']}), forwarded to 127.0.0.1 (http {ports['http']}, grpc {ports['grpc']}, metrics {ports['metrics']})")
            else:
                args = server_args(spec, ports, repo, backends, workdir, key, grpc_tls=grpc_tls)
                log(f"lab: starting {spec.name} tritonserver (http {ports['http']}, grpc {ports['grpc']}, metrics {ports['metrics']}) as {run_as_label if user else 'root' if os.geteuid() == 0 else 'current user'}")
            env = None
            if not spec.hardened:
                # A mistake on purpose, and a canary for secret hygiene: credentials in the server's
                # plain environment. Random per run, shaped like the real thing, worthless anywhere.
                env = {"NGC_API_KEY": f"nvapi-canary{secrets.token_hex(16)}", "HF_TOKEN": f"hf_canary{secrets.token_hex(12)}"}
                dep_state["canary_env"] = sorted(env)
                dep_state["canary_model_parameters"] = sorted(parameters or {})
            proc = triton.launch(runtime, args, log_path, run_as=user, cwd=workdir, extra_env=env, netns_name=position["netns"] if position else None)
            procs.append(proc)
            if position:
                # Like kubectl port-forward: host loopback into the namespace's loopback, so the
                # suites that probe a deployment directly keep their ${lab.<name>.<port>} addresses.
                # Only what the server serves: a forwarder on a dead port would look open to nmap.
                served = ("http", "grpc") if spec.hardened else tuple(NETNS_PORTS)
                netns.port_forward(directory, spec.name, {ports[name]: NETNS_PORTS[name] for name in served})
                dep_state.update(netns=position["netns"], netns_address=position["address"])
            dep_state.update(
                pid=proc.pid,
                start_time=triton.process_start_time(proc.pid),
                log=str(log_path),
                model_repository=str(repo),
                backend_directory=str(backends),
                run_as=run_as_label if user else ("root" if os.geteuid() == 0 else f"uid {os.geteuid()}"),
                compute_ms=spec.compute_ms,
            )
            state["deployments"][spec.name] = dep_state
            _write_state(directory, state)  # record PIDs at once, so `down` finds them after a crash
        heads = ray.start_heads(directory, specs, state, net, files, EDGE_HOSTS, INTERNAL_HOST, lambda: _write_state(directory, state), log)
        nemo_parts = nemo.start_parts(specs, state, net, files, EDGE_HOSTS, INTERNAL_HOST, lambda: _write_state(directory, state), log)
        for spec, proc in zip(specs, procs):
            dep = state["deployments"][spec.name]
            took = triton.wait_ready(proc, dep["http"], Path(dep["log"]))
            triton.wait_listening(proc, dep["grpc"], Path(dep["log"]))
            log(f"lab: {spec.name} ready in {took:.1f}s")
        for spec, proc, token, log_path in heads:
            took = ray.wait(proc, f"http://{state['deployments'][spec.name]['ray']}", log_path, token)
            log(f"lab: {spec.name} Ray head ready in {took:.1f}s ({'token auth' if token else 'no authentication'})")
        nemo.ready_parts(directory, nemo_parts, state, EDGE_HOSTS, INTERNAL_HOST, lambda: _write_state(directory, state), log)
        _write_state(directory, state)
        _up_edge(directory, specs, state, certs, log)
        state["kube"] = for_lab.join(cluster, directory, log)
    except BaseException:
        if cluster is not None:
            cluster.cancel()
        down(directory, log=lambda *_: None)
        raise
    state["ready_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    _write_state(directory, state)
    return state


def _up_edge(directory: Path, specs, state: dict, certs: dict, log) -> None:
    """An nginx gateway and a NIM stand-in per deployment (nimwarden.lab.gateway); their ports into the state."""
    state["edge"] = {"deployments": {}}
    _write_state(directory, state)
    edge = gateway.up_edge(directory, [
        {"name": s.name, "hardened": s.hardened, "host": EDGE_HOSTS.get(s.name, INTERNAL_HOST),
         "upstream": f"http://{state['deployments'][s.name]['http']}", "nim": True, "internal_host": INTERNAL_HOST}
        for s in specs
    ], log=log, certs=certs)
    state["edge"] = edge
    for name, parts in edge["deployments"].items():
        g, n = parts["gateway"], parts["nimstub"]
        state["deployments"][name].update(
            gateway=f"{g['host']}:{g['https_port']}", gateway_http=f"{g['host']}:{g['http_port']}",
            gateway_token_file=g["token_file"] or "", nim=n["address"],
            **({"dcgm": parts["dcgm"]["address"]} if "dcgm" in parts else {}),
        )
    _write_state(directory, state)
    nemo_edge.up(directory, specs, state, certs, EDGE_HOSTS, INTERNAL_HOST, lambda: _write_state(directory, state), log)


def down(directory: Path, log=print) -> int:
    """Stop every lab process, also those of a crashed lab whose state file is gone. Returns how many.

    The parts are stopped side by side (each waits for its processes' grace period), then what is left."""
    from concurrent.futures import ThreadPoolExecutor

    state = read_state(directory) or {}
    deployments = state.get("deployments", {})
    tag = netns.tag_for(directory)
    temps = {dep.get("ray_temp_dir") for dep in deployments.values()}
    temps = sorted(t for t in temps | {str(ray.temp_dir(tag, s.name)) for s in DEFAULT_SPECS} if t)

    def deployment(name: str, dep: dict) -> int:
        n = nemo.stop(dep.get("nemo_parts") or {})
        if n:
            log(f"lab: stopped {name}'s NeMo Platform and Guardrails server ({n} processes)")
        if triton.stop_pid(int(dep["pid"]), dep.get("start_time")):
            n += 1
            log(f"lab: stopped {name} (pid {dep['pid']})")
        return n

    def heads() -> int:
        n = ray.stop(*temps)
        if n:
            log(f"lab: stopped the Ray heads ({n} processes)")
        return n

    with ThreadPoolExecutor(max_workers=4 + len(deployments)) as pool:
        jobs = [pool.submit(kube.down, directory, log=log),  # the API server, its node and etcd; also after a crash
                pool.submit(gateway.down_edge, state.get("edge") or {}), pool.submit(heads)]
        jobs += [pool.submit(deployment, name, dep) for name, dep in deployments.items()]
        stopped = sum(j.result() for j in jobs)
    files = runtime_dir(directory)
    for place in dict.fromkeys((directory, files)):
        for pid in triton.processes_under(place):
            if triton.stop_pid(pid, triton.process_start_time(pid), grace_s=3.0):
                stopped += 1
                log(f"lab: stopped leftover process {pid}")
    # Namespaces, veths, bridge, iptables chains and port-forwards; also after a crash.
    for ns in netns.down(directory):
        log(f"lab: removed network namespace {ns}")
    try:
        (directory / "state.json").unlink()
    except FileNotFoundError:
        pass
    if files != directory:
        shutil.rmtree(files, ignore_errors=True)
    return stopped


def status(directory: Path) -> dict:
    """Which deployments are running and ready."""
    import requests

    state = read_state(directory)
    if not state:
        return {"running": False, "dir": str(directory), "deployments": {}}
    out = {"running": True, "dir": str(directory), "deployments": {}}
    for name, dep in state["deployments"].items():
        alive = triton.process_start_time(int(dep["pid"])) == dep.get("start_time")
        ready = False
        if alive:
            try:
                ready = requests.get(f"http://{dep['http']}/v2/health/ready", timeout=2).status_code == 200
            except requests.RequestException:
                ready = False
        out["deployments"][name] = {"pid": dep["pid"], "alive": alive, "ready": ready, "http": dep["http"], "run_as": dep.get("run_as")}
    out["running"] = any(d["alive"] for d in out["deployments"].values())
    out["network"] = netns.status(directory)["namespaces"]
    out["kubernetes"] = kube.status(directory)
    return out


def wait_gone(pids: list[int], timeout_s: float = 10.0) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if all(triton.process_start_time(p) is None for p in pids):
            return True
        time.sleep(0.1)
    return False
