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
