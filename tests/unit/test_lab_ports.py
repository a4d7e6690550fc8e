"""The lab's port picks and its readiness check of the gRPC port (no server needed)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from nimwarden.errors import UsageError
from nimwarden.lab import triton


def test_free_port_never_hands_out_a_port_twice():
    # the kernel gives a closed port again, and random picks repeat: 4,000 of them must still be distinct
    picks = [triton.free_port() for _ in range(4000)]
    assert len(set(picks)) == len(picks)


def test_free_port_lies_outside_the_kernels_ephemeral_range(tmp_path, monkeypatch):
    """An outgoing connection takes its local port from the ephemeral range: a lab port picked there can be taken
    between the pick and the server's bind (CI: "Socket '0.0.0.0:39409' already in use"). Where the range leaves no
    side of 2,000 ports, the kernel picks as before."""
    low, high = map(int, triton.EPHEMERAL.read_text().split())
    picks = [triton.free_port() for _ in range(200)]
    assert all(p > high or 10000 <= p < low for p in picks), sorted(p for p in picks if low <= p <= high)
    narrow = tmp_path / "ip_local_port_range"
    narrow.write_text("1024\t64000\n")
    monkeypatch.setattr(triton, "EPHEMERAL", narrow)
    assert triton._outside_ephemeral() is None
    assert 1 <= triton.free_port() <= 65535


def test_a_long_session_still_picks_outside_the_ephemeral_range(tmp_path, monkeypatch):
    """CI, the full suite: after its lab tests had handed out the side's ports, every pick fell back to the kernel
    and landed inside the ephemeral range (56677). Three times the side's ports are picked here: each lies outside
    the range, and the last picks are distinct among themselves (all but SPARE of the side are remembered)."""
    wide = tmp_path / "ip_local_port_range"
    wide.write_text("10000\t63000\n")  # the ports above it: 63001-65535, 2,535 of them
    monkeypatch.setattr(triton, "EPHEMERAL", wide)
    monkeypatch.setattr(triton, "_handed_out", {})
    side = triton._outside_ephemeral()
    picks = [triton.free_port() for _ in range(3 * len(side))]
    inside = [p for p in picks if p <= 63000]
    assert not inside, f"{len(inside)} of {len(picks)} picks inside the range, first {inside[:5]}"
    last = picks[-(len(side) - triton.SPARE):]
    assert len(set(last)) == len(last)


def test_wait_listening_returns_once_the_port_accepts(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            triton.wait_listening(proc, f"127.0.0.1:{server.getsockname()[1]}", tmp_path / "log", deadline_s=5)
        with pytest.raises(UsageError, match="nothing listens on 127.0.0.1:"):
            triton.wait_listening(proc, f"127.0.0.1:{triton.free_port()}", tmp_path / "log", deadline_s=0.5)
    finally:
        proc.kill()
        proc.wait()


def test_wait_listening_says_when_the_server_died_after_it_was_ready(tmp_path):
    log = tmp_path / "tritonserver.log"
    log.write_text("E1206 failed to start Metrics service: address already in use\n")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    proc.wait()
    with pytest.raises(UsageError, match=r"exited with status 1 after it was ready(.|\n)*address already in use"):
        triton.wait_listening(proc, f"127.0.0.1:{triton.free_port()}", log, deadline_s=5)
