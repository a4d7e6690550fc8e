"""What one load level is (:class:`LoadSpec`), apart from the load generator: reading a profile's
``options.performance`` needs it, and must not import the generator's numpy and HTTP clients."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadSpec:
    """How to load one model. ``rate`` set means open loop, otherwise ``concurrency`` in flight."""

    concurrency: int = 1
    rate: float | None = None  # requests per second (open loop)
    arrival: str = "constant"  # or "poisson" (open loop only)
    max_in_flight: int = 32  # open loop: sender threads, i.e. the most requests outstanding
    window_s: float = 5.0
    max_windows: int = 10
    tolerance: float = 0.10
    warmup_s: float = 2.0
    min_windows: int = 3  # measure at least this many windows even when stable earlier
    seed: int = 0
    processes: int = 0  # closed loop: worker processes; 0 = auto (see worker_processes)

    def __post_init__(self) -> None:
        if self.rate is None and self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.arrival not in ("constant", "poisson"):
            raise ValueError("arrival must be constant or poisson")
        if self.processes < 0:
            raise ValueError("processes must be 0 (auto) or more")
        if self.window_s <= 0 or self.max_windows < 3 or self.min_windows < 3:
            raise ValueError("need a positive window and at least 3 windows")

    def worker_processes(self) -> int:
        """Auto: threads alone below concurrency 8, then one process per core (at most one per two workers).

        Measured on the 2-core project machine (benchmarks/perf_accuracy.py, two runs): at concurrency 4
        one process of threads did as well or better than two processes; at 16, two processes did as well
        or better. See workers.py for why processes at all."""
        if self.rate:
            return 1
        if self.processes:
            return min(self.processes, self.concurrency)
        if self.concurrency < 8:
            return 1
        return max(1, min(os.cpu_count() or 1, self.concurrency // 2))

    @property
    def mode(self) -> str:
        return f"rate {self.rate:g}/s {self.arrival}" if self.rate else f"concurrency {self.concurrency}"

    def as_dict(self) -> dict:
        return dict(self.__dict__)
