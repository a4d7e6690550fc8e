"""The performance settings of one deployment: ``options.performance`` in the target profile.

Validated once, with ``file: field: problem`` errors (exit 2), into a
frozen object; every field has a default so a profile needs none of them.

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
from typing import Any

from nimwarden.errors import ConfigError
from nimwarden.families.performance.spec import LoadSpec

KEYS = ("models", "protocol", "concurrency", "rate", "arrival", "window_s", "max_windows", "warmup_s", "tolerance",
        "shapes", "credential", "baseline_dir", "under_load", "llm", "engine", "processes")


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


def _number(file: str, where: str, value: Any, lo: float, hi: float, integer: bool = False) -> float:
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    if not ok or not lo <= value <= hi:
        kind = "an integer" if integer else "a number"
        raise ConfigError(file, where, f"must be {kind} between {lo:g} and {hi:g}, got {value!r}")
    return value


def _baseline_dir(file: str, where: str, value: Any) -> Path | None:
    """``baseline_dir`` as written, relative to the profile's directory like every path in a profile."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(file, where, "must be a directory path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (Path(file).resolve().parent / path).resolve()


def parse(deployment, file: str | Path) -> PerfSettings:
    """Settings for ``deployment`` (a target.Deployment) from its ``options.performance``."""
    file = str(file)
    base = f"deployments[{deployment.name}].options.performance"
    raw = (deployment.options or {}).get("performance", {}) or {}
    if not isinstance(raw, dict):
        raise ConfigError(file, base, "must be a mapping")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(file, f"{base}.{unknown[0]}", f"unknown setting (known: {', '.join(KEYS)})")
    models = raw.get("models", list(deployment.models))
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise ConfigError(file, f"{base}.models", "must be a list of model names")
    default_protocol = "http" if deployment.kind == "nim" else "grpc"
    protocol = raw.get("protocol", default_protocol)
    if protocol not in ("grpc", "http"):
        raise ConfigError(file, f"{base}.protocol", "must be grpc or http")
    tolerance = _number(file, f"{base}.tolerance", raw.get("tolerance", 0.10), 0.01, 0.9)
    common = dict(
        window_s=_number(file, f"{base}.window_s", raw.get("window_s", 10.0 if deployment.kind == "nim" else 5.0), 0.1, 120),
        max_windows=int(_number(file, f"{base}.max_windows", raw.get("max_windows", 10), 3, 100, integer=True)),
        warmup_s=_number(file, f"{base}.warmup_s", raw.get("warmup_s", 2.0), 0, 120),
        tolerance=tolerance,
    )
    if "rate" in raw:
        if "processes" in raw:
            raise ConfigError(file, f"{base}.processes", "applies to concurrency levels only, not to rate")
        arrival = raw.get("arrival", "constant")
        if arrival not in ("constant", "poisson"):
            raise ConfigError(file, f"{base}.arrival", "must be constant or poisson")
        levels = (LoadSpec(rate=_number(file, f"{base}.rate", raw["rate"], 0.1, 1e6), arrival=arrival, **common),)
    else:
        conc = raw.get("concurrency", [1])
        conc = [conc] if isinstance(conc, int) else conc
        if not isinstance(conc, list) or not conc:
            raise ConfigError(file, f"{base}.concurrency", "must be a positive integer or a list of them")
        processes = int(_number(file, f"{base}.processes", raw.get("processes", 0), 0, 64, integer=True))
        levels = tuple(LoadSpec(concurrency=int(_number(file, f"{base}.concurrency[{i}]", c, 1, 1024, integer=True)),
                                processes=processes, **common) for i, c in enumerate(conc))
    shapes = raw.get("shapes", {})
    if not isinstance(shapes, dict) or not all(
            isinstance(v, dict) and all(isinstance(s, list) and all(isinstance(d, int) and d > 0 for d in s)
                                        for s in v.values()) for v in shapes.values()):
        raise ConfigError(file, f"{base}.shapes", "must map model -> input -> list of positive integers")
    credential = raw.get("credential")
    if credential is not None and credential not in deployment.credentials:
        raise ConfigError(file, f"{base}.credential", f"no credential named {credential!r} in this deployment")
    ul_raw = raw.get("under_load", {}) or {}
    if not isinstance(ul_raw, dict) or set(ul_raw) - {"rate", "concurrency", "latency_tolerance", "reference_s"}:
        raise ConfigError(file, f"{base}.under_load", "allowed: rate, concurrency, latency_tolerance, reference_s")
    under = UnderLoadSettings(
        rate=None if ul_raw.get("rate", 50.0) is None else _number(file, f"{base}.under_load.rate", ul_raw.get("rate", 50.0), 0.1, 1e5),
        concurrency=int(_number(file, f"{base}.under_load.concurrency", ul_raw.get("concurrency", 2), 1, 64, integer=True)),
        latency_tolerance=_number(file, f"{base}.under_load.latency_tolerance", ul_raw.get("latency_tolerance", 1.0), 0, 100),
        reference_s=_number(file, f"{base}.under_load.reference_s", ul_raw.get("reference_s", 3.0), 0.1, 60),
    )
    llm = raw.get("llm", {}) or {}
    if not isinstance(llm, dict) or set(llm) - {"model", "max_tokens", "prompt"}:
        raise ConfigError(file, f"{base}.llm", "allowed: model, max_tokens, prompt")
    engine = raw.get("engine")
    if engine not in (None, "h2", "grpcio", "http.client"):
        raise ConfigError(file, f"{base}.engine", "must be h2, grpcio or http.client")
    return PerfSettings(models=tuple(models), protocol=protocol, levels=levels, tolerance=tolerance,
                        shapes=shapes, credential=credential,
                        baseline_dir=_baseline_dir(file, f"{base}.baseline_dir", raw.get("baseline_dir")),
                        under_load=under, llm=llm, engine=engine)
