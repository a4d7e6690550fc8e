"""Inference performance: a load generator as accurate as perf_analyzer, baselines and a regression detector.

- ``loadgen``   closed-loop (concurrency) and open-loop (constant or Poisson rate) measurement in
                perf_analyzer's time windows, with its stability rule (``windows``) and server-side
                figures from Triton's metrics (``metrics``)
- ``workers``   the load workers: threads, or processes of threads
- ``transport`` how one request goes on the wire; ``h2grpc`` the lean gRPC client used by default
- ``inputs``    request tensors from model metadata (``model_info``) or the profile
- ``llm``       streamed chat completions: TTFT, inter-token latency, output tokens/s
- ``baseline``  baselines as data with their environment fingerprint
- ``detector``  bootstrap intervals of the throughput and p99 ratios, and the regression decision
- ``underload`` a steady background load during the audit; ``session`` drives it for a pytest run
- ``settings``  ``options.performance`` of a deployment; ``probe`` the suite's cached measurements
- ``judge``     PERF-STABLE / -REGRESSION / -UNDERLOAD / -LLM, and when a baseline is recorded
"""

from __future__ import annotations

from nimwarden.families import Applicability, Family, for_controls, probes_something
from nimwarden.families.performance.settings import PerformanceSection


def _under_load_requested(ctx: Applicability) -> str | None:
    if not ctx.run.get("under_load"):
        return "audit under load was not requested (nimwarden audit --under-load)"
    return None


def _check(target) -> None:
    from nimwarden.families.performance.settings import parse

    for d in target.deployments:
        parse(d, target.path)  # the credential it names must be one of the deployment's (ConfigError)


FAMILY = Family(
    name="performance",
    schema={"deployments[].options.performance": PerformanceSection},
    options=("deployments[].options.performance",),
    check=_check,
    applies={**for_controls("PERF-LLM-001 PERF-REGRESSION-001 PERF-STABLE-001", probes_something),
             "PERF-UNDERLOAD-001": _under_load_requested},
)
