"""The performance settings of one deployment: ``options.performance`` in the target profile.

Declared once as ``PerformanceSection`` (the profile's schema: loading and ``nimwarden schema`` use it),
read into a frozen object; every field has a default so a profile needs none of them.

    options:
      performance:
        models: [add]               # default: the deployment's models
        protocol: grpc              # grpc | http (Triton kinds); nim kinds stream over http
        concurrency: [1, 4]         # closed-loop levels; or rate: 200 (+ arrival: poisson)
        window_s: 5                 # 10 for nim kinds, as perf_analyzer does for LLMs
        max_windows: 10
        warmup_s: 2
        tolerance: 0.10             # stability spread and the change the detector must catch
        shapes: {add: {INPUT0: [4]}}  # per model, for variable dimensions
        credential: gateway         # a credential (header) sent with every inference request
        processes: 0                # worker processes per level; 0 = auto (one per core from concurrency 8)
        engine: h2                  # gRPC client: h2 (lean, default) or grpcio
        baseline_dir: baselines     # default: <--reports-dir>/baselines; relative to the profile's directory
        under_load: {rate: 50, concurrency: 2, latency_tolerance: 1.0}
        llm: {model: meta/llama3, max_tokens: 64, prompt: "..."}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from nimwarden.errors import ConfigError
from nimwarden.families.performance.spec import LoadSpec
from nimwarden.schema import ProfilePath, Section, Text, problem, validate_section


def _between(lo: float, hi: float, integer: bool = False) -> Any:
    return Annotated[int if integer else float, Field(ge=lo, le=hi)]


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


Levels = Annotated[list[_between(1, 1024, True)], Field(min_length=1), BeforeValidator(_listed),
                   WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1, "maximum": 1024},
                                             {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 1024}, "minItems": 1}],
                                   "description": "closed-loop levels: requests in flight (default [1])"})]


class UnderLoadSection(Section):
    rate: _between(0.1, 1e5) | None = 50.0  # null: closed loop at ``concurrency``
    concurrency: _between(1, 64, True) = 2
    latency_tolerance: _between(0, 100) = 1.0  # p50 may double while nmap and TLS scans share the machine
    reference_s: _between(0.1, 60) = 3.0


class LlmSection(Section):
    model: Text = None
    max_tokens: _between(1, 100_000, True) = 64
    prompt: Text = None


class PerformanceSection(Section):
    """``deployments[].options.performance``."""

    models: list[Text] = Field(None, description="default: the deployment's models")
    protocol: Literal["grpc", "http"] = Field(None, description="default grpc (Triton kinds); nim kinds stream over http")
    concurrency: Levels = None
    rate: _between(0.1, 1e6) = Field(None, description="open loop: requests per second (instead of concurrency)")
    arrival: Literal["constant", "poisson"] = "constant"
    window_s: _between(0.1, 120) = Field(None, description="default 5 s, 10 s for nim kinds as perf_analyzer does for LLMs")
    max_windows: _between(3, 100, True) = 10
    warmup_s: _between(0, 120) = 2.0
    tolerance: _between(0.01, 0.9) = 0.10
    shapes: dict[str, dict[str, list[Annotated[int, Field(ge=1)]]]] = Field({}, description="model -> input -> shape")
    credential: Text = Field(None, description="a credential of the deployment (its header) sent with every request")
    baseline_dir: ProfilePath = Field(None, description="default <--reports-dir>/baselines")
    under_load: UnderLoadSection | None = None
    llm: LlmSection | None = None
    engine: Literal["h2", "grpcio", "http.client"] = None
    processes: _between(0, 64, True) = Field(0, description="worker processes per level; 0: one per core from concurrency 8")

    @model_validator(mode="after")
    def _closed_loop_only(self) -> PerformanceSection:
        if self.rate is not None and "processes" in self.model_fields_set:
            raise problem("applies to concurrency levels only, not to rate", ("processes",))
        return self


@dataclass(frozen=True)
class UnderLoadSettings:
    rate: float | None = 50.0
    concurrency: int = 2
    latency_tolerance: float = 1.0  # p50 may double while nmap and TLS scans share the machine
    reference_s: float = 3.0


@dataclass(frozen=True)
class PerfSettings:
    models: tuple[str, ...]
    protocol: str = "grpc"
    levels: tuple[LoadSpec, ...] = ()
    tolerance: float = 0.10
    shapes: Mapping[str, Mapping[str, list[int]]] = field(default_factory=dict)
    credential: str | None = None
    baseline_dir: Path | None = None  # None: beside the run directories, <--reports-dir>/baselines
    under_load: UnderLoadSettings = UnderLoadSettings()
    llm: Mapping[str, Any] = field(default_factory=dict)
    engine: str | None = None


def parse(deployment, file: str | Path) -> PerfSettings:
    """Settings for ``deployment`` (a target.Deployment) from its ``options.performance``."""
    file = str(file)
    base = f"deployments[{deployment.name}].options.performance"
    s = validate_section(PerformanceSection, (deployment.options or {}).get("performance") or {}, file, base)
    nim = deployment.kind == "nim"
    common = dict(window_s=float(s.window_s if s.window_s is not None else (10.0 if nim else 5.0)),
                  max_windows=s.max_windows, warmup_s=float(s.warmup_s), tolerance=float(s.tolerance))
    if s.rate is not None:
        levels = (LoadSpec(rate=float(s.rate), arrival=s.arrival, **common),)
    else:
        levels = tuple(LoadSpec(concurrency=c, processes=s.processes, **common) for c in (s.concurrency or [1]))
    if s.credential is not None and s.credential not in deployment.credentials:
        raise ConfigError(file, f"{base}.credential", f"no credential named {s.credential!r} in this deployment")
    ul = s.under_load or UnderLoadSection()
    baseline_dir = None
    if s.baseline_dir is not None:  # relative to the profile's directory, like every path in a profile
        path = Path(s.baseline_dir).expanduser()
        baseline_dir = path if path.is_absolute() else (Path(file).resolve().parent / path).resolve()
    return PerfSettings(models=tuple(s.models if s.models is not None else deployment.models),
                        protocol=s.protocol or ("http" if nim else "grpc"), levels=levels, tolerance=float(s.tolerance),
                        shapes=s.shapes, credential=s.credential, baseline_dir=baseline_dir,
                        under_load=UnderLoadSettings(rate=None if ul.rate is None else float(ul.rate), concurrency=ul.concurrency,
                                                     latency_tolerance=float(ul.latency_tolerance), reference_s=float(ul.reference_s)),
                        llm=s.llm.model_dump(exclude_unset=True) if s.llm else {}, engine=s.engine)
