"""Run a real ``tritonserver`` from the ``nvidia-pytriton`` wheel on a machine without GPU or Docker.

The wheel ships tritonserver 2.51.0, its shared libraries and one Python
backend stub per Python version.  The stub embeds a libpython in isolated
mode (PYTHONPATH is ignored) and uses that interpreter's own numpy.  We
prefer Debian's libpython3.X with python3-numpy (numpy 1.x, world-readable
under /usr, so a non-root server user can load it); otherwise we fall back
to the running interpreter's libpython.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from nimwarden.errors import UsageError
from nimwarden.lab.procs import process_start_time, running

MODEL_TEMPLATE = Path(__file__).parent / "model"


@dataclass(frozen=True)
class TritonRuntime:
    binary: Path
    libs: Path
    python_version: str  # "3.11"
    python_libdir: Path
    stub_dir: Path
    backend_files: Path
    system_python: bool  # Debian's libpython (readable by any user) rather than the harness's

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LD_LIBRARY_PATH": f"{self.libs}:{self.python_libdir}",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
        }


def _multiarch_libdir() -> Path:
    arch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    return Path("/usr/lib") / arch


def find_runtime(site_packages: Path | None = None) -> TritonRuntime:
    """The tritonserver of the installed ``nvidia-pytriton`` wheel, or of the one installed in
    ``site_packages`` (another version in a virtualenv of its own, e.g. tests/older_triton.py)."""
    if site_packages is not None:
        root = Path(site_packages) / "pytriton" / "tritonserver"
    else:
        try:
            import pytriton  # noqa: F401  (only to locate the wheel)
        except ImportError:
            raise UsageError("the nvidia-pytriton wheel is not installed: run ./scripts/audit (or pip install 'nimwarden[lab]')") from None
        root = Path(sys.modules["pytriton"].__file__).parent / "tritonserver"
    binary = root / "bin" / "tritonserver"
    libs = root.parent.parent / "nvidia_pytriton.libs"
    backend_files = root / "backends" / "python"
    for p in (binary, libs, backend_files):
        if not p.exists():
            raise UsageError(f"nvidia-pytriton is incomplete: {p} is missing; reinstall nimwarden[lab]")
    # Debian's interpreter first: world-readable and numpy 1.x from python3-numpy.
    for version in ("3.13", "3.12", "3.11", "3.10"):
        lib = _multiarch_libdir() / f"libpython{version}.so.1.0"
        stub = root / "python_backend_stubs" / version
        if lib.exists() and stub.exists() and Path("/usr/lib/python3/dist-packages/numpy").exists():
            return TritonRuntime(binary, libs, version, lib.parent, stub, backend_files, True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version
    libdir = Path(sysconfig.get_config_var("LIBDIR") or "")
    if not stub.exists():
        raise UsageError(f"no Triton Python backend stub for Python {version} in {stub.parent}")
    if not (libdir / f"libpython{version}.so.1.0").exists() and not list(libdir.glob(f"libpython{version}*.so*")):
        raise UsageError(f"libpython{version}.so not found in {libdir}: install Debian's libpython{version} and python3-numpy")
    return TritonRuntime(binary, libs, version, libdir, stub, backend_files, False)


def reachable_runtime(runtime: TritonRuntime, dest: Path) -> TritonRuntime:
    """The runtime as a server dropped to another user can reach it.

    When the wheel sits behind a directory other users cannot traverse (a clone under
    ``mktemp -d``, a virtualenv under a 0700 home), its server tree is hard-linked (copied
    across filesystems) into ``dest``, keeping the layout the binary's RPATH expects
    (``$ORIGIN/../lib``, ``$ORIGIN/../../../nvidia_pytriton.libs``).
    """
    if world_traversable(runtime.binary) and world_traversable(runtime.libs):
        return runtime
    root = runtime.binary.parent.parent  # .../pytriton/tritonserver
    server = dest / "pytriton" / "tritonserver"
    pairs = [(root / "bin", server / "bin"), (root / "lib", server / "lib"), (runtime.libs, dest / runtime.libs.name)]
    for src, dst in pairs:
        if not src.exists():
            continue
        try:
            shutil.copytree(src, dst, copy_function=os.link, dirs_exist_ok=True)
        except (OSError, shutil.Error):  # another filesystem: hard links cannot cross it
            shutil.copytree(src, dst, dirs_exist_ok=True)
    for d in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        os.chmod(d, 0o755)
    return dataclasses.replace(runtime, binary=server / "bin" / runtime.binary.name, libs=dest / runtime.libs.name)


def prepare_backends(runtime: TritonRuntime, dest: Path) -> Path:
    """A backend directory with the Python backend and the stub for our interpreter next to it."""
    python_dir = dest / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for src in list(runtime.backend_files.iterdir()) + list(runtime.stub_dir.iterdir()):
        if src.is_file():
            shutil.copy2(src, python_dir / src.name)
    return dest


def write_model_repository(dest: Path, compute_ms: float, parameters: dict[str, str] | None = None,
                           compute_kind: str = "sleep", compute_iterations: int = 0) -> Path:
    """The lab's model repository under ``dest``, with its compute time: ``sleep`` (the request waits; CPU
    noise barely touches it) or ``cpu`` (real CPU work calibrated to the same milliseconds on an idle core:
    compute-bound, like inference). ``parameters`` are added to the model's config.pbtxt (the exposed
    deployment's mistake: a credential in a model parameter). ``compute_iterations`` > 0 fixes the CPU
    work's iteration count instead of calibrating it at start-up (one calibration shared by two servers)."""
    if compute_kind not in ("sleep", "cpu"):
        raise ValueError(f"compute_kind must be sleep or cpu, got {compute_kind!r}")
    repo = dest / "models"
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(MODEL_TEMPLATE, repo, ignore=shutil.ignore_patterns("__pycache__"))
    cfg = repo / "add" / "config.pbtxt"
    text = cfg.read_text().replace("@COMPUTE_MS@", f"{compute_ms:g}").replace("@COMPUTE_KIND@", compute_kind)
    text = text.replace("@COMPUTE_ITERATIONS@", str(int(compute_iterations)))
    for key, value in (parameters or {}).items():
        text += f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}\n'
    cfg.write_text(text)
    return repo


_handed_out: dict[int, None] = {}  # the ports handed out, oldest first (an ordered set)
SPARE = 500  # ports of the side never remembered: a long session always finds free ones there
EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _outside_ephemeral() -> range | None:
    """Ports outside the kernel's ephemeral range: above it (61000-65535 on Linux's default range, inside the range
    the lab's profile scans, 30000-65535), else below it from 10000 up; None where neither side holds 2,000 ports."""
    try:
        low, high = map(int, EPHEMERAL.read_text().split())
    except (OSError, ValueError):
        return None
    return next((side for side in (range(high + 1, 65536), range(10000, low)) if len(side) >= 2000), None)


def _socket(host: str) -> socket.socket:
    """A TCP socket of ``host``'s address family."""
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


def _bindable(port: int, host: str) -> bool:
    """Whether nothing holds ``port`` on any address of ``host``'s family (the servers bind the wildcard)."""
    with _socket(host) as s:
        try:
            s.bind(("::" if ":" in host else "0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing is bound to now, none of the ports this process handed out last (all but ``SPARE`` of the
    ports it picks from), and outside the kernel's ephemeral range. Between this pick and the server's bind, the
    kernel may hand the same port to another socket: given back as soon as its socket is closed (two of the four
    ports of one server, 10 of 20,000 four-port picks), or taken as the local port of any outgoing connection while
    it lies in the ephemeral range (CI: tritonserver "failed to start HTTP service: Socket '0.0.0.0:39409' already in
    use" during the load tests). Ports outside that range are never taken that way; where there are none to pick
    from, the kernel picks."""
    import random

    side = _outside_ephemeral()
    port = 0
    if side is not None:
        fresh = [p for p in side if p not in _handed_out]
        port = next((p for p in random.sample(fresh, min(200, len(fresh))) if _bindable(p, host)), 0)
    for _ in range(0 if port else 100):  # no side to pick from (or nothing free there): the kernel picks
        with _socket(host) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            break
    _handed_out[port] = None
    # A long test session forgets its oldest picks first, and remembers fewer than the side holds: once it had
    # handed out the whole side (4,535 ports on Linux's default range), every pick fell back to the kernel, inside
    # the ephemeral range (CI: a pick of 56677, in the full suite's unit tests after its lab tests)
    limit = len(side) - SPARE if side is not None else 20_000
    while len(_handed_out) > limit:
        del _handed_out[next(iter(_handed_out))]
    return port


def world_traversable(path: Path) -> bool:
    """True when a user with no special rights can reach ``path`` (every parent has o+x)."""
    path = path.resolve()
    for parent in [path, *path.parents]:
        try:
            if parent.is_dir() and not os.stat(parent).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def launch(
    runtime: TritonRuntime,
    args: list[str],
    log_path: Path,
    run_as: tuple[int, int] | None = None,
    cwd: Path | None = None,
    extra_env: dict[str, str] | None = None,
    netns_name: str | None = None,
) -> subprocess.Popen:
    """Start tritonserver in its own session so that it outlives the CLI that started it.

    With ``netns_name`` it runs inside that lab network namespace: ``ip netns exec``
    enters it as root, then ``setpriv`` drops to ``run_as`` (Popen's user= would
    drop before ``ip`` could enter the namespace).
    """
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    kwargs = {}
    argv = [str(runtime.binary), *args]
    if netns_name is not None:
        from nimwarden.lab import netns

        prefix = netns.exec_prefix(netns_name)
        if run_as is not None:
            prefix += ["setpriv", f"--reuid={run_as[0]}", f"--regid={run_as[1]}", "--clear-groups", "--"]
        argv = [*prefix, *argv]
    elif run_as is not None:
        kwargs = {"user": run_as[0], "group": run_as[1], "extra_groups": []}
    try:
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**runtime.env(), **(extra_env or {})},
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
            **kwargs,
        )
    finally:
        log.close()


def wait_ready(proc: subprocess.Popen, http_address: str, log_path: Path, deadline_s: float = 90.0) -> float:
    """Poll /v2/health/ready until 200; raise UsageError with the log tail if it dies or times out."""
    t0 = time.monotonic()
    url = f"http://{http_address}/v2/health/ready"
    while time.monotonic() - t0 < deadline_s:
        if proc.poll() is not None:
            raise UsageError(f"tritonserver exited with status {proc.returncode} during start-up; last log lines:\n{tail(log_path)}")
        try:
            if requests.get(url, timeout=1.0).status_code == 200:
                return time.monotonic() - t0
        except requests.RequestException:
            pass  # not listening yet
        time.sleep(0.2)
    raise UsageError(f"tritonserver did not become ready within {deadline_s:.0f}s ({url}); last log lines:\n{tail(log_path)}")


def wait_listening(proc: subprocess.Popen, address: str, log_path: Path, deadline_s: float = 30.0) -> None:
    """Wait until ``host:port`` accepts a TCP connection (the server's gRPC port, once HTTP says ready):
    a lab that hands out a port nothing listens on fails here, with the log tail, not in a later test."""
    host, _, port = address.rpartition(":")
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        if proc.poll() is not None:
            raise UsageError(f"tritonserver exited with status {proc.returncode} after it was ready; last log lines:\n{tail(log_path)}")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return
        except OSError:
            time.sleep(0.1)
    raise UsageError(f"tritonserver is ready over HTTP but nothing listens on {address} after {deadline_s:.0f}s; "
                     f"last log lines:\n{tail(log_path)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_pid(pid: int, start_time: int | None, grace_s: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace_s``; only if the PID still names the same process."""
    if start_time is not None and process_start_time(pid) != start_time:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    t0 = time.monotonic()
    while time.monotonic() - t0 < grace_s:
        if not running(pid):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return True


def processes_under(directory: Path) -> list[int]:
    """PIDs whose command line names ``directory``: leftovers of a crashed lab."""
    needle = str(directory.resolve()).encode()
    pids = []
    ancestors = _ancestors(os.getpid())  # never the caller's own wrappers (timeout, a shell, pytest)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and int(entry.name) not in ancestors:
            pids.append(int(entry.name))
    return pids


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return seen
