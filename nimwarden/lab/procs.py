"""What the lab asks of its own processes through /proc: when one started (against PID reuse) and whether it still runs.

Below every lab module (netns, triton, ray, the control plane), so none of them imports another for it."""

from __future__ import annotations

from pathlib import Path


def process_start_time(pid: int) -> int | None:
    """Kernel start time of a process (clock ticks since boot): guards against PID reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def running(pid: int) -> bool:
    """Present and not a zombie: an exited process stays in /proc until its parent (or init) reaps it, which
    on some machines' init takes seconds."""
    return process_start_time(pid) is not None and not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
