"""Errors that end a run with a one-line message and exit status 2."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class UsageError(Exception):
    """Bad command line or configuration: exit 2, one line, no traceback."""


class ConfigError(UsageError):
    """A problem in a file the user gave us, located as ``file: field: problem``."""

    def __init__(self, file: str, field: str, problem: str):
        self.file, self.field, self.problem = str(file), field, problem
        super().__init__(f"{self.file}: {field}: {problem}" if field else f"{self.file}: {problem}")


class OutOfScope(Exception):
    """A probe was about to touch an address outside the target's declared scope."""


class Unwritable(UsageError):
    """A file or folder nimwarden must write cannot be written: a full or read-only disk, a quota, a file where a
    folder should be, a folder that is not ours. The machine's state, not a bug of nimwarden: exit 2, one line."""


# what the file system answers when a place cannot be written (as opposed to a bug writing it)
REFUSED = frozenset(getattr(errno, name) for name in (
    "ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "ENOTDIR", "EEXIST", "EISDIR", "EIO", "EFBIG", "ENAMETOOLONG",
    "ELOOP") if hasattr(errno, name))


# the disk's own state wherever it is met (full, over quota, read-only): never a bug of nimwarden
FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
DISK = FULL | {errno.EROFS}


def unwritable(exc: BaseException, where: object, what: str = "") -> Unwritable | None:
    """The one-line error for ``exc`` where it is the file system refusing a write under ``where`` (named in the
    line, with ``what`` it was writing), else None: an exception of another kind stays what it is."""
    if not isinstance(exc, OSError) or exc.errno not in REFUSED:
        return None
    name = exc.filename if exc.filename not in (None, "") else where
    return Unwritable(f"cannot write {what + ' in ' if what else ''}{name}: {exc.strerror or exc} ({_hint(exc)})")


def _hint(exc: OSError) -> str:
    return "free some space, or give another folder" if exc.errno in FULL else "give a folder nimwarden can write"


def check_writable_dir(path: str | os.PathLike, option: str) -> Path:
    """Write a file in ``path`` (made with its parents for the check), before anything runs: a folder that cannot hold
    the run's files is one line naming ``option`` now, not a traceback at the end of a long audit. The check leaves
    nothing behind (the folders it made are removed: a run refused later must not leave a reports folder). Returns it
    resolved."""
    folder = Path(path).expanduser().resolve()
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".nimwarden-write-check-{os.getpid()}"
        try:
            with open(probe, "wb") as out:
                out.write(b"x")
        finally:
            probe.unlink(missing_ok=True)
            for p in made:  # deepest first
                try:
                    p.rmdir()
                except OSError:
                    break
    except OSError as exc:
        why = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError) or exc.errno == errno.ENOTDIR:
            why = "a file is there, or on its path, not a folder"
        raise Unwritable(f"{option} {path}: cannot write there: {why} ({_hint(exc)})") from None
    return folder
