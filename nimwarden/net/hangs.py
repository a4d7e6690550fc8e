"""Stop asking an endpoint that hangs.

A server that accepts connections and never answers costs every request the whole deadline
(``connect_s + read_s``). One Triton deployment's probes ask its endpoints about forty questions:
against a hung server, with the default timeouts, the audit of that one deployment took 190 s,
most of it waiting for answers that were never coming. After ``give_up_after`` consecutive requests
to one ``host:port`` ended without an answer in time, the next ones are not sent: each is at once an
incomplete attempt (an ``error`` result, never a pass) whose reason says so and quotes the first
timeout. Every ``RETRY_S`` one request is let through again, and any answer closes the breaker.

Only hangs count: a refused connection, a reset or a failed TLS handshake is an answer of a kind (it
costs nothing to wait for) and clears the count, as an HTTP answer of any status does. Per process:
pytest-xdist workers keep their own. ``give_up_after`` comes from the profile's
``timeouts.give_up_after`` (3; 0 turns this off) through :class:`nimwarden.net.http.Limits`; the
performance family's measurements, whose slow answers are the figures, do not use it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

RETRY_S = 60.0


@dataclass
class _Hung:
    misses: int = 0
    first: str = ""
    opened_at: float | None = None


_lock = threading.Lock()
_endpoints: dict[tuple[str, int], _Hung] = {}


def not_sent(host: str, port: int, give_up_after: int, clock: Callable[[], float] = time.monotonic) -> str | None:
    """Why a request to ``host:port`` is not sent (the endpoint hangs), or None to send it."""
    if give_up_after <= 0:
        return None
    with _lock:
        hung = _endpoints.get((host, port))
        if hung is None or hung.opened_at is None:
            return None
        now = clock()
        if now - hung.opened_at >= RETRY_S:
            hung.opened_at = now  # this one goes through; the others wait another RETRY_S
            return None
        return (f"not sent: {host}:{port} gave no answer in time to the last {hung.misses} request(s) (the first: "
                f"{hung.first}); nimwarden stops asking an endpoint that hangs (timeouts.give_up_after: {give_up_after}; "
                f"it asks again after {RETRY_S:g} s)")


def record(host: str, port: int, give_up_after: int, hung: bool, reason: str = "",
           clock: Callable[[], float] = time.monotonic) -> None:
    """How a request to ``host:port`` ended: ``hung`` (no answer in time) or anything else."""
    if give_up_after <= 0:
        return
    with _lock:
        if not hung:
            _endpoints.pop((host, port), None)
            return
        state = _endpoints.setdefault((host, port), _Hung())
        state.misses += 1
        state.first = state.first or reason
        if state.misses >= give_up_after:
            state.opened_at = clock()


def forget() -> None:
    """Forget every endpoint (a new audit in the same process: the tests)."""
    with _lock:
        _endpoints.clear()
