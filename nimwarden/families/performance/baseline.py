"""Performance baselines as data: ``reports/baselines/<target>/<deployment>/<model>.json``.

A baseline holds, per load level, the reported figures and the per-window
samples the detector resamples, stamped with the environment fingerprint it
was measured in. Each explicit update *adds* a run (the last ``KEEP_RUNS``
are kept, in ``runs``) and ``windows`` pools their windows, so the detector
sees run-to-run noise, not only the noise inside one run, and one run slowed
by a busy machine cannot make the baseline slow. A run is compared with a baseline only when the
fingerprints match; otherwise the comparison does not apply and says which
fields differ. Nothing here writes a baseline unless the caller asks
(``save``); the suite calls it only under an explicit option.
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nimwarden.errors import ConfigError

SCHEMA = "nimwarden/perf-baseline/v1"
DEFAULT_ROOT = Path("reports") / "baselines"
KEEP_RUNS = 5
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def client_host() -> dict:
    """The measuring machine matters as much as the server: a baseline from a bigger box is not comparable."""
    return {"cpus": os.cpu_count(), "machine": platform.machine(), "system": platform.system()}


def fingerprint(*, server_version: str, model: str, model_versions: tuple[str, ...] | list[str], protocol: str,
                input_shapes: Mapping[str, list[int]], gpus: Mapping[str, Mapping[str, float]] | None = None,
                gpu_names: list[str] | None = None, driver: str | None = None) -> dict:
    """Everything that must be equal for two runs to be comparable (the load level is keyed separately)."""
    gpu_list = sorted(gpus or {})
    return {
        "triton_version": server_version,
        "model": model,
        "model_versions": sorted(str(v) for v in model_versions),
        "protocol": protocol,
        "input_shapes": {k: list(v) for k, v in sorted(input_shapes.items())},
        "gpus": gpu_list or "none",
        "gpu_memory_total_bytes": sorted(int(g.get("nv_gpu_memory_total_bytes", 0)) for g in (gpus or {}).values()),
        "gpu_names": sorted(gpu_names or []),
        "driver": driver or "",
        "client": client_host(),
    }


def differences(expected: Mapping, actual: Mapping) -> list[str]:
    """Fields whose values differ, as 'field: baseline X, now Y'."""
    out = []
    for key in sorted(set(expected) | set(actual)):
        if expected.get(key) != actual.get(key):
            out.append(f"{key}: baseline {expected.get(key)!r}, now {actual.get(key)!r}")
    return out


def path_for(target: str, deployment: str, model: str, root: Path | str = DEFAULT_ROOT) -> Path:
    parts = [_SAFE.sub("_", p) for p in (target, deployment, model)]
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"unusable baseline name {target}/{deployment}/{model}")
    return Path(root) / parts[0] / parts[1] / f"{parts[2]}.json"


@dataclass(frozen=True)
class Baseline:
    path: Path
    fingerprint: dict
    levels: dict  # load mode ("concurrency 4") -> {"recorded_at", "throughput", "latency_us", "windows": [...]}

    def level(self, mode: str) -> dict | None:
        return self.levels.get(mode)


def load(path: Path) -> Baseline | None:
    """The stored baseline, None when there is none; ConfigError when the file is unusable."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), "", f"unreadable baseline: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ConfigError(str(path), "schema", f"expected {SCHEMA!r}")
    if not isinstance(data.get("fingerprint"), dict) or not isinstance(data.get("levels"), dict):
        raise ConfigError(str(path), "levels", "missing fingerprint or levels")
    for mode, level in data["levels"].items():
        windows = level.get("windows") if isinstance(level, dict) else None
        if not isinstance(windows, list) or not all(isinstance(w, dict) and "throughput" in w and "p99_us" in w
                                                    for w in windows):
            raise ConfigError(str(path), f"levels.{mode}.windows", "each window needs throughput and p99_us")
    return Baseline(Path(path), data["fingerprint"], data["levels"])


def level_record(measurement) -> dict:
    """What a baseline keeps of one loadgen Measurement."""
    return {
        "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stable": measurement.stable,
        "throughput": round(measurement.throughput, 3),
        "latency_us": measurement.latency.as_dict() if measurement.latency else None,
        "windows": [{"throughput": round(w.throughput, 3), "p99_us": round(w.latency.p99_us, 1),
                     "avg_us": round(w.latency.avg_us, 1),
                     "steal": None if w.steal is None else round(w.steal, 3)} for w in measurement.windows if w.completed],
    }


def merge_runs(previous: Mapping | None, record: Mapping, keep: int = KEEP_RUNS) -> dict:
    """The level after adding one run: its figures, the last ``keep`` runs, and their windows pooled."""
    runs = []
    if previous:
        runs = [dict(r) for r in previous.get("runs") or ()] or [
            {"recorded_at": previous.get("recorded_at"), "throughput": previous.get("throughput"), "windows": list(previous.get("windows") or ())}]
    runs.append({"recorded_at": record.get("recorded_at"), "throughput": record.get("throughput"), "windows": list(record.get("windows") or ())})
    runs = runs[-keep:]
    return {**dict(record), "runs": runs, "windows": [w for r in runs for w in r["windows"]]}


def save(path: Path, fp: Mapping, mode: str, record: Mapping, keep: int = KEEP_RUNS) -> Path:
    """Add a run to one level; a different fingerprint replaces the whole file (old levels are stale).

    ``keep=1`` replaces the level's runs instead of adding to them.
    """
    path = Path(path)
    try:
        current = load(path)
    except ConfigError:
        current = None
    levels = dict(current.levels) if current and current.fingerprint == dict(fp) else {}
    levels[mode] = merge_runs(levels.get(mode) if keep > 1 else None, record, keep)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"schema": SCHEMA, "fingerprint": dict(fp), "levels": levels}, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path
