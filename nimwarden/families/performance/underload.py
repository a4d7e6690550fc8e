"""Audit under load: a steady background load while the other suites probe the same server.

``BackgroundLoad.start()`` runs closed-loop workers (the load generator's
senders) and measures a short quiet reference; the suites run; ``stop()``
returns what the load saw: every request and failure during the audit, the
latency against the reference, and the server's failure counter before and
after. A probe that makes an inference fail is a finding against the
harness itself, so nothing here is sampled or smoothed: one failure shows.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from nimwarden.families.performance import metrics as server_metrics
from nimwarden.families.performance.inputs import Payload
from nimwarden.families.performance.stats import LatencySummary, summarize_latency
from nimwarden.families.performance.transport import Endpoint, Transport
from nimwarden.families.performance.workers import Recorder, Schedule, closed_loop, open_loop


@dataclass(frozen=True)
class UnderLoadReport:
    endpoint: str
    model: str
    load: str
    duration_s: float
    requests: int
    failed: int
    error_samples: tuple[str, ...]
    reference: LatencySummary | None  # the quiet period before the audit
    during: LatencySummary | None  # the audit itself
    failures_before: float | None  # server counter; None when no metrics endpoint is configured
    failures_after: float | None
    metrics_note: str

    @property
    def server_failures(self) -> float | None:
        if self.failures_before is None or self.failures_after is None:
            return None
        return self.failures_after - self.failures_before

    def evidence(self) -> dict:
        return {
            "endpoint": self.endpoint, "model": self.model, "load": self.load,
            "duration_s": round(self.duration_s, 1), "requests": self.requests, "failed_requests": self.failed,
            "error_samples": list(self.error_samples),
            "reference_latency_us": self.reference.as_dict() if self.reference else None,
            "audit_latency_us": self.during.as_dict() if self.during else None,
            "server_failure_counter": {"before": self.failures_before, "after": self.failures_after},
            "metrics_note": self.metrics_note,
        }


class BackgroundLoad:
    """``rate`` set (the default): a steady open-loop rate with ``concurrency`` senders, light enough to
    leave the audit its CPU; ``rate=None``: closed loop at ``concurrency``, as hard as the server goes."""

    def __init__(self, endpoint: Endpoint, payload: Payload, concurrency: int = 2, rate: float | None = 50.0,
                 metrics_url: str | None = None, metrics_headers: dict[str, str] | None = None,
                 reference_s: float = 3.0, engine: str | None = None):
        self.endpoint, self.payload, self.concurrency, self.rate = endpoint, payload, concurrency, rate
        self.metrics_url, self.metrics_headers, self.reference_s = metrics_url, metrics_headers, reference_s
        self._transport = Transport(endpoint, payload, engine)
        self._stop = threading.Event()
        self._recs = [Recorder() for _ in range(concurrency)]
        self._threads: list[threading.Thread] = []
        self._closers: list = []
        self._failures_before: float | None = None
        self._note = "no metrics endpoint configured: the server's failure counter was not checked"
        self._ref_marks: list[int] = []
        self._t0 = 0.0

    def _failures(self) -> float | None:
        if not self.metrics_url:
            return None
        return server_metrics.failure_total(self.metrics_url, headers=self.metrics_headers)

    def start(self) -> BackgroundLoad:
        """Raises when the server cannot serve one request. Metrics unreachable now are noted, not fatal;
        metrics reachable now but not after the audit make the report incomplete (see the judge)."""
        self._transport.preflight()
        try:
            self._failures_before = self._failures()
            if self.metrics_url:
                self._note = f"failure counter from {self.metrics_url}"
        except Exception as exc:  # noqa: BLE001 - unreachable metrics are what a hardened server looks like
            self._note = (f"metrics endpoint {self.metrics_url} not reachable from the probe position "
                          f"({type(exc).__name__}): the server's failure counter was not checked")
        schedule = Schedule(self.rate, "constant", 0, time.perf_counter_ns()) if self.rate else None
        for i, rec in enumerate(self._recs):
            send, close = self._transport.sender()
            self._closers.append(close)
            args = (send, rec, self._stop, schedule) if schedule else (send, rec, self._stop)
            t = threading.Thread(target=open_loop if schedule else closed_loop, args=args,
                                 name=f"nimwarden-underload-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        self._t0 = time.monotonic()
        time.sleep(self.reference_s)
        self._ref_marks = [len(r.ends) for r in self._recs]
        return self

    def stop(self) -> UnderLoadReport:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.endpoint.timeout_s + 1)
        for close in self._closers:
            close()
        duration = time.monotonic() - self._t0
        note = self._note
        try:
            after = self._failures()
        except Exception as exc:  # noqa: BLE001 - reported; the judge turns a missing counter into an error
            after, note = None, f"metrics unreachable after the audit: {type(exc).__name__}: {str(exc)[:160]}"
        ref, during, failed, errors = [], [], 0, set()
        for rec, mark in zip(self._recs, self._ref_marks or [0] * len(self._recs)):
            failed_set = set(rec.failed)
            failed += len(failed_set)
            errors.update(rec.errors)
            lat = (np.asarray(rec.ends, dtype=np.int64) - np.asarray(rec.starts, dtype=np.int64)) / 1000.0
            ok = np.ones(len(lat), dtype=bool)
            if failed_set:
                ok[list(failed_set)] = False
            ref.append(lat[:mark][ok[:mark]])
            during.append(lat[mark:][ok[mark:]])
        ref_all, during_all = np.concatenate(ref), np.concatenate(during)
        return UnderLoadReport(
            endpoint=self.endpoint.describe(), model=self.payload.model,
            load=f"rate {self.rate:g}/s" if self.rate else f"concurrency {self.concurrency}",
            duration_s=duration, requests=sum(len(r.ends) for r in self._recs), failed=failed,
            error_samples=tuple(sorted(errors))[:5],
            reference=summarize_latency(ref_all) if len(ref_all) else None,
            during=summarize_latency(during_all) if len(during_all) else None,
            failures_before=self._failures_before, failures_after=after, metrics_note=note,
        )
