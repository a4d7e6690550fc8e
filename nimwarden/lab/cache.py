"""Where the lab's heavy third-party environments are cached: outside any clone, per user, keyed by
version (``<cache>/ray-2.60.0``, ``<cache>/kubernetes-1.20.2`` …), so a fresh clone on the same machine —
CI's, or the next session's — reuses them instead of installing them again.

``$NIMWARDEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/nimwarden``, else ``~/.cache/nimwarden``;
``scripts/bootstrap`` and ``scripts/build-kube`` compute the same folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    named = os.environ.get("NIMWARDEN_CACHE_DIR")
    if named:
        return Path(named).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "nimwarden"


def runtime(env_var: str, venv: Path, executable: str, what: str, install: str) -> Path:
    """A lab runtime's executable: the one ``env_var`` names, else ``venv/bin/<executable>`` once
    ``scripts/bootstrap`` finished installing it; raises RuntimeError saying how to get one."""
    named = os.environ.get(env_var)
    if named:
        if not os.access(named, os.X_OK):
            raise RuntimeError(f"{env_var}={named} is not an executable `{executable}`")
        return Path(named)
    found = venv / "bin" / executable
    if found.exists() and (venv / ".nimwarden-installed").exists():
        return found
    raise RuntimeError(f"no {what}: run ./scripts/bootstrap (installs {install} into {venv}) or set {env_var} to a `{executable}` executable")
