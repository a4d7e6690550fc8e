"""How a profile means a path: ``~`` expanded, relative to the profile's folder. One rule, used by the profile's
schema (:mod:`nimwarden.schema.base`) and by the manifests' reader that looks at a profile before it is loaded
(:mod:`nimwarden.k8s.beside`): a floor module, so that the reader's child does not import pydantic for it."""

from __future__ import annotations

import os
from pathlib import Path


def profile_path(value: str, profile: str | os.PathLike[str] | None) -> Path:
    """``value`` as the profile at ``profile`` means it (None: a profile with no file, nothing to be relative to)."""
    path = Path(os.path.expanduser(value))
    if path.is_absolute() or profile is None:
        return path
    return (Path(profile).parent / path).resolve()
