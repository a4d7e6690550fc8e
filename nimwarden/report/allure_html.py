"""``nimwarden report --allure-html``: the Allure HTML report from a run's allure-results/.

Allure's generator is a Java program shipped by the npm package
``allure-commandline``. We use, in order: the command in ``$NIMWARDEN_ALLURE``,
an ``allure`` on PATH, a local ``node_modules/.bin/allure``, or ``npx`` fetching
``allure-commandline@2`` from the npm registry. Java must be installed in every
case; when Node or Java is missing the user gets one line saying which and what
to do, never a traceback.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from nimwarden.errors import UsageError

NPM_PACKAGE = "allure-commandline@2"
TIMEOUT_S = 600  # first use downloads the package; a big report takes a while to render


class AllureUnavailable(UsageError):
    """Node.js or Java is missing: the Allure HTML report cannot be generated here."""


class AllureFailed(RuntimeError):
    """The Allure generator ran and failed."""


def allure_command(cwd: Path | None = None) -> list[str]:
    """The command that runs Allure's CLI, or AllureUnavailable naming what is missing."""
    if os.environ.get("NIMWARDEN_ALLURE"):
        return shlex.split(os.environ["NIMWARDEN_ALLURE"])
    missing = []
    if shutil.which("java") is None:
        missing.append("java (a JRE 8 or newer, e.g. Debian package default-jre-headless)")
    on_path = shutil.which("allure")
    local = (cwd or Path.cwd()) / "node_modules" / ".bin" / "allure"
    if on_path:
        command = [on_path]
    elif local.is_file():
        command = [str(local)]
    elif shutil.which("npx"):
        command = ["npx", "--yes", "--package", NPM_PACKAGE, "allure"]
    else:
        command = []
        missing.append("node/npx (Node.js 16 or newer, e.g. Debian packages nodejs and npm)")
    if missing:
        raise AllureUnavailable(
            "Allure HTML needs " + " and ".join(missing) + "; allure-results/ is still there for any Allure viewer"
        )
    return command


def generate_allure_html(run_dir: str | Path, timeout_s: float = TIMEOUT_S) -> Path:
    """Render ``<run_dir>/allure-results`` into ``<run_dir>/allure-report``; return its index.html."""
    run_dir = Path(run_dir)
    results = run_dir / "allure-results"
    if not results.is_dir() or not any(results.iterdir()):
        raise UsageError(f"{results}: no Allure results to render (was the run made with allure-pytest?)")
    out = run_dir / "allure-report"
    command = allure_command(run_dir) + ["generate", str(results), "-o", str(out), "--clean"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise AllureFailed(f"allure generate took longer than {timeout_s:.0f} s and was stopped") from None
    except OSError as exc:
        raise AllureUnavailable(f"cannot run {command[0]}: {exc.strerror or exc}") from None
    index = out / "index.html"
    if done.returncode != 0 or not index.is_file():
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise AllureFailed(f"allure generate exited {done.returncode}: {tail[0]}")
    return index


generate = generate_allure_html  # the name the CLI calls
