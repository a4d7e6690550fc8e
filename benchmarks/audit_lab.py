"""Wall time of a lab audit (after set-up): lab start, Triton API suite, whole audit. Prints JSON lines.

Usage: .venv/bin/python benchmarks/audit_lab.py [--repeat 3] [--suite suites/test_triton_api.py] [--without-ray]

``--without-ray`` starts the lab without its Ray heads (what they cost the lab's start; the Ray
controls are then errors or not applicable, so use it for timing only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--suite", default="suites/test_triton_api.py")
    parser.add_argument("--without-ray", action="store_true", help="start the lab without its Ray heads (timing only)")
    args = parser.parse_args()
    from nimwarden import lab
    from tests.conftest import lab_profile

    machine = {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)
        t0 = time.monotonic()
        specs = tuple(lab.ServerSpec(s.name, s.hardened, ray=None if args.without_ray else s.ray) for s in lab.DEFAULT_SPECS)
        state = lab.up(tmp / "lab", specs=specs, log=lambda *_: None)
        print(json.dumps({"bench": "lab_up", "ray_heads": not args.without_ray, "seconds": round(time.monotonic() - t0, 2), **machine}), flush=True)
        try:
            if args.without_ray:
                return  # the lab profile names the Ray endpoints: timing of the start only
            profile = lab_profile(tmp, state)
            for i in range(args.repeat):
                t0 = time.monotonic()
                proc = subprocess.run(
                    [sys.executable, "-m", "nimwarden.cli", "audit", "--target", str(profile), "--reports-dir", str(tmp / "reports"), args.suite, "-q"],
                    cwd=ROOT, capture_output=True, text=True,
                )
                took = time.monotonic() - t0
                summary = json.loads((tmp / "reports" / "latest" / "summary.json").read_text())
                families: dict[str, float] = {}
                for r in summary["results"]:
                    families[r["family"]] = families.get(r["family"], 0.0) + float(r.get("duration_s") or 0.0)
                print(json.dumps({"bench": "audit", "suite": args.suite, "run": i, "seconds": round(took, 2), "exit": proc.returncode,
                                  "results": len(summary["results"]), "totals": summary["totals"],
                                  "family_test_seconds": {k: round(v, 2) for k, v in sorted(families.items())}, **machine}), flush=True)
        finally:
            lab.down(tmp / "lab", log=lambda *_: None)


if __name__ == "__main__":
    main()
