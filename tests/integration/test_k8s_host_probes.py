"""Host probes against real processes and real directories on this machine (testinfra local://).

The "tritonserver" here is a real process whose executable is a symlink named tritonserver
(to the Python interpreter), so /proc shows comm=tritonserver and the command line we choose;
the probes read the real /proc entries and stat real directories.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from nimwarden.families.host import judge, probe
from nimwarden.outcome import Status

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as another user")


# An interpreter another user can execute (the harness's own may live under /root).
INTERPRETER = next((p for p in ("/usr/bin/python3", sys.executable) if os.access(p, os.X_OK)), sys.executable)


@pytest.fixture
def tmp_path():
    """A world-traversable temporary directory (pytest's own is 0700 under /tmp/pytest-of-root)."""
    path = Path(tempfile.mkdtemp(prefix="nimwarden-host-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake_server(tmp_path):
    started = []

    def start(*flags, env=None, user=None):
        exe = tmp_path / "bin" / "tritonserver"
        exe.parent.mkdir(exist_ok=True)
        os.chmod(exe.parent, 0o755)
        if not exe.exists():
            exe.symlink_to(os.path.realpath(INTERPRETER))
        ids = {"user": user, "group": user, "extra_groups": []} if user is not None else {}
        proc = subprocess.Popen([str(exe), "-c", "import time; time.sleep(60)", *flags], env=env or {"PATH": "/usr/bin:/bin"},
                                cwd=str(tmp_path), **ids)
        started.append(proc)
        for _ in range(50):
            if open(f"/proc/{proc.pid}/comm").read().strip() == "tritonserver":
                break
            time.sleep(0.02)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def host():
    return probe.get_host("local://")


def test_finds_server_by_http_port(host, fake_server):
    a = fake_server("--http-port=18123")
    b = fake_server("--http-port", "18124")
    assert a.pid in probe.find_tritonserver_pids(host)
    assert probe.find_tritonserver_pids(host, http_port=18124) == [b.pid]


@needs_root
def test_process_user(host, fake_server):
    root = fake_server()
    nobody = fake_server(user=NOBODY)
    assert judge.process_user(probe.probe_process(host, root.pid)).status == Status.FAIL
    out = judge.process_user(probe.probe_process(host, nobody.pid))
    assert out.status == Status.PASS and out.evidence["uid"] == NOBODY


def test_process_probe_of_a_missing_pid_is_an_error(host):
    out = judge.process_user(probe.probe_process(host, 2 ** 22 + 12345))
    assert out.status == Status.ERROR


@needs_root
def test_directories_writable_by_the_server_user(host, fake_server, tmp_path):
    safe = tmp_path / "backends"
    (safe / "python").mkdir(parents=True)
    (safe / "python" / "libtriton_python.so").write_text("x")
    os.chmod(tmp_path, 0o755)
    models = tmp_path / "models"
    (models / "add" / "1").mkdir(parents=True)
    (models / "add" / "1" / "model.py").write_text("x")
    os.chmod(models / "add" / "1", 0o777)  # world-writable version directory: code can be swapped
    server = fake_server(f"--backend-directory={safe}", f"--repoagent-directory={safe}", f"--cache-directory={safe}",
                         "--model-repository=models", user=NOBODY)
    info = probe.process_info(host, server.pid)
    assert probe.server_directories(info)["model-repository"] == [str(models)]
    code = judge.not_writable(probe.probe_directories(host, info, ("backend-directory", "repoagent-directory", "cache-directory")),
                              "backend/repoagent/cache directories")
    assert code.status == Status.PASS, code.reason
    repo = judge.not_writable(probe.probe_directories(host, info, ("model-repository",)), "model repository")
    assert repo.status == Status.FAIL
    assert "world-writable" in repo.reason and str(models / "add" / "1") in repo.reason


@needs_root
def test_writable_parent_lets_the_tree_be_replaced(host, fake_server, tmp_path):
    parent = tmp_path / "opt"
    (parent / "backends").mkdir(parents=True)
    os.chmod(tmp_path, 0o755)
    os.chmod(parent, 0o777)
    server = fake_server(f"--backend-directory={parent / 'backends'}", user=NOBODY)
    info = probe.process_info(host, server.pid)
    out = judge.not_writable(probe.probe_directories(host, info, ("backend-directory",)), "backend directory")
    assert out.status == Status.FAIL and "parent" in out.reason


def test_root_server_can_write_everything(host, fake_server, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the fake server runs as the current user")
    server = fake_server(f"--backend-directory={tmp_path}")
    info = probe.process_info(host, server.pid)
    out = judge.not_writable(probe.probe_directories(host, info, ("backend-directory",)), "backend directory")
    assert out.status == Status.FAIL and "user is root" in out.reason


def test_remote_model_repository_is_an_error_not_a_pass(host, fake_server):
    server = fake_server("--model-repository=s3://bucket/models")
    info = probe.process_info(host, server.pid)
    assert judge.not_writable(probe.probe_directories(host, info, ("model-repository",)), "model repository").status == Status.ERROR


def test_secret_in_process_environment_is_reported_redacted(host, fake_server):
    canary = "nvapi-CANARY" + "7" * 40
    dirty = fake_server(env={"PATH": "/usr/bin:/bin", "NGC_API_KEY": canary, "LOG_VERBOSE": "1"})
    clean = fake_server(env={"PATH": "/usr/bin:/bin", "LOG_VERBOSE": "1"})
    out = judge.environment_secrets(probe.probe_environment(host, dirty.pid))
    assert out.status == Status.FAIL
    assert canary not in repr(out) and "NGC_API_KEY=nv" in out.reason
    assert judge.environment_secrets(probe.probe_environment(host, clean.pid)).status == Status.PASS
    assert judge.environment_secrets(probe.probe_environment(host, 2 ** 22 + 12345)).status == Status.ERROR
