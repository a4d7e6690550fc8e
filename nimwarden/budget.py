"""A request budget for one audit: at most N probe calls, at most R per second.

Every probe asks the target's scope guard before it sends anything (``Target.guard``), once per
HTTP request and gRPC call of the Triton probes, once per scan, handshake or batch of the
others. The budget sits behind that guard, so it covers every probe with no wiring of its own:
past the cap the guard refuses (the probe's result is ``error``, never ``pass``); under a rate,
it paces the caller instead of refusing. Configured in the profile:

    options:
      request_budget: {max_requests: 2000, max_rate_per_s: 50}

Per process: under pytest-xdist each worker holds its own budget.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from nimwarden.errors import OutOfScope


class BudgetExhausted(OutOfScope):
    """The audit already sent as many probe calls as the profile allows (refused like an out-of-scope host)."""


class RequestBudget:
    def __init__(self, max_requests: int | None = None, max_rate_per_s: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.max_requests = max_requests
        self.interval = 1.0 / max_rate_per_s if max_rate_per_s else 0.0
        self.used = 0
        self.by_host: Counter[str] = Counter()
        self._next = 0.0
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()

    def take(self, host: str) -> None:
        """Account one probe call to ``host``; refuse past the cap, wait out the rate."""
        with self._lock:
            if self.max_requests is not None and self.used >= self.max_requests:
                raise BudgetExhausted(f"request budget exhausted: {self.used} probe calls already sent "
                                      f"(options.request_budget.max_requests = {self.max_requests})")
            self.used += 1
            self.by_host[host] += 1
            now = self._clock()
            wait = max(0.0, self._next - now)
            self._next = max(now, self._next) + self.interval
        if wait:
            self._sleep(wait)


def budget_from_options(options: Mapping[str, Any], err: Callable[[str, str], Exception]) -> RequestBudget | None:
    """``options.request_budget`` of a profile, validated; ``err(field, problem)`` builds the error to raise."""
    raw = options.get("request_budget")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise err("options.request_budget", "must be a mapping with max_requests and/or max_rate_per_s")
    unknown = sorted(str(k) for k in raw if k not in ("max_requests", "max_rate_per_s"))
    if unknown:
        raise err(f"options.request_budget.{unknown[0]}", "unknown key (allowed: max_requests, max_rate_per_s)")
    cap, rate = raw.get("max_requests"), raw.get("max_rate_per_s")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0):
        raise err("options.request_budget.max_requests", "must be a positive whole number")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0 or rate == float("inf")):
        raise err("options.request_budget.max_rate_per_s", "must be a positive number")
    return RequestBudget(cap, float(rate) if rate is not None else None)
